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
