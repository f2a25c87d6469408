"""Argument checks shared by every kgen module (private; NumPy only, no Keras).

Each check raises before any work starts, with a message that names the offending argument.
"""

import numbers

import numpy as np


def check_int(name, value, minimum):
    """Return `value` as a Python int if it is an integer (Python or NumPy, not bool) `>= minimum`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value}")
    return int(value)


def check_choice(name, value, choices):
    """Return `value` if it is one of `choices`, else raise a ValueError naming `name` and listing `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}")
    return value


def check_positive_float(name, value):
    """Return `value` as a Python float if it is a finite real number `> 0`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a positive real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"`{name}` must be a finite number > 0, got {value}")
    return value


def as_float_matrix(name, value, min_rows=1):
    """Return `value` as a float64 array of shape (n, d) with n >= `min_rows`, d >= 1 and finite entries."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be a real-valued array of shape (n, d): {error}") from None
    if array.ndim != 2:
        raise ValueError(f"`{name}` must have shape (n, d), got shape {array.shape}")
    if array.shape[0] < min_rows or array.shape[1] < 1:
        raise ValueError(f"`{name}` must have at least {min_rows} row(s) and 1 column, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return array


def fit_array(x):
    """The NumPy data array in `fit`'s `x` (also the first of a `(x, y)` tuple), or None when there is none.

    Only NumPy arrays are checked before training: tensors, tf.data datasets and generators would need a
    host round trip, per batch for the last two; for them a NaN shows up as a NaN loss, which
    `keras.callbacks.TerminateOnNaN` or `kgen.callbacks.StopOnNaN` stops on.
    """
    if isinstance(x, tuple) and x:
        x = x[0]
    return x if isinstance(x, np.ndarray) else None


def check_example_shape(name, full_shape, shape, shape_of=None):
    """Raise unless `full_shape` (an array's or tensor's) is (batch,) + `shape`; None entries accept any size."""
    full_shape, shape = tuple(full_shape), tuple(shape)
    if len(full_shape) != len(shape) + 1 or any(s is not None and a is not None and s != a
                                                for s, a in zip(shape, full_shape[1:])):
        source = f" ({shape_of} shape)" if shape_of else ""
        raise ValueError(f"`{name}` must have shape (batch,) + {shape}{source}, got {full_shape}")


def check_data(name, array, shape, expects, convert, shape_of=None):
    """Raise unless the NumPy `array` holds float data of shape (batch,) + `shape`, all of it finite.

    Args:
        name: the argument's name in the messages ("x").
        array: a NumPy array (one full pass over it for the finiteness check).
        shape: the shape of one example; None entries accept any size.
        expects: what the model trains on, for the messages ("float data in [0, 1]").
        convert: the kgen function that turns integer images into that ("kgen.datasets.dequantize(x, levels)").
        shape_of: where `shape` comes from, for the messages ("the discriminator's input").
    """
    shape = tuple(shape)
    if array.dtype.kind in "biu":
        low, high = (array.min(), array.max()) if array.size else (0, 0)
        raise TypeError(f"`{name}` holds {array.dtype} values in [{low}, {high}], but the model trains on {expects}: "
                        f"convert integer images with {convert}")
    if array.dtype.kind != "f":
        raise TypeError(f"`{name}` must be a float array ({expects}), got dtype {array.dtype}")
    check_example_shape(name, array.shape, shape, shape_of)
    if array.shape[0] == 0:  # Keras would fail inside fit with an UnboundLocalError
        raise ValueError(f"`{name}` is empty (shape {array.shape}): there is nothing to train on")
    finite = np.isfinite(array)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"`{name}` contains NaN or infinite values ({finite.size - np.count_nonzero(finite)} of "
                         f"{finite.size}); the first is {name}[{', '.join(map(str, index))}] = {array[index]}")
