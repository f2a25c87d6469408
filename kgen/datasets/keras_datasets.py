"""Online loaders for Keras' image datasets, converted to kgen's (images, labels) convention.

Source: `keras.datasets.<name>.load_data()`, which downloads the data on first use (to ``~/.keras/datasets``);
these are the only kgen.datasets functions that need the network or import keras. Splits are the datasets'
official train/test splits; "all" concatenates train then test. Pixels are 0..255 (``levels=256``).
"""

import numpy as np

from kgen._checks import check_choice
from ._split import SPLITS

KERAS_DATASET_NAMES = ("mnist", "fashion_mnist", "cifar10")


def _to_convention(name, images, labels):
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"keras.datasets.{name} returned images of dtype {images.dtype}, shape {images.shape}")
    labels = labels.reshape(-1)
    if labels.shape != images.shape[:1]:
        raise ValueError(f"keras.datasets.{name} returned {labels.size} labels for {len(images)} images")
    return images, labels.astype(np.int64)


def load_keras_dataset(name, split="train"):
    """Download (once) and load MNIST, Fashion-MNIST or CIFAR-10 through Keras.

    Args:
        name: "mnist", "fashion_mnist" or "cifar10".
        split: "train", "test" or "all" (train followed by test).

    Returns:
        images: uint8, shape (n, H, W, C): (n, 28, 28, 1) for the MNISTs, (n, 32, 32, 3) for CIFAR-10.
        labels: int64, shape (n,), values 0..9.

    Example:
        >>> x, y = load_keras_dataset("mnist", "test")  # doctest: +SKIP
        >>> print(x.shape, x.dtype, y.shape, y.dtype)  # doctest: +SKIP
        (10000, 28, 28, 1) uint8 (10000,) int64
    """
    check_choice("name", name, KERAS_DATASET_NAMES)
    check_choice("split", split, SPLITS)
    import keras  # Deferred: kgen.datasets must import without keras, and only this function needs it.

    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    parts = {"train": [(x_train, y_train)], "test": [(x_test, y_test)]}
    parts["all"] = parts["train"] + parts["test"]
    converted = [_to_convention(name, x, y) for x, y in parts[split]]
    return np.concatenate([x for x, _ in converted]), np.concatenate([y for _, y in converted])
