"""Stationary periodic Gaussian random fields with a power-law spectrum: synthetic "natural images" with an exact law.

On the periodic N×N grid, with the orthonormal 2-D DFT x̂(k) = N⁻¹ Σ_m x(m) e^{−2πi k·m/N}, a zero-mean
stationary Gaussian field has independent Fourier coefficients (up to x̂(−k) = conj x̂(k)) with

    E|x̂(k)|² = S(k) = c · |k|^(−slope)   (k ≠ 0),        S(0) = 0,

where |k| = √(k₁² + k₂²) with each kᵢ taken in −N/2..N/2 − 1 (the wrapped frequency) and c makes
mean_k S(k) = 1. S(k) are also the eigenvalues of the field's circulant covariance, so:

- marginal variance: Var x(m) = mean_k S(k) = 1 at every pixel (unit variance, for every slope);
- zero mean, and S(0) = 0 means every sample's spatial mean is exactly 0 (the power law has no finite DC term);
- slope 0 is white noise without its DC component; natural images have slope ≈ 2 (Field 1987; van der Schaaf &
  van Hateren 1996), where the spectrum follows the image's scale invariance.

`field_spectrum(size, slope)` returns S, the exact law the oracle `kgen.diffusion.testing.FieldWienerDenoiser`
uses; `gaussian_field` draws samples x = IDFT(√S · DFT(w)) from white noise w (exact in law).
"""

import numbers

import numpy as np

from kgen._checks import check_int


def _check_slope(slope):
    if isinstance(slope, (bool, np.bool_)) or not isinstance(slope, numbers.Real):
        raise TypeError(f"`slope` must be a real number >= 0, got {slope!r} ({type(slope).__name__})")
    if not np.isfinite(slope) or slope < 0:
        raise ValueError(f"`slope` must be a finite number >= 0, got {slope}")
    return float(slope)


def frequency_magnitude(size):
    """|k| on the N×N DFT grid, float64 (size, size), in cycles per image (each kᵢ wrapped to −N/2..N/2 − 1).

    Example:
        >>> print(frequency_magnitude(4)[0].tolist())
        [0.0, 1.0, 2.0, 1.0]
    """
    size = check_int("size", size, 1)
    k = np.fft.fftfreq(size) * size
    return np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)


def field_spectrum(size, slope=2.0):
    """S(k): the per-frequency variances E|x̂(k)|² of the orthonormal 2-D DFT of `gaussian_field(..., size, slope)`.

    S(k) = c |k|^(−slope) for k ≠ 0, S(0) = 0, with c such that mean_k S(k) = 1 (unit marginal variance).

    Args:
        size: N, the grid side, an int >= 2.
        slope: the power-law exponent, a real number >= 0 (natural images: about 2).

    Returns:
        float64 array of shape (size, size), in `numpy.fft.fft2` order (k = 0 at [0, 0]).

    Example:
        >>> s = field_spectrum(32, slope=2.0)
        >>> print(s.shape, s[0, 0], round(s.mean(), 12), round(s[0, 1] / s[0, 2], 6))
        (32, 32) 0.0 1.0 4.0
    """
    size = check_int("size", size, 2)
    slope = _check_slope(slope)
    magnitude = frequency_magnitude(size)
    spectrum = np.zeros((size, size))
    nonzero = magnitude > 0
    spectrum[nonzero] = magnitude[nonzero] ** (-slope)
    return spectrum / spectrum.mean()


def gaussian_field(n, size=32, slope=2.0, seed=0):
    """Samples of the stationary periodic Gaussian field with spectrum `field_spectrum(size, slope)`.

    x = IDFT(√S · DFT(w)) with w white N(0, 1) noise on the grid (orthonormal DFTs): zero mean, unit marginal
    variance, spatial mean 0 in every sample (see the module docstring).

    Args:
        n: number of fields, an int >= 1.
        size: the grid side N, an int >= 2.
        slope: power-law exponent of the spectrum, a real number >= 0.
        seed: non-negative int for `numpy.random.default_rng`; the same seed gives the same fields.

    Returns:
        float32 array of shape (n, size, size, 1).

    Example:
        >>> x = gaussian_field(256, size=16, slope=2.0, seed=0)
        >>> print(x.shape, x.dtype, abs(float(x.var()) - 1.0) < 0.1)
        (256, 16, 16, 1) float32 True
    """
    n = check_int("n", n, 1)
    spectrum = field_spectrum(size, slope)
    seed = check_int("seed", seed, 0)
    white = np.random.default_rng(seed).standard_normal((n, size, size))
    fields = np.fft.ifft2(np.sqrt(spectrum) * np.fft.fft2(white, norm="ortho"), norm="ortho").real
    return fields.astype(np.float32)[..., None]
