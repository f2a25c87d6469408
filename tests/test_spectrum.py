"""kgen.metrics.power_spectrum and spectrum_distance: flat for white noise, a sinusoid in its bin, the documented
invariances, and a blurred set told apart from a fresh draw. NumPy only."""

import doctest

import numpy as np
import pytest

from kgen.datasets import gaussian_field
from kgen.metrics import power_spectrum, spectrum, spectrum_distance

pytestmark = pytest.mark.torch  # no backend involved: once is enough


def test_white_noise_is_flat_at_its_variance():
    noise = np.random.default_rng(0).normal(scale=1.5, size=(1000, 32, 32, 1))
    frequencies, power = power_spectrum(noise)
    np.testing.assert_allclose(frequencies, np.arange(1, 17) / 32)
    np.testing.assert_allclose(power, 1.5**2, rtol=0.12)
    assert abs(np.polyfit(np.log(frequencies), np.log(power), 1)[0]) < 0.03


def test_a_sinusoid_puts_its_power_in_its_bin():
    grid = np.arange(32)
    wave = np.cos(2 * np.pi * (3 * grid[:, None] + 4 * grid[None, :]) / 32)  # |k| = 5
    _, power = power_spectrum(wave[None])
    assert np.argmax(power) == 4  # r = 5
    # Parseval: the wave's total power, 32² · ½, sits in the 4 frequencies (±3, ±4) of an annulus of `count` cells.
    k = np.fft.fftfreq(32) * 32
    count = np.sum(np.rint(np.hypot(k[:, None], k[None, :])) == 5)
    np.testing.assert_allclose(power[4], 32**2 / 2 / count, rtol=1e-10)
    assert np.all(np.delete(power, 4) < 1e-20)


def test_measured_field_slope_matches_the_law():
    frequencies, power = power_spectrum(gaussian_field(1000, size=32, slope=2.0, seed=0))
    mid = (frequencies >= 3 / 32) & (frequencies <= 10 / 32)
    assert abs(-np.polyfit(np.log(frequencies[mid]), np.log(power[mid]), 1)[0] - 2.0) < 0.1


def test_distance_is_zero_on_itself_and_has_the_documented_invariances():
    rng = np.random.default_rng(1)
    a, b = gaussian_field(200, 16, 2.0, seed=1).astype(np.float64), rng.normal(size=(150, 16, 16, 3))
    d = spectrum_distance(a, b)
    assert spectrum_distance(a, a) == 0.0 and d > 0
    np.testing.assert_allclose(spectrum_distance(3.0 * a, 3.0 * b), d, rtol=1e-10)   # common scale
    np.testing.assert_allclose(spectrum_distance(a + rng.normal(size=(200, 1, 1, 1)), b), d, rtol=1e-10)  # shifts
    np.testing.assert_allclose(spectrum_distance(2.0 * a, a), (2 * np.log(2.0)) ** 2, rtol=1e-10)  # contrast counts
    # Channels are averaged: three copies of a channel have its spectrum.
    np.testing.assert_allclose(power_spectrum(np.repeat(a, 3, axis=-1))[1], power_spectrum(a)[1], rtol=1e-12)
    # uint8 pixels are accepted.
    pixels = rng.integers(0, 256, size=(10, 16, 16, 1), dtype=np.uint8)
    np.testing.assert_allclose(power_spectrum(pixels)[1], power_spectrum(pixels.astype(float))[1])


def _box_blur(x):
    """Periodic 3×3 mean filter: removes high frequencies, keeps low ones."""
    return sum(np.roll(np.roll(x, i, axis=1), j, axis=2) for i in (-1, 0, 1) for j in (-1, 0, 1)) / 9.0


def test_a_blurred_set_is_clearly_farther_than_a_fresh_draw():
    a, fresh = gaussian_field(500, 32, 2.0, seed=2), gaussian_field(500, 32, 2.0, seed=3)
    same, blurred = spectrum_distance(a, fresh), spectrum_distance(a, _box_blur(fresh))
    assert same < 0.01 and blurred > 100 * same, (same, blurred)


@pytest.mark.parametrize("images,error", [
    (np.zeros((2, 8, 6)), ValueError), (np.zeros((8, 8)), ValueError), (np.zeros((0, 8, 8)), ValueError),
    (np.full((1, 4, 4), np.nan), ValueError), ([["a"]], TypeError),
])
def test_bad_images_raise(images, error):
    with pytest.raises(error, match="`images`"):
        power_spectrum(images)


def test_distance_needs_equal_sizes_and_nonconstant_images():
    with pytest.raises(ValueError, match="same image size"):
        spectrum_distance(np.ones((2, 8, 8)), np.ones((2, 16, 16)))
    with pytest.raises(ValueError, match="constant"):
        spectrum_distance(np.ones((2, 8, 8)), np.random.default_rng(0).normal(size=(2, 8, 8)))


def test_module_doctests_print_what_they_show():
    result = doctest.testmod(spectrum, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
