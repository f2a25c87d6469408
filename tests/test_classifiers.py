"""Tests for kgen.metrics.classifiers: the shipped FID/KID feature classifiers.

Runs on each Keras backend (KERAS_BACKEND=jax|tensorflow|torch). The files were trained on JAX; reaching the
recorded test accuracy on every backend shows the saved weights are read and applied correctly everywhere.
Oracles: the test-split labels, the accuracies recorded in saved_models/classifiers.json, and orderings of
Fréchet distances that a broken feature extractor would violate (real vs real << real vs one class, real vs
noise).
"""

import hashlib
import json

import keras
import numpy as np
import pytest

from kgen.datasets import ANIMAL_LEVELS, DIGIT_LEVELS, dequantize, load_animals, load_digits
from kgen.metrics import FrechetDistance, KernelInceptionDistance
from kgen.metrics import classifiers as classifiers_module
from kgen.metrics.classifiers import classifier, feature_model, saved_models_dir

# name -> (loader, levels, image shape, feature dim, minimum test accuracy). The minimum sits ~3 points
# below the accuracy measured at training time (saved_models/classifiers.json: 1.0000 and 0.9185).
SPECS = {
    "digits": (load_digits, DIGIT_LEVELS, (8, 8, 1), 64, 0.97),
    "animals": (load_animals, ANIMAL_LEVELS, (28, 28, 1), 128, 0.89),
}
NAMES = sorted(SPECS)


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _record():
    with open(saved_models_dir() / "classifiers.json") as f:
        return json.load(f)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_file_loads_in_safe_mode_as_a_plain_classifier(name):
    _, _, shape, dim, _ = SPECS[name]
    model = keras.saving.load_model(saved_models_dir() / f"classifier_{name}.keras", safe_mode=True)
    assert tuple(model.input_shape) == (None, *shape)
    assert tuple(model.output_shape) == (None, 10)
    assert model.get_layer("features").output.shape[-1] == dim
    assert (saved_models_dir() / f"classifier_{name}.keras").stat().st_size < 1_000_000


@pytest.mark.parametrize("name", NAMES)
def test_test_split_accuracy_matches_training_time_on_this_backend(name):
    load, levels, _, _, minimum = SPECS[name]
    images, labels = load("test")
    logits = _numpy(classifier(name).predict(dequantize(images, levels, seed=0), batch_size=500, verbose=0))
    accuracy = float(np.mean(logits.argmax(-1) == labels))
    assert accuracy >= minimum
    # The same file and images on another backend may flip at most a few borderline examples.
    recorded = _record()["classifiers"][name]["test_accuracy"]
    assert abs(accuracy - recorded) <= 0.005


def test_classifiers_accept_rescaled_integer_images_too():
    images, labels = load_digits("test")
    rescaled = (images / (DIGIT_LEVELS - 1)).astype("float32")
    logits = _numpy(classifier("digits").predict(rescaled, batch_size=500, verbose=0))
    assert np.mean(logits.argmax(-1) == labels) >= SPECS["digits"][4]


