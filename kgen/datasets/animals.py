"""Animal-MNIST: 10,000 28x28 animal silhouettes, read offline from the files inside the `animal-mnist` wheel.

Source: PyPI package ``animal-mnist`` 0.4 (Sina Mohammadi, MIT licence; install with ``pip install kgen[data]``).
It ships two gzip-compressed pickles (protocol 4) under ``animal_mnist/data/Animal_MNIST/``:

* ``animal_data_version_3.gz``: one numpy array, uint8, shape (10000, 28, 28), values 0..255
  (white silhouette on black; use ``levels=256`` with `kgen.datasets.dequantize`);
* ``animal_label_version_3.gz``: one numpy array, little-endian int64, shape (10000,), 1000 per class 0..9,
  stored sorted by class.

Both name only the globals ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype``, and
are read with `load_pickle_restricted`. The package's own loader is not used: it imports tensorflow and
downloads MNIST.

Class names: the package README lists Bear, Bird, Cat, Cow, Dog, Elephant, Giraffe, Horse, Sheep, Zebra; that
alphabetical order matches label indices 0..9 (checked by eye on sample images; the package does not state it).
The images contain 284 pairs of byte-identical images (each pair within one class); the fixed split of
`kgen.datasets._split` keeps each pair on one side, so train and test share no image. 8000 train, 2000 test.
"""

import functools
import importlib.resources
import importlib.util

import numpy as np

from kgen._checks import check_choice
from ._split import SPLITS, split_indices
from .safe_pickle import load_pickle_restricted

ANIMAL_CLASS_NAMES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
ANIMAL_LEVELS = 256
_PACKAGE = "animal_mnist"
_IMAGE_FILE = "animal_data_version_3.gz"
_LABEL_FILE = "animal_label_version_3.gz"
_COUNT = 10000


def _resource(filename):
    # find_spec locates the package without running its modules; only the empty __init__ is ever imported.
    if importlib.util.find_spec(_PACKAGE) is None:
        raise ImportError(f"Animal-MNIST needs the `{_PACKAGE}` package: pip install kgen[data]")
    return importlib.resources.files(_PACKAGE).joinpath("data", "Animal_MNIST", filename)


def _describe(obj):
    if isinstance(obj, np.ndarray):
        return f"array of dtype {obj.dtype} and shape {obj.shape}"
    return f"object of type {type(obj).__name__}"


def check_animal_arrays(images, labels, count=_COUNT):
    """Raise ValueError unless `images`/`labels` have the documented Animal-MNIST layout (see module docstring)."""
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.shape == (count, 28, 28)):
        expected = f"uint8 array of shape {(count, 28, 28)}"
        raise ValueError(f"Animal-MNIST images: expected {expected}, got {_describe(images)}")
    if not (isinstance(labels, np.ndarray) and labels.dtype.kind in "iu" and labels.shape == (count,)):
        raise ValueError(f"Animal-MNIST labels: expected integer array of shape {(count,)}, got {_describe(labels)}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(ANIMAL_CLASS_NAMES)):
        raise ValueError(f"Animal-MNIST labels: expected values in 0..9, got {labels.min()}..{labels.max()}")


@functools.lru_cache(maxsize=1)
def _animal_arrays():
    with _resource(_IMAGE_FILE).open("rb") as f:
        images = load_pickle_restricted(f)
    with _resource(_LABEL_FILE).open("rb") as f:
        labels = load_pickle_restricted(f)
    check_animal_arrays(images, labels)
    images, labels = images[..., None].astype(np.uint8), labels.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels, split_indices(images, labels, "train"), split_indices(images, labels, "test")


def load_animals(split="train"):
    """Animal-MNIST images and labels.

    Args:
        split: "train" (8000 images), "test" (2000) or "all" (10000, file order: sorted by class). Train and
            test are disjoint (also by pixel content), stratified, and the same on every call and machine.

    Returns:
        images: uint8, shape (n, 28, 28, 1), values 0..255.
        labels: int64, shape (n,), values 0..9 (names in `ANIMAL_CLASS_NAMES`).
        Fresh copies: modifying them does not affect later calls.

    Raises:
        ImportError: `animal-mnist` is not installed (``pip install kgen[data]``).
        ValueError: the packaged files do not hold the documented arrays.

    Example:
        >>> x, y = load_animals("all")
        >>> print(x.shape, x.dtype, y.dtype, ANIMAL_CLASS_NAMES[y[0]])
        (10000, 28, 28, 1) uint8 int64 bear
    """
    check_choice("split", split, SPLITS)
    images, labels, train, test = _animal_arrays()
    if split == "all":
        return images.copy(), labels.copy()
    indices = train if split == "train" else test
    return images[indices], labels[indices]
