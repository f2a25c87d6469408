"""Closed-form oracles for 2-D stationary periodic Gaussian fields (served from `kgen.diffusion.testing`).

The field version of `testing.py`'s dense oracles, for grids where n² × n² matrices are too big (32×32 and up):
a stationary law is diagonal in the 2-D Fourier basis, so its exact ε*, the exact law of a sampler run with any
linear shift-invariant denoiser, and W2 are all per-frequency formulas. Upsample Guidance only commutes with
shifts by s pixels, which makes it block diagonal instead (k = s² aliases per block), still exact.

- `FieldWienerDenoiser(S)`: ε̂*(k) = σ (α² S(k) + σ²)⁻¹ ẑ(k) at the law's size; the same taps at any other size.
- `pooled_spectrum(S, s)`: the exact law of the s×s average-pooled field (UG's low-resolution training data).
- `propagate_field`, `propagate_upsample_guidance`: exact output laws of a sampler (dense twin:
  `propagate_gaussian`); `upsampled_blocks`: the law of nearest-upsampled low-resolution samples.
- `w2_field`: exact W2 between such laws (dense twin: `w2_gaussian`); `field_covariance`: the dense C.
"""

import numpy as np
from keras import ops

from kgen.diffusion.predictions import alpha_sigma
from kgen.diffusion.schedules import _sigmoid_numpy

__all__ = ["FieldWienerDenoiser", "diagonal_blocks", "field_covariance", "pooled_spectrum", "propagate_field",
           "propagate_upsample_guidance", "upsample_guidance_blocks", "upsampled_blocks", "w2_field"]


# --- 2-D stationary periodic fields: oracles diagonal (or alias-block diagonal) in the Fourier basis -------------
#
# Notation: x̂ is the orthonormal 2-D DFT on the n×n grid (`numpy.fft.fft2(x, norm="ortho")`); a stationary
# zero-mean periodic Gaussian law is given by its spectrum S (n, n), the variances E|x̂(k)|² (the eigenvalues of
# its circulant covariance; `kgen.datasets.field_spectrum` makes power-law ones). Linear operators that commute
# with shifts by s pixels (average pooling D, nearest repeat U, Upsample Guidance) are block diagonal in x̂: they
# only mix the k = s² aliases f = g + L·a (a ∈ {0..s−1}², L = n/s) of each low-resolution frequency g. "Blocks"
# below are complex arrays (L, L, k, k), entry [g₁, g₂, a, a'] with a = a₁ s + a₂, in that basis.


def _check_spectrum(spectrum, name="spectrum"):
    s = np.asarray(spectrum, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] < 2:
        raise ValueError(f"`{name}` must be a square (n, n) array with n >= 2, got shape {s.shape}")
    if not np.all(np.isfinite(s)) or s.min() < 0:
        raise ValueError(f"`{name}` must hold finite variances >= 0")
    flip = (-np.arange(len(s))) % len(s)
    if not np.allclose(s, s[np.ix_(flip, flip)], rtol=1e-10, atol=1e-12 * max(s.max(), 1e-300)):
        raise ValueError(f"`{name}` must satisfy S(−k) = S(k) (the spectrum of a real field)")
    return s


def field_covariance(spectrum):
    """Dense covariance C = Fᴴ diag(S) F of the stationary field with DFT variances S, float64 (n², n²).

    F is the orthonormal 2-D DFT on row-major flattened pixels; meant for small grids (oracle tests).

    Example:
        >>> from kgen.datasets import field_spectrum
        >>> c = field_covariance(field_spectrum(4, slope=2.0))
        >>> print(c.shape, np.allclose(np.diag(c), 1.0))
        (16, 16) True
    """
    s = _check_spectrum(spectrum)
    f1 = np.fft.fft(np.eye(len(s)), norm="ortho")
    f = np.kron(f1, f1)
    return np.real(f.conj().T @ (s.reshape(-1, 1) * f))


def _sigma_over_variance(spectrum, logsnr):
    """σ / (α² S + σ²): the Wiener gain of ε* per frequency at log-SNR λ (float64)."""
    alpha2, sigma2 = _sigmoid_numpy(float(logsnr)), _sigmoid_numpy(-float(logsnr))
    return np.sqrt(sigma2) / (alpha2 * spectrum + sigma2)


