"""Deprecated names kept for one release: one warning helper, a keyword-renaming decorator, the old `state=`."""

import functools
import warnings


def warn_deprecated(old, new, stacklevel=3):
    """DeprecationWarning "`old` is deprecated; use `new`" pointing at the caller's caller by default."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}", DeprecationWarning,
                  stacklevel=stacklevel)


def renamed_keywords(**renames):
    """Decorator: keyword arguments passed under an old name (`old="new"`) reach `new`, with a DeprecationWarning.

    Example:
        >>> @renamed_keywords(z="noise")
        ... def step(eps, i, x_t, noise=None):
        ...     return noise
        >>> step(0, 0, 0, z=1)   # DeprecationWarning, returns 1
        1
    """
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{fn.__qualname__}() got both `{old}` (deprecated) and `{new}`")
                    warn_deprecated(f"the keyword `{old}` of {fn.__qualname__}", f"`{new}`")
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def deprecated_state(state, where):
    """The deprecated `state=` argument: warn when it is given; returns it as a list."""
    if state is None:
        return []
    warnings.warn(f"`state=` of {where} is deprecated and will be removed in the next release: leave it out, the "
                  "state is found from the functions themselves (kgen.backend.state_of: a Keras Layer/Model, a bound "
                  "method, partial or closure of one, or a kgen wrapper)", DeprecationWarning, stacklevel=3)
    return list(state) if isinstance(state, (list, tuple)) else [state]
