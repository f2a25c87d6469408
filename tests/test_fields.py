"""kgen.datasets.gaussian_field: the law of the power-law Gaussian field, measured on samples. NumPy only."""

import doctest

import numpy as np
import pytest

from kgen import datasets
from kgen.datasets import fields

pytestmark = pytest.mark.torch  # no backend involved: once is enough


def _measured_slope(fields, low=3.0, high=10.0):
    """−(log-log slope) of the radially averaged |DFT|² over low <= |k| <= high (mid frequencies of a 32 grid)."""
    power = np.mean(np.abs(np.fft.fft2(fields[..., 0], norm="ortho")) ** 2, axis=0)
    radius = np.rint(datasets.frequency_magnitude(fields.shape[1])).astype(int)
    bins = np.arange(int(low), int(high) + 1)
    averaged = np.array([power[radius == r].mean() for r in bins])
    return -np.polyfit(np.log(bins), np.log(averaged), 1)[0]


@pytest.mark.parametrize("slope", [1.0, 2.0, 3.0])
def test_measured_spectrum_slope_matches_the_requested_one_within_5_percent(slope):
    fields = datasets.gaussian_field(2000, size=32, slope=slope, seed=1)
    assert abs(_measured_slope(fields) / slope - 1.0) < 0.05


def test_slope_test_rejects_the_wrong_law():
    # Negative control: the fit tells slope 2 from 2.3 on the same number of samples.
    fields = datasets.gaussian_field(2000, size=32, slope=2.3, seed=1)
    assert abs(_measured_slope(fields) / 2.0 - 1.0) > 0.1


@pytest.mark.parametrize("slope", [0.0, 2.0])
def test_unit_marginal_variance_zero_mean_and_zero_spatial_mean(slope):
    fields = datasets.gaussian_field(3000, size=16, slope=slope, seed=2)[..., 0].astype(np.float64)
    assert abs(fields.var(axis=0).mean() - 1.0) < 0.03
    assert abs(fields.mean()) < 0.01
    np.testing.assert_allclose(fields.mean(axis=(1, 2)), 0.0, atol=1e-6)  # S(0) = 0


def test_per_frequency_variances_are_the_spectrum():
    spectrum = datasets.field_spectrum(8, slope=2.0)
    fields = datasets.gaussian_field(20000, size=8, slope=2.0, seed=3)[..., 0]
    measured = np.mean(np.abs(np.fft.fft2(fields, norm="ortho")) ** 2, axis=0)
    np.testing.assert_allclose(measured, spectrum, rtol=0.05, atol=1e-9)
    assert spectrum[0, 0] == 0.0 and np.isclose(spectrum.mean(), 1.0)
    np.testing.assert_allclose(spectrum, spectrum[(-np.arange(8)) % 8][:, (-np.arange(8)) % 8])  # S(−k) = S(k)


def test_fields_are_seeded_and_float32():
    a, b, c = (datasets.gaussian_field(3, size=8, seed=s) for s in (5, 5, 6))
    assert a.shape == (3, 8, 8, 1) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("kwargs,error,name", [
    ({"n": 0}, ValueError, "n"), ({"n": 2.0}, TypeError, "n"), ({"size": 1}, ValueError, "size"),
    ({"size": 8.0}, TypeError, "size"), ({"slope": -1.0}, ValueError, "slope"), ({"slope": "2"}, TypeError, "slope"),
    ({"slope": float("nan")}, ValueError, "slope"), ({"seed": -1}, ValueError, "seed"),
])
def test_bad_arguments_name_the_argument(kwargs, error, name):
    with pytest.raises(error, match=f"`{name}`"):
        datasets.gaussian_field(**{"n": 2, **kwargs})


def test_module_doctests_print_what_they_show():
    result = doctest.testmod(fields, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
