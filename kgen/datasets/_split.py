"""The fixed train/test split shared by `load_digits` and `load_animals`.

Rule (stratified 80/20): within each class, images are ordered by the 64-bit BLAKE2b digest of their pixel bytes
(salted with `_SALT`); the first round(0.2 * class size) go to "test", the rest to "train". Both splits are
returned in digest order, which interleaves the classes; "all" keeps the source order.

Hashing the pixels, rather than drawing from a seeded RNG, makes the split identical on every machine and numpy
version, independent of the source file's order, and keeps byte-identical images on the same side.
"""

import hashlib

import numpy as np

SPLITS = ("train", "test", "all")
TEST_FRACTION = 0.2
_SALT = b"kgen.datasets.split.v1"


def _digest_keys(images):
    keys = [hashlib.blake2b(_SALT + np.ascontiguousarray(im).tobytes(), digest_size=8).digest() for im in images]
    return np.array([int.from_bytes(k, "big") for k in keys], dtype=np.uint64)


def split_indices(images, labels, split):
    """Indices into `images`/`labels` (int64, 1-D) for `split` in SPLITS; see the module docstring."""
    if split == "all":
        return np.arange(len(labels), dtype=np.int64)
    keys = _digest_keys(images)
    is_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[np.argsort(keys[members], kind="stable")]
        cut = int(np.floor(TEST_FRACTION * len(members) + 0.5))
        # Duplicates share a key; moving the cut past ties keeps them from straddling train and test.
        while 0 < cut < len(members) and keys[members[cut]] == keys[members[cut - 1]]:
            cut += 1
        is_test[members[:cut]] = True
    chosen = np.flatnonzero(is_test if split == "test" else ~is_test)
    return chosen[np.argsort(keys[chosen], kind="stable")].astype(np.int64)
