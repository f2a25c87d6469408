"""Image grids, PNG writing and the SampleGrid callback."""

import os

import keras
import numpy as np
import pytest
from keras import ops
from PIL import Image

from kgen.callbacks import SampleGrid
from kgen.images import make_grid, save_grid, scatter_image, to_uint8


def test_make_grid_places_each_image_in_its_tile():
    images = np.stack([np.full((2, 3, 1), k, np.uint8) for k in range(5)])
    grid = make_grid(images, rows=2, padding=1, value_range=(0, 255))
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1)
    for k in range(5):
        r, c = divmod(k, 3)
        top, left = 1 + r * 3, 1 + c * 4
        assert np.all(grid[top:top + 2, left:left + 3] == k)
    assert np.all(grid[0] == 255)  # padding stays white


def test_to_uint8_maps_value_range_and_clips():
    np.testing.assert_array_equal(to_uint8(np.array([-1.0, 0.0, 0.5, 1.0, 2.0])), [0, 0, 128, 255, 255])
    np.testing.assert_array_equal(to_uint8(np.array([0, 8, 16]), value_range=(0, 16)), [0, 128, 255])
    # uint8 data with a range other than 0..255 (the 17-level digits) is rescaled, not passed through.
    np.testing.assert_array_equal(to_uint8(np.array([0, 8, 16], np.uint8), value_range=(0, 16)), [0, 128, 255])
    np.testing.assert_array_equal(to_uint8(np.array([0, 7, 255], np.uint8), value_range=(0, 255)), [0, 7, 255])
    with pytest.raises(ValueError, match="value_range"):
        to_uint8(np.zeros(2), value_range=(1, 1))
    np.testing.assert_array_equal(to_uint8(np.array([np.nan, np.inf, -np.inf])), [0, 255, 0])


def test_to_uint8_without_a_range_maps_the_images_own_finite_range():
    # (−3, 5 + 1e-6): the midpoint rounds down to 127; 1e-6 keeps a constant image from dividing by zero
    np.testing.assert_array_equal(to_uint8(np.array([-3.0, 1.0, 5.0]), value_range=None), [0, 127, 255])
    np.testing.assert_array_equal(to_uint8(np.array([-3.0, np.nan, 5.0, np.inf]), value_range=None), [0, 0, 255, 255])


def test_bad_images_are_rejected():
    with pytest.raises(ValueError, match="images"):
        make_grid(np.zeros((2, 4, 4, 2)))
    with pytest.raises(ValueError, match="points"):
        scatter_image(np.zeros((3, 3)))


def test_save_grid_writes_png_and_leaves_no_temp(tmp_path):
    path = save_grid(str(tmp_path / "g.png"), np.random.default_rng(0).random((4, 5, 5, 3)), scale=2)
    with Image.open(path) as picture:
        assert picture.size == ((2 * 6 + 1) * 2, (2 * 6 + 1) * 2)
    assert os.listdir(tmp_path) == ["g.png"]


def test_scatter_image_marks_points_and_centres():
    picture = scatter_image(np.array([[0.0, 0.0], [1.0, 1.0], [0.6, 0.5]]), size=11, extent=(0.0, 1.0),
                            centres=[[0.5, 0.5]])
    assert tuple(picture[10, 0]) == (30, 30, 30)   # (0, 0) is bottom-left
    assert tuple(picture[0, 10]) == (30, 30, 30)
    assert tuple(picture[5, 5]) == (220, 30, 30)   # a centre's cross
    assert tuple(picture[5, 6]) == (30, 30, 30)    # a sample on the cross stays visible


class TinySampler(keras.Model):
    """kgen's protocol in miniature: `sample(n, *, seed)` in `value_range`; `constant` pins every pixel."""

    def __init__(self, value_range=(0.0, 1.0), constant=None, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)
        self.value_range, self.constant, self.seeds = value_range, constant, []

    def call(self, x):
        return self.dense(x)

    def sample(self, n, *, seed=None):
        self.seeds.append(seed)
        if self.constant is not None:
            return ops.full((n, 4, 4, 1), self.constant)
        return ops.sigmoid(keras.random.normal((n, 4, 4, 1), seed=seed or 0))


def test_sample_grid_saves_one_png_per_epoch(tmp_path):
    model = TinySampler()
    model.compile(optimizer="sgd", loss="mse")
    callback = SampleGrid(str(tmp_path), n=4, every=1)
    model.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=2, verbose=0, callbacks=[callback])
    assert sorted(os.listdir(tmp_path)) == ["samples_epoch001.png", "samples_epoch002.png"]
    assert SampleGrid.from_config(callback.get_config()).n == 4
    assert model.seeds == [0, 0]  # the same draw every epoch: the grids show training, not new noise


@pytest.mark.parametrize("value_range, given, pixel", [((-1.0, 1.0), None, 127), ((0.0, 1.0), None, 0),
                                                       ((-1.0, 1.0), (0.0, 1.0), 0), (None, None, 0)])
def test_sample_grid_reads_the_models_value_range(tmp_path, value_range, given, pixel):
    from PIL import Image

    model = TinySampler(value_range=value_range, constant=0.0)
    model.compile(optimizer="sgd", loss="mse")
    callback = SampleGrid(str(tmp_path), n=1, value_range=given)
    model.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=1, verbose=0, callbacks=[callback])
    picture = np.asarray(Image.open(callback.paths[0]).convert("L"))
    assert abs(int(picture[picture.shape[0] // 2, picture.shape[1] // 2]) - pixel) <= 1


def test_sample_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n"):
        SampleGrid("d", n=0)
    with pytest.raises(ValueError, match="every"):
        SampleGrid("d", every=0)