@pytest.mark.parametrize("name", NAMES)
def test_features_have_the_documented_shape_and_come_from_the_classifier(name):
    load, levels, shape, dim, _ = SPECS[name]
    features = feature_model(name)
    assert tuple(features.output_shape) == (None, dim)
    x = dequantize(load("test")[0][:7], levels, seed=3)
    out = _numpy(features(x, training=False))
    assert out.shape == (7, dim) and np.all(np.isfinite(out)) and np.all(out >= 0.0)  # ReLU features
    # The logits are the last Dense layer applied to these features: same weights, no copy.
    head = classifier(name).get_layer("logits")
    expected = _numpy(classifier(name)(x, training=False))
    np.testing.assert_allclose(_numpy(head(out)), expected, rtol=1e-4, atol=1e-4)
    assert feature_model(name) is features and classifier(name).trainable is False
    with open(saved_models_dir() / f"classifier_{name}.keras", "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == _record()["classifiers"][name]["sha256"]
    assert _record()["classifiers"][name]["feature_dim"] == dim


def test_other_layers_can_serve_as_features():
    gap = feature_model("digits", layer="gap")
    assert tuple(gap.output_shape) == (None, 64)
    with pytest.raises(ValueError, match="`layer`"):
        feature_model("digits", layer="no_such_layer")


def _frechet(features, real, fake):
    metric = FrechetDistance(feature_model=features)
    metric.update_state(real, fake)
    return float(metric.result())


def test_frechet_distance_on_digit_features_orders_real_one_class_and_noise():
    features = feature_model("digits")
    train_images, train_labels = load_digits("train")
    test_images, _ = load_digits("test")
    # 256 images per set (all ~145 training 3s for the one-class set): few batch shapes keep JAX's eager
    # compilation short, and with 64 features the finite-sample bias of real vs real (~5) stays far below
    # the gaps tested.
    n = 256
    real_train = dequantize(train_images[:: len(train_images) // n][:n], DIGIT_LEVELS, seed=1)
    real_test = dequantize(test_images[:n], DIGIT_LEVELS, seed=2)
    one_class = dequantize(train_images[train_labels == 3], DIGIT_LEVELS, seed=3)
    noise = np.random.default_rng(4).random((n, 8, 8, 1)).astype("float32")

    real_vs_real = _frechet(features, real_train, real_test)
    real_vs_one_class = _frechet(features, real_train, one_class)
    real_vs_noise = _frechet(features, real_train, noise)
    print(f"FD real/real {real_vs_real:.3f}, real/one class {real_vs_one_class:.3f}, real/noise {real_vs_noise:.3f}")
    # One class and noise are deliberately not ordered against each other: in these features a single class
    # lies further from the full mixture than uniform noise does (measured ~290 vs ~115).
    assert real_vs_real < 0.1 * real_vs_one_class
    assert real_vs_real < 0.1 * real_vs_noise


def test_animal_features_separate_real_images_from_noise():
    features = feature_model("animals")
    train_images, _ = load_animals("train")
    test_images, _ = load_animals("test")
    real_a = dequantize(train_images[::16], ANIMAL_LEVELS, seed=1)  # 500 images, all classes (sorted split)
    real_b = dequantize(test_images[::4], ANIMAL_LEVELS, seed=2)
    noise = np.random.default_rng(5).random((500, 28, 28, 1)).astype("float32")
    kid = KernelInceptionDistance(feature_model=features)
    kid.update_state(real_a, real_b)
    real_vs_real = float(kid.result())
    kid.reset_state()
    kid.update_state(real_a, noise)
    assert real_vs_real < 0.05 * float(kid.result())
    assert _frechet(features, real_a, real_b) < 0.05 * _frechet(features, real_a, noise)


@pytest.mark.parametrize("bad", ["inception", "Digits", "", 3, None])
def test_unknown_names_are_rejected_before_any_loading(bad, monkeypatch, tmp_path):
    # An empty folder: were the file looked up first, this would be a FileNotFoundError.
    monkeypatch.setenv("KGEN_SAVED_MODELS", str(tmp_path))
    for function in (feature_model, classifier):
        with pytest.raises(ValueError, match="`name`"):
            function(bad)


@pytest.mark.parametrize("name", NAMES)
def test_missing_files_name_the_path_and_the_training_script(name, monkeypatch, tmp_path):
    monkeypatch.setenv("KGEN_SAVED_MODELS", str(tmp_path))
    assert saved_models_dir() == tmp_path
    for function in (feature_model, classifier):
        with pytest.raises(FileNotFoundError) as info:
            function(name)
        message = str(info.value)
        assert str(tmp_path / f"classifier_{name}.keras") in message and "train_classifiers.py" in message


def test_default_folder_is_saved_models_at_the_repository_root(monkeypatch):
    monkeypatch.delenv("KGEN_SAVED_MODELS", raising=False)
    folder = saved_models_dir()
    assert folder.name == "saved_models"
    assert (folder.parent / "kgen" / "metrics" / "classifiers.py").samefile(classifiers_module.__file__)


def test_feature_model_is_re_exported_from_kgen_metrics():
    import kgen.metrics

    assert kgen.metrics.feature_model is feature_model
