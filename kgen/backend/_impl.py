"""Import the glue module of the active Keras backend (and nothing else)."""

import keras

_name = keras.backend.backend()
if _name == "jax":
    from kgen.backend import _jax as impl  # noqa: F401  (re-exported)
elif _name == "tensorflow":
    from kgen.backend import _tensorflow as impl  # noqa: F401  (re-exported)
elif _name == "torch":
    from kgen.backend import _torch as impl  # noqa: F401  (re-exported)
else:
    raise ImportError(f"kgen supports the jax, tensorflow and torch backends of Keras; the active backend is {_name!r}")
