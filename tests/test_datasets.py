"""Tests for kgen.datasets: numpy in, numpy out, no network. Backend-independent."""

import doctest
import gzip
import hashlib
import io
import os
import pathlib
import pickle

import numpy as np
import pytest

from kgen import datasets
from kgen.datasets import animals, images, keras_datasets, quantization, safe_pickle, toy



def _row_multiset(x):
    rows = [row.tobytes() for row in x.reshape(len(x), -1)]
    return sorted(rows)


# ----------------------------------------------------------------------------------------------- import hygiene


@pytest.mark.parametrize("module", [images, animals, quantization, toy, safe_pickle, keras_datasets])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    # keras_datasets' example downloads, so it is marked +SKIP; every other module must really run one.
    assert result.attempted > 0 or module is keras_datasets


# ----------------------------------------------------------------------------------------------------- digits


@pytest.mark.parametrize("split,count", [("train", 1438), ("test", 359), ("all", 1797)])
def test_digits_shapes_dtypes_and_ranges(split, count):
    x, y = datasets.load_digits(split)
    assert x.shape == (count, 8, 8, 1) and x.dtype == np.uint8
    assert y.shape == (count,) and y.dtype == np.int64
    assert x.min() == 0 and x.max() == 16
    assert set(np.unique(y)) == set(range(10))


def test_digits_split_is_disjoint_and_complete():
    train, test, full = (datasets.load_digits(s)[0] for s in ("train", "test", "all"))
    assert not set(_row_multiset(train)) & set(_row_multiset(test))
    assert _row_multiset(np.concatenate([train, test])) == _row_multiset(full)


def test_digits_split_is_stratified_80_20():
    counts_all = np.bincount(datasets.load_digits("all")[1], minlength=10)
    counts_test = np.bincount(datasets.load_digits("test")[1], minlength=10)
    assert np.all(np.abs(counts_test - 0.2 * counts_all) <= 0.5)


def test_digits_split_is_pinned():
    # Guards the documented fixed split against accidental change (order included).
    x, y = datasets.load_digits("test")
    assert hashlib.sha256(x.tobytes()).hexdigest()[:16] == PINNED_DIGITS_TEST_SHA
    assert y[:10].tolist() == [8, 1, 7, 5, 6, 0, 7, 3, 8, 5]


PINNED_DIGITS_TEST_SHA = "f3ff2c953e42d20e"


@pytest.mark.parametrize("loader", [datasets.load_digits, datasets.load_animals])
def test_loaders_are_deterministic_and_return_private_copies(loader):
    x1, y1 = loader("train")
    x1[...] = 0
    y1[...] = -1
    x2, y2 = loader("train")
    x3, y3 = loader("train")
    assert np.array_equal(x2, x3) and np.array_equal(y2, y3)
    assert x2.max() > 0 and y2.min() >= 0
    assert x2.flags.writeable


# ---------------------------------------------------------------------------------------------------- animals


@pytest.mark.parametrize("split,count", [("train", 8000), ("test", 2000), ("all", 10000)])
def test_animals_shapes_dtypes_and_ranges(split, count):
    x, y = datasets.load_animals(split)
    assert x.shape == (count, 28, 28, 1) and x.dtype == np.uint8
    assert y.shape == (count,) and y.dtype == np.int64
    assert x.min() == 0 and x.max() == 255


def test_animals_hold_ten_classes_of_one_thousand():
    _, y = datasets.load_animals("all")
    assert np.array_equal(np.bincount(y), np.full(10, 1000))
    assert len(datasets.ANIMAL_CLASS_NAMES) == 10


def test_animals_split_is_disjoint_by_content_and_complete():
    train, test, full = (datasets.load_animals(s)[0] for s in ("train", "test", "all"))
    assert not set(_row_multiset(train)) & set(_row_multiset(test))
    assert _row_multiset(np.concatenate([train, test])) == _row_multiset(full)


