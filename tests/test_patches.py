"""kgen.datasets.load_patches: grayscale crops of scikit-image's images, split by region. NumPy only."""

import doctest
import hashlib
import importlib.util

import numpy as np
import pytest

from kgen import datasets
from kgen.datasets import patches

pytestmark = pytest.mark.torch  # no backend involved: once is enough


@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_patches_shapes_dtypes_labels_and_ranges(split):
    x, y = datasets.load_patches(split, size=16)
    assert x.dtype == np.uint8 and x.ndim == 4 and x.shape[1:] == (16, 16, 1)
    assert y.dtype == np.int64 and y.shape == (len(x),)
    assert set(np.unique(y)) == set(range(len(datasets.PATCH_SOURCES)))  # every source on every side
    assert x.min() == 0 and x.max() == 255


def test_each_patch_is_the_crop_its_box_names():
    x, y = datasets.load_patches("all", size=24, stride=40)
    boxes = datasets.patch_boxes("all", size=24, stride=40)
    sources = patches._sources()
    assert np.array_equal(boxes[:, 0], y)
    for (label, top, left), crop in zip(boxes, x):
        assert np.array_equal(crop[..., 0], sources[label][top:top + 24, left:left + 24])


@pytest.mark.parametrize("size,stride", [(32, None), (113, 7), (8, 5)])
def test_no_test_pixel_lies_inside_any_training_crop(size, stride):
    for label, image in enumerate(patches._sources()):
        covered = {}
        for split in ("train", "test"):
            mask = np.zeros(image.shape, dtype=bool)
            for source, top, left in datasets.patch_boxes(split, size=size, stride=stride):
                if source == label:
                    mask[top:top + size, left:left + size] = True
            covered[split] = mask
        assert covered["train"].any() and covered["test"].any()
        assert not (covered["train"] & covered["test"]).any(), datasets.PATCH_SOURCES[label]


def test_patches_are_deterministic_and_fresh_copies():
    x1, y1 = datasets.load_patches("test", size=16)
    x1[...] = 0
    y1[...] = -1
    x2, y2 = datasets.load_patches("test", size=16)
    x3, y3 = datasets.load_patches("test", size=16)
    assert np.array_equal(x2, x3) and np.array_equal(y2, y3) and x2.max() > 0 and y2.min() >= 0
    # Guards the documented crops against accidental change (sources, luma, grid, order).
    assert hashlib.sha256(x2.tobytes()).hexdigest()[:16] == PINNED_TEST_SHA


PINNED_TEST_SHA = "656ebd19de4e50a8"


def test_all_is_train_then_test():
    train, test, full = (datasets.load_patches(s, size=16, stride=16)[0] for s in ("train", "test", "all"))
    assert np.array_equal(np.concatenate([train, test]), full)


def test_limit_draws_a_seeded_subset_in_grid_order():
    boxes = datasets.patch_boxes("train", size=32)
    picked = datasets.patch_boxes("train", size=32, limit=100, seed=3)
    again = datasets.patch_boxes("train", size=32, limit=100, seed=3)
    other = datasets.patch_boxes("train", size=32, limit=100, seed=4)
    assert len(picked) == 100 and np.array_equal(picked, again) and not np.array_equal(picked, other)
    rows = {tuple(b) for b in boxes}
    assert all(tuple(b) in rows for b in picked)
    order = [list(map(tuple, boxes)).index(tuple(b)) for b in picked]
    assert order == sorted(order)
    x, y = datasets.load_patches("train", size=32, limit=100, seed=3)
    assert x.shape == (100, 32, 32, 1) and np.array_equal(y, picked[:, 0])
    assert len(datasets.patch_boxes("test", size=32, limit=10**6)) == len(datasets.patch_boxes("test", size=32))


@pytest.mark.parametrize("kwargs,error,name", [
    ({"size": 114}, ValueError, "size"),
    ({"size": 0}, ValueError, "size"),
    ({"size": 32.0}, TypeError, "size"),
    ({"size": True}, TypeError, "size"),
    ({"split": "validation"}, ValueError, "split"),
    ({"stride": 0}, ValueError, "stride"),
    ({"limit": 0}, ValueError, "limit"),
    ({"limit": 5, "seed": -1}, ValueError, "seed"),
])
def test_bad_arguments_raise_before_any_image_is_read(monkeypatch, kwargs, error, name):
    def unreadable():
        raise AssertionError("the images were read before the arguments were checked")

    monkeypatch.setattr(patches, "_sources", unreadable)
    with pytest.raises(error, match=f"`{name}`"):
        datasets.load_patches(**kwargs)


def test_missing_scikit_image_names_the_data_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "skimage" else real(name, *a))
    patches._sources.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"kgen\[data\]"):
            datasets.load_patches("test", size=8)
    finally:
        patches._sources.cache_clear()


def test_module_doctests_print_what_they_show():
    result = doctest.testmod(patches, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