class FieldWienerDenoiser:
    """ε* of a stationary zero-mean periodic 2-D Gaussian law, run as a convolution at any size: a CNN analogue.

    At the law's own size L (DFT variances S, shape (L, L)) this is the exact denoiser, diagonal in Fourier:

        ε̂*(k) = σ (α² S(k) + σ²)⁻¹ ẑ(k),     i.e. ε* = −σ ∇ log p_λ(z),

    a circular convolution with taps h_λ = IDFT(gain). On an n×n input with n ≠ L it applies the same taps at
    offsets −L/2..L/2 per axis (the ±L/2 taps split in half, as `PeriodicWienerDenoiser` does in 1-D): what a
    convolutional network trained at size L does at size n. Inputs (batch, n, n, channels), each channel a field.

    Args:
        spectrum: S, float (L, L), the law's DFT variances (`kgen.datasets.field_spectrum`, `pooled_spectrum`).

    `gain_numpy(logsnr, size)` is the same map as float64 per-frequency gains (what `propagate_field` uses) and
    `log_density(z, logsnr)` is log p_λ(z) at size L.

    Example:

    ```python
    import keras
    from kgen.datasets import field_spectrum
    from kgen.diffusion.testing import FieldWienerDenoiser

    model = FieldWienerDenoiser(field_spectrum(16, slope=2.0))                # exact at 16×16
    eps = model(keras.random.normal((2, 32, 32, 1)), keras.ops.zeros((2,)))   # its taps at 32×32
    ```
    """

    def __init__(self, spectrum):
        self.spectrum = _check_spectrum(spectrum)
        self.size = len(self.spectrum)
        self._plans = {}

    def _plan(self, size):
        """G (size, L), complex: the size-n gain is Re(G g_L Gᵀ) for the size-L gain g_L (taps placed, see above)."""
        if size not in self._plans:
            big_l, half = self.size, self.size // 2
            place = np.zeros((size, big_l))
            for offset in range(-half, half + 1):
                if big_l % 2 == 1 and offset == half:
                    break
                weight = 0.5 if big_l % 2 == 0 and abs(offset) == half else 1.0
                place[offset % size, offset % big_l] += weight
            self._plans[size] = np.fft.fft(place @ np.fft.ifft(np.eye(big_l), axis=0), axis=0)
        return self._plans[size]

    def gain_numpy(self, logsnr, size=None):
        """Float64 (n, n) gains with ε̂(k) = gain(k) ẑ(k) on an n×n grid (default n = L), at one log-SNR."""
        gain = _sigma_over_variance(self.spectrum, logsnr)
        if size is None or size == self.size:
            return gain
        plan = self._plan(int(size))
        return np.real(plan @ gain @ plan.T)

    def _gain(self, logsnr, x):
        n = x.shape[1]
        alpha, sigma = alpha_sigma(logsnr, ops.zeros((ops.shape(x)[0], 1, 1), dtype=x.dtype))  # (B, 1, 1)
        spectrum = ops.convert_to_tensor(self.spectrum, dtype=x.dtype)[None]
        gain = sigma / (alpha * alpha * spectrum + sigma * sigma)  # (B, L, L)
        if n == self.size:
            return gain
        plan = self._plan(n)
        real, imag = (ops.convert_to_tensor(part, dtype=x.dtype) for part in (plan.real, plan.imag))
        return (ops.einsum("il,blm,jm->bij", real, gain, real) - ops.einsum("il,blm,jm->bij", imag, gain, imag))

    def __call__(self, x, logsnr):
        if len(x.shape) != 4 or x.shape[1] != x.shape[2]:
            raise ValueError(f"inputs must have shape (batch, n, n, channels), got {tuple(x.shape)}")
        cos, sin = _dft_parts(x.shape[1], x.dtype)
        real, imag = _dft2(x, cos, sin)
        gain = self._gain(logsnr, x)[..., None]
        return _idft2_real(gain * real, gain * imag, cos, sin)

    eps = __call__

    def log_density(self, z, logsnr):
        """log p_λ(z), shape (batch,), at the law's size: −½ Σ_k |ẑ(k)|²/v(k) − ½ Σ_k log 2π v(k), v = α²S + σ²."""
        if tuple(z.shape[1:3]) != (self.size, self.size):
            raise ValueError(f"log_density needs inputs of shape (batch, {self.size}, {self.size}, channels)")
        cos, sin = _dft_parts(self.size, z.dtype)
        real, imag = _dft2(z, cos, sin)
        alpha, sigma = alpha_sigma(logsnr, ops.zeros((ops.shape(z)[0], 1, 1, 1), dtype=z.dtype))
        variance = alpha * alpha * ops.convert_to_tensor(self.spectrum, dtype=z.dtype)[None, :, :, None] + sigma**2
        power = (real * real + imag * imag) / float(self.size**2)  # |x̂|² of the orthonormal DFT
        terms = power / variance + ops.log(2.0 * np.pi * variance)
        return -0.5 * ops.sum(ops.reshape(terms, (ops.shape(z)[0], -1)), axis=-1)


