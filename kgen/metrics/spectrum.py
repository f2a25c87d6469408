"""Radially averaged power spectrum of a set of images, and a distance between two sets' spectra.

Whether generated images have the high-frequency detail of the data shows in their power spectrum (natural
images: P(f) ∝ f^(−2), Field 1987); it is the figure behind Upsample Guidance's claim (Su part 23, Hwang et al.
2024) and the check that a 2x sampler did not just blur. With the orthonormal 2-D DFT of an N×N channel,
x̂(k) = N⁻¹ Σ_m x(m) e^{−2πi k·m/N}, and the radius r(k) = round(|k|) (each kᵢ wrapped to −N/2..N/2 − 1):

    P(r) = mean over images, channels and the frequencies k with r(k) = r of |x̂(k)|²,    r = 1 .. ⌊N/2⌋,

reported at f = r/N cycles per pixel. Conventions:

- the DC term (k = 0) is left out, so adding a constant to any image changes nothing (the per-image mean is
  removed, in effect); radii beyond N/2 (the corners, incomplete annuli) are left out too;
- channels are averaged (the spectrum of each channel, then their mean);
- scale: P of c·x is c² P; white noise of variance v has P(r) = v at every r (Parseval).

    spectrum_distance(a, b) = mean_r (log P_a(r) − log P_b(r))²     (natural log)

is 0 for equal spectra; it is unchanged by a common scale c of both sets, and scaling one set by c adds
2 log c to every term (d(c·a, a) = (2 log c)²): contrast counts.

NumPy float64, host side, like `frechet_distance`; inputs may be NumPy arrays or backend tensors on the host.
"""

import numpy as np

__all__ = ["power_spectrum", "spectrum_distance"]


def _images(name, images):
    try:
        x = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be a real-valued array of images (n, H, W[, C]): {error}") from None
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[0] < 1 or x.shape[1] != x.shape[2] or x.shape[1] < 2:
        raise ValueError(f"`{name}` must have shape (n, N, N) or (n, N, N, C) with n >= 1 and square N >= 2, "
                         f"got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return x


def power_spectrum(images):
    """The radially averaged power spectrum P(r) of a set of square images (conventions in the module docstring).

    Args:
        images: array of shape (n, N, N) or (n, N, N, C), any real dtype (uint8 pixels are fine).

    Returns:
        `(frequencies, power)`: float64 arrays of shape (⌊N/2⌋,): f = r/N in cycles per pixel (r = 1..⌊N/2⌋)
        and P(r), the mean of |x̂(k)|² over the annulus round(|k|) = r, the images and the channels.

    Example:
        >>> noise = np.random.default_rng(0).normal(size=(200, 16, 16, 1))
        >>> f, p = power_spectrum(noise)                      # white noise: flat at its variance, 1
        >>> print(f.tolist()[:3], f.shape, bool(np.all(np.abs(p - 1) < 0.2)))
        [0.0625, 0.125, 0.1875] (8,) True
    """
    x = _images("images", images)
    size = x.shape[1]
    power = np.mean(np.abs(np.fft.fft2(x, axes=(1, 2), norm="ortho")) ** 2, axis=(0, 3))
    k = np.fft.fftfreq(size) * size
    radius = np.rint(np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)).astype(np.int64)
    radii = np.arange(1, size // 2 + 1)
    totals = np.bincount(radius.ravel(), weights=power.ravel(), minlength=size)
    counts = np.bincount(radius.ravel(), minlength=size)
    return radii / size, totals[radii] / counts[radii]


def spectrum_distance(a, b):
    """mean_r (log P_a(r) − log P_b(r))²: the mean squared difference of two image sets' log power spectra.

    Args:
        a, b: image sets of the same size N (shapes (n, N, N[, C]); n and C may differ).

    Returns:
        A Python float >= 0; 0 for equal spectra. Invariant to adding constants to images and to scaling both
        sets by the same factor; see the module docstring.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(100, 16, 16)), rng.normal(size=(100, 16, 16))
        >>> print(spectrum_distance(a, a), spectrum_distance(a, b) < 0.01, round(spectrum_distance(2 * a, a), 6))
        0.0 True 1.921812
    """
    x, y = _images("a", a), _images("b", b)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"`a` and `b` must have the same image size to compare spectra, got {x.shape[1]} and "
                         f"{y.shape[1]}")
    _, power_a = power_spectrum(x)
    _, power_b = power_spectrum(y)
    if np.any(power_a <= 0) or np.any(power_b <= 0):
        raise ValueError("a power spectrum has an empty (zero) frequency bin: constant images have no log-spectrum")
    return float(np.mean((np.log(power_a) - np.log(power_b)) ** 2))
