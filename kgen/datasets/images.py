"""scikit-learn's 8x8 handwritten digits, and a StackedMNIST-style 3-channel variant built from them.

Source: `sklearn.datasets.load_digits`, the UCI "Optical Recognition of Handwritten Digits" test set
(1797 images, 10 classes), which ships inside the scikit-learn wheel, so nothing is downloaded.
Pixels are counts 0..16 (use ``levels=17`` with `kgen.datasets.dequantize`).
Splits: stratified 80/20, fixed and content-hashed (see `kgen.datasets._split`): 1438 train, 359 test.
"""

import functools

import numpy as np

from kgen._checks import check_choice, check_int
from ._split import SPLITS, split_indices

DIGIT_LEVELS = 17


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    # Deferred import: sklearn.datasets pulls in scipy, and `import kgen` should stay cheap.
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = bunch.images.astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


@functools.lru_cache(maxsize=None)
def _digits_indices(split):
    images, labels = _digits_arrays()
    indices = split_indices(images, labels, split)
    indices.flags.writeable = False
    return indices


def load_digits(split="train"):
    """The 8x8 digits as images and labels.

    Args:
        split: "train" (1438 images), "test" (359) or "all" (1797, scikit-learn's order). Train and test are
            disjoint, stratified by class, and the same on every call and machine.

    Returns:
        images: uint8, shape (n, 8, 8, 1), values 0..16.
        labels: int64, shape (n,), values 0..9.
        Fresh copies: modifying them does not affect later calls.

    Example:
        >>> x, y = load_digits("test")
        >>> print(x.shape, x.dtype, x.max(), y.shape, y.dtype)
        (359, 8, 8, 1) uint8 16 (359,) int64
    """
    check_choice("split", split, SPLITS)
    images, labels = _digits_arrays()
    indices = _digits_indices(split)
    return images[indices], labels[indices]


def stacked_digits(n, seed=0):
    """StackedMNIST on the 8x8 digits: three independent training digits stacked as RGB channels.

    Following the StackedMNIST protocol (Metz et al. 2017, "Unrolled GANs"; Srivastava et al. 2017, VEEGAN),
    each channel is a uniformly drawn image of the digits "train" split, and the label is
    ``100 * d0 + 10 * d1 + d2``, so the data has 1000 modes; mode coverage of a generator is measured by
    classifying each channel of its samples.

    Args:
        n: number of images, a positive int.
        seed: non-negative int for `numpy.random.default_rng`; the same seed gives the same output.

    Returns:
        images: uint8, shape (n, 8, 8, 3), values 0..16.
        labels: int64, shape (n,), values in [0, 1000).

    Example:
        >>> x, y = stacked_digits(4, seed=0)
        >>> print(x.shape, x.dtype, y.dtype, bool(((0 <= y) & (y < 1000)).all()))
        (4, 8, 8, 3) uint8 int64 True
    """
    n = check_int("n", n, 1)
    seed = check_int("seed", seed, 0)
    images, labels = load_digits("train")
    picks = np.random.default_rng(seed).integers(0, len(labels), size=(n, 3))
    stacked = np.concatenate([images[picks[:, c]] for c in range(3)], axis=-1)
    digits = labels[picks]
    return stacked, (100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]).astype(np.int64)