def _dft_parts(n, dtype):
    k = np.arange(n)
    angle = 2.0 * np.pi * np.outer(k, k) / n
    return ops.convert_to_tensor(np.cos(angle), dtype=dtype), ops.convert_to_tensor(np.sin(angle), dtype=dtype)


def _dft2(x, cos, sin):
    """(Re, Im) of the unnormalised 2-D DFT over axes 1, 2 of (B, n, n, C): F x Fᵀ with F = cos − i sin."""
    def side(a, b):
        return ops.einsum("ki,bijc,lj->bklc", a, x, b)

    return side(cos, cos) - side(sin, sin), -(side(cos, sin) + side(sin, cos))


def _idft2_real(real, imag, cos, sin):
    """Re of the inverse unnormalised 2-D DFT: n⁻² Re[(C + iS)(Y_r + iY_i)(C + iS)]."""
    def side(a, y, b):
        return ops.einsum("ik,bklc,lj->bijc", a, y, b)

    n = real.shape[1]
    total = side(cos, real, cos) - side(sin, real, sin) - side(cos, imag, sin) - side(sin, imag, cos)
    return total / float(n * n)


def _box_transfer(size, scale):
    """h(f) = k⁻¹ Σ_b e^{2πi f·b/n} over one s×s block: D's frequency response on the n×n grid, (n, n) complex."""
    h1 = np.exp(2j * np.pi * np.outer(np.arange(size), np.arange(scale)) / size).mean(axis=1)
    return np.outer(h1, h1)


def _to_blocks(values, scale):
    """(n, n) per-frequency values -> (L, L, k): entry [g₁, g₂, a₁ s + a₂] is values[g₁ + L a₁, g₂ + L a₂]."""
    n = values.shape[0]
    low = n // scale
    return values.reshape(scale, low, scale, low).transpose(1, 3, 0, 2).reshape(low, low, scale * scale)


def _check_scale_divides(size, scale):
    if scale < 1 or size % scale:
        raise ValueError(f"`size`={size} must be divisible by `scale`={scale}")


def pooled_spectrum(spectrum, scale=2):
    """DFT variances of D x (s×s average pooling) for x with DFT variances S: a stationary law on the L×L grid.

    Ŝ(g) = s⁻² Σ_a |h(g + L a)|² S(g + L a), h the box filter's response (`_box_transfer`); exact.

    Example:
        >>> print(pooled_spectrum(np.ones((8, 8)), 2).mean())     # pooled white noise: variance 1/4
        0.25
    """
    s = _check_spectrum(spectrum)
    _check_scale_divides(len(s), scale)
    weighted = np.abs(_box_transfer(len(s), scale)) ** 2 * s
    low = len(s) // scale
    return weighted.reshape(scale, low, scale, low).sum(axis=(0, 2)) / scale**2


def _pool_rows(size, scale):
    """d (L, L, k): the row of D in each alias block, D̂x(g) = Σ_a d_a x̂(g + L a); U's column is k·conj(d)."""
    return _to_blocks(_box_transfer(size, scale), scale) / scale


def diagonal_blocks(spectrum, scale):
    """A spectrum (or per-frequency gains) (n, n) as alias blocks (L, L, k, k) (diagonal blocks).

    Example:
        >>> blocks = diagonal_blocks(np.arange(16.0).reshape(4, 4), 2)
        >>> print(blocks.shape, np.diag(blocks[0, 1]).tolist())      # frequencies (0,1), (0,3), (2,1), (2,3)
        (2, 2, 4, 4) [1.0, 3.0, 9.0, 11.0]
    """
    values = _to_blocks(np.asarray(spectrum), scale)
    return values[..., :, None] * np.eye(scale * scale)