def test_animal_files_hold_the_documented_arrays():
    with animals._resource(animals._IMAGE_FILE).open("rb") as f:
        x = datasets.load_pickle_restricted(f)
    with animals._resource(animals._LABEL_FILE).open("rb") as f:
        y = datasets.load_pickle_restricted(f)
    assert x.dtype == np.uint8 and x.shape == (10000, 28, 28)
    assert y.dtype == np.int64 and y.shape == (10000,)


@pytest.mark.parametrize(
    "x,y,match",
    [
        (np.zeros((10, 28, 28), np.float32), np.zeros(10, np.int64), "images"),
        (np.zeros((10, 28, 27), np.uint8), np.zeros(10, np.int64), "images"),
        ([[0]], np.zeros(10, np.int64), "images"),
        (np.zeros((10, 28, 28), np.uint8), np.zeros(9, np.int64), "labels"),
        (np.zeros((10, 28, 28), np.uint8), np.zeros(10, np.float64), "labels"),
        (np.zeros((10, 28, 28), np.uint8), np.full(10, 10), "labels"),
    ],
)
def test_animal_content_check_rejects_wrong_layouts(x, y, match):
    with pytest.raises(ValueError, match=match):
        animals.check_animal_arrays(x, y, count=10)


def test_animals_without_package_raise_import_error_with_install_hint(monkeypatch):
    monkeypatch.setattr(animals, "_PACKAGE", "kgen_test_no_such_package")
    with pytest.raises(ImportError, match=r"pip install kgen\[data\]"):
        animals._resource(animals._IMAGE_FILE)


# ---------------------------------------------------------------------------------------- restricted unpickler


class _TouchWithOsSystem:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


class _TouchWithPathlib:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.path),)


class _Calls:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_unpickler_refuses_os_system_without_running_it(tmp_path):
    target = tmp_path / "pwned"
    payload = pickle.dumps(_TouchWithOsSystem(target))
    with pytest.raises(pickle.UnpicklingError, match=r"refused global (posix|nt|os)\.system"):
        datasets.load_pickle_restricted(io.BytesIO(payload))
    assert not target.exists()


def test_unpickler_refuses_a_payload_that_plain_pickle_would_run(tmp_path):
    target = tmp_path / "touched"
    payload = pickle.dumps(_TouchWithPathlib(target))
    with pytest.raises(datasets.RestrictedUnpicklingError, match=r"pathlib\.Path\.touch"):
        datasets.load_pickle_restricted(io.BytesIO(payload))
    assert not target.exists()
    pickle.loads(payload)  # negative control: the same bytes do run under plain pickle
    assert target.exists()


@pytest.mark.parametrize(
    "func,args,refused",
    [
        (eval, ("1 + 1",), "builtins.eval"),
        (getattr, (0, "real"), "builtins.getattr"),
        (np.load, ("x.npy",), "numpy.load"),
        (np.frombuffer, (b"\0",), "numpy.frombuffer"),
    ],
)
def test_unpickler_refuses_globals_outside_numpy_array_reconstruction(func, args, refused):
    payload = pickle.dumps(_Calls(func, *args), protocol=4)
    with pytest.raises(pickle.UnpicklingError, match=refused.replace(".", r"\.")):
        datasets.load_pickle_restricted(io.BytesIO(payload))


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_unpickler_accepts_plain_numpy_arrays(protocol):
    arrays = {"a": np.arange(12, dtype=np.int64).reshape(3, 4), "b": np.linspace(0, 1, 5, dtype=np.float32)}
    loaded = datasets.load_pickle_restricted(io.BytesIO(pickle.dumps(arrays, protocol=protocol)))
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype and np.array_equal(loaded[key], value)


