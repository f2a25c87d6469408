"""Argument checks for kgen.datasets.

Kept local (not kgen.utils) so that kgen.datasets imports without keras.
"""

import numbers


def check_int(name, value, minimum):
    """Return `value` as an int, or raise naming `name`: TypeError if not an int, ValueError if < `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value}")
    return int(value)


def check_choice(name, value, choices):
    """Return `value` if it is one of `choices`, else raise a ValueError naming `name` and listing `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}")
    return value
