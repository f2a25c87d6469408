"""kgen: generative models for Keras 3 on TensorFlow, JAX and PyTorch.

Choose the backend before the first `import keras` (``KERAS_BACKEND=jax``, or ``kgen --backend jax ...``).
Importing kgen registers every kgen layer and model with Keras, so ``keras.saving.load_model`` can read
kgen's ``.keras`` files (``safe_mode=True`` works: kgen uses no ``Lambda`` layers).
"""

__version__ = "0.1.0"

from kgen import backend  # noqa: F401  (registers nothing, but fixes the backend glue at import)
from kgen import callbacks  # noqa: F401
from kgen import base  # noqa: F401
from kgen import datasets  # noqa: F401
from kgen import diffusion  # noqa: F401
from kgen import distribute  # noqa: F401
from kgen import ema  # noqa: F401
from kgen import export  # noqa: F401
from kgen import flows  # noqa: F401
from kgen import gans  # noqa: F401
from kgen import metrics  # noqa: F401
from kgen import text  # noqa: F401
from kgen import utils  # noqa: F401
from kgen.utils import set_seed  # noqa: F401