def test_unpickler_reads_gzip_files_by_path(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(np.arange(5, dtype=np.uint8), f)
    assert np.array_equal(datasets.load_pickle_restricted(path), np.arange(5))
    assert np.array_equal(datasets.load_pickle_restricted(str(path)), np.arange(5))


# ------------------------------------------------------------------------------------------------ dequantize


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_dequantize_lands_in_unit_interval_and_quantize_inverts_it(levels):
    x = np.random.default_rng(1).integers(0, levels, size=(200, 8, 8, 1)).astype(np.uint8 if levels <= 256 else int)
    x[0, 0, 0, 0], x[0, 0, 1, 0] = 0, levels - 1
    y = datasets.dequantize(x, levels, seed=3)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert y.min() >= 0.0 and y.max() < 1.0
    assert np.array_equal(datasets.quantize(y, levels), x)


def test_dequantize_round_trips_at_cell_edges():
    # Values just below 1 after rounding to float32 are where a naive cast would step into the next cell.
    x = np.full(200_000, 255, dtype=np.uint8)
    assert np.array_equal(datasets.quantize(datasets.dequantize(x, 256, seed=0), 256), x)
    x = np.repeat(np.arange(17), 20_000)
    assert np.array_equal(datasets.quantize(datasets.dequantize(x, 17, seed=0), 17), x)


def test_dequantize_noise_has_mean_half_a_level():
    levels = 17
    x = np.random.default_rng(0).integers(0, levels, size=100_000)
    offset = datasets.dequantize(x, levels, seed=0) - x / levels
    assert abs(offset.mean() - 0.5 / levels) < 0.01 / levels
    assert offset.min() >= 0 and offset.max() < 1 / levels


def test_dequantize_seeds_are_reproducible_and_distinct():
    x, _ = datasets.load_digits("test")
    a, b, c = (datasets.dequantize(x, 17, seed=s) for s in (0, 0, 1))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dequantize_accepts_integer_valued_floats_and_bools():
    assert np.array_equal(datasets.dequantize(np.array([0.0, 3.0]), 4), datasets.dequantize(np.array([0, 3]), 4))
    assert datasets.quantize(datasets.dequantize(np.array([True, False]), 2), 2).tolist() == [1, 0]


def test_quantize_clips_and_picks_dtype():
    assert datasets.quantize(np.array([-0.5, 1.5]), 256).tolist() == [0, 255]
    assert datasets.quantize(np.array([0.5]), 256).dtype == np.uint8
    assert datasets.quantize(np.array([0.5]), 1024).dtype == np.int64


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_to_signed_maps_the_end_levels_to_minus_one_and_one_in_float32(levels):
    x = np.random.default_rng(2).integers(0, levels, size=(50, 8, 8, 1)).astype(np.uint8)
    x[0, 0, 0, 0], x[0, 0, 1, 0] = 0, levels - 1
    y = datasets.to_signed(x, levels)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert y.min() == -1.0 and y.max() == 1.0
    np.testing.assert_allclose(y, 2.0 * x / (levels - 1) - 1.0, rtol=0, atol=1e-6)


def test_to_signed_does_not_wrap_where_uint8_arithmetic_does():
    x = np.array([0, 255], np.uint8)
    assert (x * 2 - 1).tolist() == [255, 253]  # the README's old `images * 2 - 1` on uint8 images
    assert datasets.to_signed(x, 256).tolist() == [-1.0, 1.0]
    assert datasets.to_signed(np.array([0.0, 16.0]), 17).tolist() == [-1.0, 1.0]  # integer-valued floats


# ------------------------------------------------------------------------------------------------------- toy2d


@pytest.mark.parametrize("name", datasets.TOY2D_NAMES)
def test_toy2d_shape_dtype_and_determinism(name):
    a = datasets.toy2d(name, 500, seed=7)
    assert a.shape == (500, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, datasets.toy2d(name, 500, seed=7))
    assert not np.array_equal(a, datasets.toy2d(name, 500, seed=8))


@pytest.mark.parametrize("name,k,std", [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_toy2d_mixture_samples_sit_on_their_modes_and_cover_all(name, k, std):
    centres, got_std = datasets.toy2d_modes(name)
    assert centres.shape == (k, 2) and centres.dtype == np.float32 and got_std == std
    x = datasets.toy2d(name, 10_000, seed=0)
    dist = np.linalg.norm(x[:, None, :] - centres[None], axis=-1)
    assert dist.min(axis=1).max() < 6 * std
    counts = np.bincount(dist.argmin(axis=1), minlength=k)
    assert np.all(np.abs(counts - 10_000 / k) < 0.3 * 10_000 / k)


def test_toy2d_mode_geometry_matches_the_documented_layouts():
    ring, _ = datasets.toy2d_modes("ring8")
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 2.0, rtol=1e-6)
    grid, _ = datasets.toy2d_modes("grid25")
    assert sorted(set(grid.ravel().tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


@pytest.mark.parametrize("name", ["moons", "swissroll"])
def test_toy2d_modes_refuses_continuous_datasets(name):
    with pytest.raises(ValueError, match="no discrete modes"):
        datasets.toy2d_modes(name)


# --------------------------------------------------------------------------------------------- stacked digits


def test_stacked_digits_shapes_and_label_range():
    x, y = datasets.stacked_digits(100, seed=0)
    assert x.shape == (100, 8, 8, 3) and x.dtype == np.uint8
    assert y.shape == (100,) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() < 1000
    assert np.array_equal(y, datasets.stacked_digits(100, seed=0)[1])


def test_stacked_digits_channels_are_train_digits_matching_the_label():
    train_x, train_y = datasets.load_digits("train")
    label_of = {im.tobytes(): int(lab) for im, lab in zip(train_x[..., 0], train_y)}
    x, y = datasets.stacked_digits(30, seed=1)
    for image, label in zip(x, y):
        digits = [label_of[image[..., c].tobytes()] for c in range(3)]
        assert 100 * digits[0] + 10 * digits[1] + digits[2] == label


def test_stacked_digits_cover_most_of_the_thousand_modes():
    _, y = datasets.stacked_digits(5000, seed=0)
    assert len(np.unique(y)) > 900


# ------------------------------------------------------------------------------------------- keras (offline)


def _fake_loader(train_x, train_y, test_x, test_y):
    return lambda: ((train_x, train_y), (test_x, test_y))


def test_keras_mnist_gains_a_channel_axis(monkeypatch):
    import keras

    rng = np.random.default_rng(0)
    fake = _fake_loader(
        rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.arange(5, dtype=np.uint8),
        rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), np.arange(3, dtype=np.uint8),
    )
    monkeypatch.setattr(keras.datasets.mnist, "load_data", fake)
    x, y = datasets.load_keras_dataset("mnist", "train")
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 3, 4]
    assert np.array_equal(x[..., 0], fake()[0][0])


def test_keras_cifar10_labels_are_flattened_and_all_concatenates(monkeypatch):
    import keras

    fake = _fake_loader(
        np.zeros((4, 32, 32, 3), np.uint8), np.array([[1], [2], [3], [4]], np.uint8),
        np.ones((2, 32, 32, 3), np.uint8), np.array([[9], [8]], np.uint8),
    )
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fake)
    x, y = datasets.load_keras_dataset("cifar10", "all")
    assert x.shape == (6, 32, 32, 3) and x.dtype == np.uint8
    assert y.shape == (6,) and y.dtype == np.int64 and y.tolist() == [1, 2, 3, 4, 9, 8]
    x, y = datasets.load_keras_dataset("cifar10", "test")
    assert x.shape == (2, 32, 32, 3) and y.tolist() == [9, 8]


def test_keras_loader_validates_before_downloading(monkeypatch):
    import keras

    def must_not_download():
        raise AssertionError("download attempted")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", must_not_download)
    with pytest.raises(ValueError, match="split"):
        datasets.load_keras_dataset("fashion_mnist", "validation")
    with pytest.raises(ValueError, match="name"):
        datasets.load_keras_dataset("svhn")


# ---------------------------------------------------------------------------------------------- bad arguments


def _boom(*args, **kwargs):
    raise AssertionError("work started before argument validation")


def test_bad_split_is_rejected_before_loading(monkeypatch):
    monkeypatch.setattr(images, "_digits_arrays", _boom)
    monkeypatch.setattr(animals, "_animal_arrays", _boom)
    for loader in (datasets.load_digits, datasets.load_animals):
        with pytest.raises(ValueError, match=r"split.*\['train', 'test', 'all'\]"):
            loader("validation")


_X = np.array([0, 1, 2])


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: datasets.load_digits("val"), ValueError, "split"),
        (lambda: datasets.load_digits(None), ValueError, "split"),
        (lambda: datasets.load_animals("TRAIN"), ValueError, "split"),
        (lambda: datasets.load_keras_dataset("svhn"), ValueError, "name"),
        (lambda: datasets.load_keras_dataset("mnist", "x"), ValueError, "split"),
        (lambda: datasets.toy2d("spiral", 10), ValueError, "name"),
        (lambda: datasets.toy2d("ring8", 0), ValueError, "`n`"),
        (lambda: datasets.toy2d("ring8", -3), ValueError, "`n`"),
        (lambda: datasets.toy2d("ring8", 2.0), TypeError, "`n`"),
        (lambda: datasets.toy2d("moons", True), TypeError, "`n`"),
        (lambda: datasets.toy2d("ring8", 10, seed=-1), ValueError, "seed"),
        (lambda: datasets.toy2d_modes("spiral"), ValueError, "name"),
        (lambda: datasets.toy2d_modes("moons"), ValueError, "name"),
        (lambda: datasets.stacked_digits(0), ValueError, "`n`"),
        (lambda: datasets.stacked_digits(1.5), TypeError, "`n`"),
        (lambda: datasets.stacked_digits(5, seed=0.5), TypeError, "seed"),
        (lambda: datasets.dequantize(_X, 1), ValueError, "levels"),
        (lambda: datasets.dequantize(_X, 2.5), TypeError, "levels"),
        (lambda: datasets.dequantize(np.array([0, 17]), 17), ValueError, "`x`"),
        (lambda: datasets.dequantize(np.array([-1, 0]), 17), ValueError, "`x`"),
        (lambda: datasets.dequantize(np.array([0.5]), 17), ValueError, "`x`"),
        (lambda: datasets.dequantize(np.array(["a"]), 17), ValueError, "`x`"),
        (lambda: datasets.dequantize(_X, 17, seed=-2), ValueError, "seed"),
        (lambda: datasets.quantize(np.array([0.5]), 1), ValueError, "levels"),
        (lambda: datasets.to_signed(_X, 1), ValueError, "levels"),
        (lambda: datasets.to_signed(_X, 256.0), TypeError, "levels"),
        (lambda: datasets.to_signed(np.array([0, 256]), 256), ValueError, r"\[0, 255\]"),
        (lambda: datasets.to_signed(np.array([-1, 0]), 256), ValueError, "`x`"),
        (lambda: datasets.to_signed(np.array([0.5, 1.0]), 256), ValueError, "`x` must hold integers"),
        (lambda: datasets.quantize(np.array([np.nan]), 17), ValueError, "`y`"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_toy2d_std_overrides_the_mixture_spread_and_is_validated():
    wide = datasets.toy2d("ring8", 20000, seed=0, std=0.2)
    centres, _ = datasets.toy2d_modes("ring8")
    nearest = np.min(np.linalg.norm(wide[:, None, :] - centres[None], axis=-1), axis=1)
    assert 0.2 < np.sqrt(np.mean(nearest ** 2) / 2) < 0.22   # per-axis spread ≈ 0.2 (slightly inflated by overlap)
    np.testing.assert_array_equal(datasets.toy2d("ring8", 10, seed=3), datasets.toy2d("ring8", 10, seed=3, std=0.02))
    with pytest.raises(ValueError, match="std"):
        datasets.toy2d("moons", 10, std=0.1)
    with pytest.raises(ValueError, match="std"):
        datasets.toy2d("ring8", 10, std=-1.0)