def upsampled_blocks(low_spectrum, scale=2):
    """Alias-block covariance of U x for x with DFT variances `low_spectrum` (nearest-upsampled samples), U = k Dᵀ.

    Example:
        >>> from kgen.datasets import field_spectrum
        >>> print(upsampled_blocks(field_spectrum(8, 2.0), 2).shape)
        (8, 8, 4, 4)
    """
    low = _check_spectrum(low_spectrum, "low_spectrum")
    k = scale * scale
    up = k * np.conj(_pool_rows(len(low) * scale, scale))  # (L, L, k)
    return low[..., None, None] * up[..., :, None] * np.conj(up)[..., None, :]


def upsample_guidance_blocks(guidance, logsnr, size):
    """The alias blocks of `guidance(x, λ)` (an `UpsampleGuidance` of `FieldWienerDenoiser`s) on an n×n input.

    ε̃ = A x + w_t U[(c/ρ) B D x − D A x], with A, B the high- and low-resolution Wiener gains (B at the shifted
    λ), c = 1/√k, ρ² = α² + σ²/k, and the class's options (w, time gate η, λ clip, ablations) read off `guidance`.
    Float64: the exact twin of the Keras computation, block by block.

    Example:
        >>> from kgen.datasets import field_spectrum
        >>> from kgen.diffusion import CosineSchedule, UpsampleGuidance
        >>> low = FieldWienerDenoiser(pooled_spectrum(field_spectrum(16, slope=2.0), 2))
        >>> print(upsample_guidance_blocks(UpsampleGuidance(low, CosineSchedule(), 2), 0.0, 16).shape)
        (8, 8, 4, 4)
    """
    scale, k = guidance.scale, guidance.scale**2
    _check_scale_divides(size, scale)
    for name in ("eps_fn", "low_resolution_eps_fn"):
        if not hasattr(getattr(guidance, name), "gain_numpy"):
            raise TypeError(f"the guidance's `{name}` must be a FieldWienerDenoiser (it has no `gain_numpy`), got "
                            f"{type(getattr(guidance, name)).__name__}")
    high = _to_blocks(guidance.eps_fn.gain_numpy(logsnr, size), scale)  # (L, L, k)
    blocks = high[..., :, None] * np.eye(k)
    gate = 1.0
    if guidance.eta is not None:
        t = float(guidance.schedule.t_from_logsnr_numpy(float(logsnr)))
        gate = float(t >= 1.0 - guidance.eta - 1e-6)
    weight = guidance.w * gate
    if weight == 0.0:
        return blocks + 0j
    logsnr_low = float(logsnr) + (0.0 if "time_shift" in guidance.ablate else np.log(k))
    if guidance.clip_logsnr:
        logsnr_low = min(logsnr_low, guidance._max_logsnr)
    alpha2 = _sigmoid_numpy(float(logsnr))
    rho = 1.0 if "rescale" in guidance.ablate else np.sqrt(alpha2 + (1.0 - alpha2) / k)
    c = 1.0 if "noise_scale" in guidance.ablate else 1.0 / np.sqrt(k)
    low = guidance.low_resolution_eps_fn.gain_numpy(logsnr_low, size // scale)  # (L, L)
    d = _pool_rows(size, scale)
    up = k * np.conj(d)
    main = (c / rho) * low[..., None, None] * up[..., :, None] * d[..., None, :]
    detail = up[..., :, None] * (d * high)[..., None, :]
    return blocks + weight * (main - detail)


def propagate_field(sampler, denoiser, size=None, spectrum=None):
    """Exact output law of `sampler.sample(denoiser, x_T)` when `denoiser` is diagonal in the n×n DFT.

    Per frequency the step is x̂' = (c_x + c_ε g_λ(k)) x̂ + c_noise·noisê with `g = denoiser.gain_numpy(λ, n)`,
    so S' = (c_x + c_ε g)² S + c_noise², starting from S = 1 (x_T ~ N(0, I)) or `spectrum`. The same result as
    `propagate_gaussian` on the dense covariance, without the n² × n² matrices.

    Returns:
        float64 (n, n): the output's DFT variances (it is a zero-mean stationary Gaussian field).

    Example:
        >>> from kgen.datasets import field_spectrum
        >>> from kgen.diffusion import CosineSchedule, DDIMSampler
        >>> law = field_spectrum(16, slope=2.0)
        >>> out = propagate_field(DDIMSampler(CosineSchedule(), 50), FieldWienerDenoiser(law))
        >>> print(out.shape, round(w2_field(out, law), 2))
        (16, 16) 0.57
    """
    n = denoiser.size if size is None else int(size)
    s = np.ones((n, n)) if spectrum is None else np.array(spectrum, dtype=np.float64)
    coefficients = sampler.coefficients()
    for i, logsnr in enumerate(coefficients["logsnr"]):
        step = coefficients["c_x"][i] + coefficients["c_eps"][i] * denoiser.gain_numpy(logsnr, n)
        s = step**2 * s + coefficients["c_noise"][i] ** 2
    return s


def propagate_upsample_guidance(sampler, guidance, size):
    """Exact output law of `sampler.sample(guidance, x_T)`, x_T ~ N(0, I) on n×n, as alias-block covariances.

    Per block: C' = M C Mᴴ + c_noise² I with M = c_x I + c_ε B_λ and B_λ = `upsample_guidance_blocks(...)`.

    Returns:
        complex (L, L, k, k) Hermitian blocks (compare with `w2_field`).

    Example:
        >>> from kgen.datasets import field_spectrum
        >>> from kgen.diffusion import CosineSchedule, DDIMSampler, UpsampleGuidance
        >>> low = FieldWienerDenoiser(pooled_spectrum(field_spectrum(16, slope=2.0), 2))
        >>> ug = UpsampleGuidance(low, CosineSchedule(), scale=2)
        >>> print(propagate_upsample_guidance(DDIMSampler(CosineSchedule(), 20), ug, 16).shape)
        (8, 8, 4, 4)
    """
    k = guidance.scale**2
    low = size // guidance.scale
    cov = np.broadcast_to(np.eye(k, dtype=complex), (low, low, k, k)).copy()
    coefficients = sampler.coefficients()
    for i, logsnr in enumerate(coefficients["logsnr"]):
        step = coefficients["c_x"][i] * np.eye(k) + coefficients["c_eps"][i] * upsample_guidance_blocks(
            guidance, logsnr, size)
        cov = step @ cov @ np.conj(np.swapaxes(step, -1, -2)) + coefficients["c_noise"][i] ** 2 * np.eye(k)
    return 0.5 * (cov + np.conj(np.swapaxes(cov, -1, -2)))


def _sqrtm_blocks(c):
    values, vectors = np.linalg.eigh(0.5 * (c + np.conj(np.swapaxes(c, -1, -2))))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]) @ np.conj(np.swapaxes(vectors, -1, -2))


