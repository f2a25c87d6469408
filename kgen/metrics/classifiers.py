"""Feature extractors for FID/KID on kgen's image datasets: small CNN classifiers trained offline.

Why our own classifiers. FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018) are defined with
InceptionV3 pool features, but Inception weights are a download, and kgen must evaluate offline; Inception
also expects 299x299 RGB photographs, far from 8x8 digits, 28x28 silhouettes or 32x32 grayscale patches. We follow the "domain FID"
convention instead (as with LeNet features for MNIST-like data): the Fréchet/kernel distance is computed on
the penultimate activations of a classifier trained on the same dataset. Consequences:

* numbers computed with these features are NOT comparable to published Inception FID/KID values, nor across
  the two datasets, nor with another classifier (a retrained one included); compare models with each other,
  on the same dataset and with the same shipped file;
* the features are class-discriminative, so the distances respond strongly to missing or confused classes
  (mode dropping) and less to texture that the classifier ignores.

Input convention: float32 images in [0, 1], shape (n, 8, 8, 1) for "digits", (n, 28, 28, 1) for "animals"
and (n, H, W, 1) of any size for "patches" (fully convolutional up to a global average pooling; trained on the
32x32 crops of `kgen.datasets.load_patches` and their 2x2 average-pooled 16x16 versions, so use it at 32 or
16), the range kgen's generative models produce. The classifiers were trained on freshly dequantized data
``(x + u) / levels``, so they accept dequantized real data and plain ``x / (levels - 1)`` alike. "patches"
tells the 9 source images of `kgen.datasets.PATCH_SOURCES` apart (9 logits; the others have 10).

Shipped classifiers (``saved_models/``, produced by ``scripts/train_classifiers.py`` on JAX; details and
the exact command in ``saved_models/classifiers.json``); test accuracy on the held-out test split,
dequantized with seed 0:

    name      input         features           params   test accuracy
    digits    (8, 8, 1)     64 (Dense, ReLU)   60,554   1.0000 (359 images; also 1.0000 on x / 16)
    animals   (28, 28, 1)   128 (Dense, ReLU)  74,602   0.9185 (2000 images; 0.9175 on x / 255)
    patches   (H, W, 1)     128 (Dense, ReLU)  151,753  0.7809 at 32x32, 0.7562 at 16x16 (1821 test patches; 9 classes)

The same files give the same accuracies on the JAX, TensorFlow and PyTorch backends (checked by
tests/test_classifiers.py; for patches, tests/test_patch_classifier.py).

Files are looked up in the folder named by the environment variable ``KGEN_SAVED_MODELS`` if set, else in
``<repo root>/saved_models`` (the repo root is the parent of the ``kgen`` package folder, as in an editable
install). They are plain functional Keras models and load with ``safe_mode=True`` on every backend.
"""

import os
import pathlib
import threading

import keras

__all__ = ["CLASSIFIER_NAMES", "classifier", "feature_model", "saved_models_dir"]

CLASSIFIER_NAMES = ("animals", "digits", "patches")
ENV_VAR = "KGEN_SAVED_MODELS"
TRAIN_SCRIPT = "scripts/train_classifiers.py"

# Loaded models, keyed by the resolved file path (so pointing KGEN_SAVED_MODELS elsewhere never returns a
# model loaded from the old folder) and the layer (None for the full classifier).
_CACHE = {}
_LOCK = threading.Lock()


def saved_models_dir():
    """The folder holding the classifier files: ``$KGEN_SAVED_MODELS`` if set, else ``<repo root>/saved_models``.

    Returns:
        A `pathlib.Path` (not checked for existence).

    Example:
        >>> (saved_models_dir() / "classifier_digits.keras").name
        'classifier_digits.keras'
    """
    folder = os.environ.get(ENV_VAR)
    if folder:
        return pathlib.Path(folder)
    return pathlib.Path(__file__).resolve().parent.parent.parent / "saved_models"


def _check_name(name):
    if not isinstance(name, str) or name not in CLASSIFIER_NAMES:
        raise ValueError(f"`name` must be one of {list(CLASSIFIER_NAMES)}, got {name!r}")
    return name


