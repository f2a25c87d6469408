"""Import the glue module of the active Keras backend (and nothing else)."""

import keras

_name = keras.backend.backend()
if _name == "jax":
    pass
elif _name == "tensorflow":
    pass
elif _name == "torch":
    pass
else:
    raise ImportError(f"kgen supports the jax, tensorflow and torch backends of Keras; the active backend is {_name!r}")
