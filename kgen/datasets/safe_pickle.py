"""A pickle loader that admits numpy arrays and nothing else.

`pickle.load` runs whatever callable a file names, so reading a third-party pickle (the animal-mnist data files)
with it would trust that file like code. `load_pickle_restricted` resolves only the globals in `ALLOWED_GLOBALS`,
which are what numpy needs to rebuild arrays:

* ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``,
  ``numpy.dtype``: protocols 3 and 4 (the animal-mnist files name exactly the first, third and fourth);
* ``numpy.core.numeric._frombuffer`` / ``numpy._core.numeric._frombuffer``: protocol 5, today's default.

Array pickles of protocols 0-2 also name ``_codecs.encode`` and are refused. Any other global raises
`RestrictedUnpicklingError` before it is imported or called. The guard is against code execution, not against
memory exhaustion: a hostile file can still ask for a huge array.
"""

import importlib
import os
import pickle

ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)

_GZIP_MAGIC = b"\x1f\x8b"


class RestrictedUnpicklingError(pickle.UnpicklingError):
    """Raised when a pickle names a global outside `ALLOWED_GLOBALS`.

    Example:
        >>> import io, os, pickle
        >>> payload = pickle.dumps(os.system)               # a pickle that would import and call os.system
        >>> try:
        ...     load_pickle_restricted(io.BytesIO(payload))
        ... except RestrictedUnpicklingError:
        ...     refused = True
        >>> refused
        True
    """


def _resolve(module, name):
    # numpy 2 renamed numpy.core to numpy._core (the old path warns); pickles from either era name either one.
    suffix = module.split(".", 2)[2] if module.startswith(("numpy.core.", "numpy._core.")) else None
    candidates = [module] if suffix is None else [f"numpy._core.{suffix}", f"numpy.core.{suffix}"]
    for candidate in candidates:
        try:
            return getattr(importlib.import_module(candidate), name)
        except ImportError:
            continue
    raise RestrictedUnpicklingError(f"cannot resolve admitted global {module}.{name} in this numpy")


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise RestrictedUnpicklingError(
                f"refused global {module}.{name}: only numpy array reconstruction is allowed "
                f"({', '.join(sorted(f'{m}.{n}' for m, n in ALLOWED_GLOBALS))})"
            )
        return _resolve(module, name)


def _load_stream(f):
    # A seekable stream is sniffed for gzip, so callers may pass .gz files or their contents alike.
    if f.seekable():
        head = f.read(2)
        f.seek(-len(head), os.SEEK_CUR)
        if head == _GZIP_MAGIC:
            import gzip

            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return _ArrayUnpickler(g).load()
    return _ArrayUnpickler(f).load()


def load_pickle_restricted(path_or_fileobj):
    """Unpickle numpy arrays from a file without running arbitrary code.

    Args:
        path_or_fileobj: a path (str or os.PathLike) or a binary file object. Gzip-compressed input is
            recognised by its magic bytes (for file objects only when they are seekable).

    Returns:
        The unpickled object: numpy arrays, dtypes and plain Python containers/scalars.

    Raises:
        RestrictedUnpicklingError (a `pickle.UnpicklingError`): the pickle names a global outside
            `ALLOWED_GLOBALS`; the message gives the refused ``module.name``. Nothing it names is imported or run.

    Example:
        >>> import io, pickle, numpy as np
        >>> load_pickle_restricted(io.BytesIO(pickle.dumps(np.arange(3))))
        array([0, 1, 2])
    """
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        with open(path_or_fileobj, "rb") as f:
            return _load_stream(f)
    return _load_stream(path_or_fileobj)
