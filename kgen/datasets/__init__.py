"""Datasets for kgen as numpy arrays: numpy in, numpy out.

Offline (no network; imports only numpy, scikit-learn, scikit-image (for `load_patches`) and the standard library):

* `load_digits`, `stacked_digits`: scikit-learn's 8x8 digits (pixels 0..16) and their 1000-mode StackedMNIST form;
* `load_animals`: Animal-MNIST silhouettes from the ``animal-mnist`` wheel (``pip install kgen[data]``);
* `load_patches`, `patch_boxes`: grayscale crops of scikit-image's bundled photographs and textures
  (``pip install kgen[data]``), split by image region;
* `gaussian_field`, `field_spectrum`: stationary periodic Gaussian fields with a power-law spectrum |k|^-slope;
* `toy2d`, `toy2d_modes`: 2-D rings, grids, moons and swiss rolls;
* `dequantize`, `quantize`: between integer pixels and continuous data on [0, 1) (flows);
* `to_signed`: integer pixels to float32 data in [-1, 1] (GANs, diffusion);
* `load_pickle_restricted`: the numpy-only unpickler used for Animal-MNIST.

Online: `load_keras_dataset` (MNIST, Fashion-MNIST, CIFAR-10 via ``keras.datasets``; downloads, imports keras).

Images are uint8 ``(n, H, W, C)``, labels int64 ``(n,)``; `split` is "train", "test" or "all".
"""

from .animals import ANIMAL_CLASS_NAMES, ANIMAL_LEVELS, load_animals
from .quantization import dequantize, quantize, to_signed
from .images import DIGIT_LEVELS, load_digits, stacked_digits
from .fields import field_spectrum, frequency_magnitude, gaussian_field
from .patches import PATCH_LEVELS, PATCH_SOURCES, load_patches, patch_boxes
from .keras_datasets import KERAS_DATASET_NAMES, load_keras_dataset
from .safe_pickle import ALLOWED_GLOBALS, RestrictedUnpicklingError, load_pickle_restricted
from .toy import TOY2D_NAMES, toy2d, toy2d_modes
from . import text  # noqa: F401
from .text import TEXT_TASKS, exact_match, palindromes, toy_seq2seq

__all__ = [
    "ALLOWED_GLOBALS",
    "ANIMAL_CLASS_NAMES",
    "ANIMAL_LEVELS",
    "DIGIT_LEVELS",
    "KERAS_DATASET_NAMES",
    "PATCH_LEVELS",
    "PATCH_SOURCES",
    "RestrictedUnpicklingError",
    "TEXT_TASKS",
    "TOY2D_NAMES",
    "dequantize",
    "exact_match",
    "field_spectrum",
    "frequency_magnitude",
    "gaussian_field",
    "load_animals",
    "load_digits",
    "load_keras_dataset",
    "load_patches",
    "load_pickle_restricted",
    "quantize",
    "stacked_digits",
    "toy2d",
    "toy2d_modes",
    "to_signed",
    "palindromes",
    "patch_boxes",
    "toy_seq2seq",
]