def w2_field(law1, law2):
    """Exact 2-Wasserstein distance between two zero-mean stationary (or s-periodic) Gaussian fields.

    Each law is a spectrum (n, n) of DFT variances or alias blocks (L, L, k, k). Two spectra commute:
    W2² = Σ_k (√S₁(k) − √S₂(k))². Otherwise, block by block: W2² = Σ_g tr(C₁ + C₂ − 2 (C₂^½ C₁ C₂^½)^½), the
    `w2_gaussian` formula in the unitary Fourier basis (W2 is unchanged by it).

    Example:
        >>> from kgen.datasets import field_spectrum
        >>> print(w2_field(field_spectrum(8, 2.0), field_spectrum(8, 2.0)))
        0.0
    """
    a, b = np.asarray(law1), np.asarray(law2)
    if a.ndim == 2 and b.ndim == 2:
        if a.shape != b.shape:
            raise ValueError(f"the two spectra must have the same shape, got {a.shape} and {b.shape}")
        return float(np.sqrt(np.sum((np.sqrt(np.clip(a, 0, None)) - np.sqrt(np.clip(b, 0, None))) ** 2)))
    blocks = a if a.ndim == 4 else b
    scale = round(np.sqrt(blocks.shape[-1]))
    a, b = (diagonal_blocks(x, scale) if x.ndim == 2 else x for x in (a, b))
    if a.shape != b.shape:
        raise ValueError(f"the two laws must have the same block shape, got {a.shape} and {b.shape}")
    root = _sqrtm_blocks(b)
    cross = _sqrtm_blocks(root @ a @ root)
    trace = np.real(np.trace(a, axis1=-2, axis2=-1) + np.trace(b, axis1=-2, axis2=-1)
                    - 2.0 * np.trace(cross, axis1=-2, axis2=-1))
    return float(np.sqrt(max(float(np.sum(trace)), 0.0)))