def _model_path(name):
    path = saved_models_dir() / f"classifier_{name}.keras"
    if not path.is_file():
        raise FileNotFoundError(
            f"classifier file for {name!r} not found: {path}. Produce it with "
            f"`KERAS_BACKEND=jax python {TRAIN_SCRIPT}` from the repository root, or point the "
            f"{ENV_VAR} environment variable at the folder that holds classifier_{name}.keras."
        )
    return path


def _load(path):
    key = (str(path), None)
    if key not in _CACHE:
        model = keras.saving.load_model(path, safe_mode=True)
        # Feature extractors are fixed measuring instruments: freeze them so that a model that happens to
        # contain one (or an accidental fit) cannot move the shared, cached weights.
        model.trainable = False
        _CACHE[key] = model
    return _CACHE[key]


def classifier(name):
    """The full shipped classifier for dataset `name`: images -> class logits (10; 9 for "patches").

    The model is loaded once per process (per file path) and the same frozen object is returned on every
    call; do not modify it.

    Args:
        name: "digits", "animals" or "patches".

    Returns:
        A `keras.Model` mapping float32 images in [0, 1] of shape (n, 8, 8, 1) (digits), (n, 28, 28, 1)
        (animals) or (n, 32, 32, 1) and (n, 16, 16, 1) (patches) to logits of shape (n, 10) ((n, 9) for patches).

    Raises:
        ValueError: unknown `name` (checked before anything is loaded).
        FileNotFoundError: the `.keras` file is missing (the message names the path and the script).

    Example:
        >>> import numpy as np
        >>> from kgen.datasets import DIGIT_LEVELS, dequantize, load_digits
        >>> x, y = load_digits("test")
        >>> logits = classifier("digits").predict(dequantize(x, DIGIT_LEVELS), verbose=0)
        >>> print(logits.shape, float(np.mean(logits.argmax(-1) == y)) > 0.9)
        (359, 10) True
    """
    _check_name(name)
    path = _model_path(name)
    with _LOCK:
        return _load(path)


def feature_model(name, layer="features"):
    """Feature extractor for FID/KID: the activations of `layer` of the shipped classifier for `name`.

    Built as ``keras.Model(clf.input, clf.get_layer(layer).output)`` on the loaded classifier, so it shares
    its (frozen) weights. Cached per (file path, layer): repeated calls return the same object.

    Args:
        name: "digits", "animals" or "patches".
        layer: name of the classifier layer whose output is the feature vector; the default "features" is
            the penultimate Dense + ReLU layer (64 units for digits, 128 for animals and patches).

    Returns:
        A `keras.Model` mapping float32 images in [0, 1], shape (n, H, W, 1), to features (n, d); pass it
        as `feature_model` to `kgen.metrics.FrechetDistance` or `KernelInceptionDistance` (which read d
        from its `output_shape`).

    Raises:
        ValueError: unknown `name` (checked before anything is loaded) or unknown `layer`.
        FileNotFoundError: the `.keras` file is missing (the message names the path and the script).

    Example:
        >>> from kgen.datasets import DIGIT_LEVELS, dequantize, load_digits
        >>> from kgen.metrics import FrechetDistance
        >>> features = feature_model("digits")
        >>> features.output_shape
        (None, 64)
        >>> fid = FrechetDistance(feature_model=features)
        >>> fid.update_state(dequantize(load_digits("train")[0], DIGIT_LEVELS, seed=1),
        ...                  dequantize(load_digits("test")[0], DIGIT_LEVELS, seed=2))
        >>> float(fid.result()) >= 0.0
        True
    """
    _check_name(name)
    if not isinstance(layer, str):
        raise ValueError(f"`layer` must be a layer name (str), got {layer!r}")
    path = _model_path(name)
    with _LOCK:
        key = (str(path), layer)
        if key not in _CACHE:
            clf = _load(path)
            names = [each.name for each in clf.layers]
            if layer not in names:
                raise ValueError(f"`layer` must name a layer of the {name!r} classifier, one of {names}; got {layer!r}")
            # `clf.input` (one tensor), not `clf.inputs` (a list): a model built on a list warns whenever it
            # is called on a bare tensor, which is how the metrics call it.
            _CACHE[key] = keras.Model(clf.input, clf.get_layer(layer).output, name=f"{name}_{layer}")
        return _CACHE[key]
