"""Closed-form oracles for testing diffusion code: exact denoisers, exact Gaussian propagation, W2.

Research note §6.1 (kgen/shared research "diffusion.md"). With the noisy sample z = α x₀ + σ ε (α² = sigmoid(λ)):
- Gaussian data N(μ, Σ): z ~ N(α μ, α² Σ + σ² I) and the optimal noise prediction is affine,
  ε*(z) = σ (α² Σ + σ² I)⁻¹ (z − α μ).
- Gaussian mixture Σ_k π_k N(μ_k, Σ_k): ε*(z) = Σ_k r_k(z) ε*_k(z), with responsibilities
  r_k ∝ π_k N(z; α μ_k, α² Σ_k + σ² I); the score is ∇ log p(z) = −ε*(z)/σ.
- Every kgen sampler step is affine, x' = c_x x + c_ε ε̂ + c_noise·noise (`DiffusionSampler.coefficients()`), so with a
  Gaussian oracle the sampler's output law is Gaussian and `propagate_gaussian` computes its mean and
  covariance exactly (float64 NumPy, no sampling); `w2_gaussian` is the closed-form 2-Wasserstein distance
  (the Fréchet distance of FID is its square).

Stationary 2-D fields (issue 18: Upsample Guidance at 16 → 32 on power-law fields) have their oracles in
`kgen.diffusion.field_oracles`, served from here too: `FieldWienerDenoiser` (exact ε*, diagonal in the 2-D DFT,
and its taps at another size), `pooled_spectrum`, `propagate_field` / `propagate_upsample_guidance` (exact output
laws), `upsampled_blocks` and `w2_field` (exact W2).

The denoisers are eps functions (`oracle(x, logsnr)`, written in `keras.ops`, so they run inside compiled
samplers on every backend); inputs of shape (batch, ...) are flattened to (batch, D).
"""

import numpy as np
from keras import ops

from kgen._checks import as_float_matrix
from kgen.diffusion.field_oracles import _sqrtm_blocks
from kgen.diffusion.field_oracles import (FieldWienerDenoiser, diagonal_blocks, field_covariance,  # noqa: F401
                                          pooled_spectrum, propagate_field, propagate_upsample_guidance,
                                          upsample_guidance_blocks, upsampled_blocks, w2_field)
from kgen.diffusion.predictions import alpha_sigma, prediction_from_eps


def _eigh(cov, name):
    cov = as_float_matrix(name, cov, min_rows=1)
    if cov.shape[0] != cov.shape[1] or not np.allclose(cov, cov.T, atol=1e-10):
        raise ValueError(f"`{name}` must be a symmetric (D, D) matrix, got shape {cov.shape}")
    values, vectors = np.linalg.eigh(cov)
    if values.min() < -1e-8 * max(1.0, values.max()):
        raise ValueError(f"`{name}` must be positive semi-definite, smallest eigenvalue {values.min():.3g}")
    return np.clip(values, 0.0, None), vectors


class GaussianMixtureDenoiser:
    """Exact ε*(z, λ) for data Σ_k π_k N(μ_k, Σ_k) (one component: Gaussian data).

    Args:
        weights: (K,) mixture weights π (normalised here).
        means: (K, D) component means.
        covs: (K, D, D) component covariances (PSD).

    Methods `eps`, `x0`, `v` give the three parameterisations; `log_density(z, logsnr)` is log p_λ(z);
    `affine_numpy(logsnr)` (one component only) returns (A, b) with ε* = A z + b.

    Example:

    ```python
    import keras
    import numpy as np
    from kgen.diffusion import DDIMSampler, CosineSchedule
    from kgen.diffusion.testing import GaussianMixtureDenoiser

    oracle = GaussianMixtureDenoiser([0.3, 0.7], [[-1.0, 0.0], [1.0, 0.0]], 0.01 * np.eye(2))
    eps = oracle(keras.ops.ones((4, 2)), keras.ops.zeros((4,)))         # ε*(z_t, λ = 0)
    x_0 = DDIMSampler(CosineSchedule(), 50).sample(oracle, keras.random.normal((4, 2)))   # near (±1, 0)
    ```
    """

    def __init__(self, weights, means, covs):
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        means = as_float_matrix("means", means, min_rows=1)
        covs = np.asarray(covs, dtype=np.float64)
        if covs.ndim == 2:
            covs = np.broadcast_to(covs, (len(weights),) + covs.shape)
        if not (weights.shape[0] == means.shape[0] == covs.shape[0]) or covs.shape[1:] != (means.shape[1],) * 2:
            raise ValueError(f"`weights`, `means`, `covs` must have shapes (K,), (K, D), (K, D, D); got "
                             f"{weights.shape}, {means.shape}, {covs.shape}")
        if np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("`weights` must be non-negative with a positive sum")
        self.weights, self.means, self.covs = weights / weights.sum(), means, covs
        pairs = [_eigh(c, "covs") for c in covs]
        self._values = np.stack([p[0] for p in pairs])  # (K, D)
        self._vectors = np.stack([p[1] for p in pairs])  # (K, D, D), columns are eigenvectors
        self.dim = means.shape[1]

    def _parts(self, z, logsnr):
        """Per-component projected residuals u (B, K, D) and precisions p (B, K, D) in eigen-coordinates."""
        flat = ops.reshape(z, (ops.shape(z)[0], self.dim))
        alpha, sigma = alpha_sigma(logsnr, flat)  # (B, 1)
        dtype = flat.dtype
        means = ops.convert_to_tensor(self.means, dtype=dtype)
        vectors = ops.convert_to_tensor(self._vectors, dtype=dtype)
        values = ops.convert_to_tensor(self._values, dtype=dtype)
        residual = flat[:, None, :] - alpha[:, :, None] * means[None]  # (B, K, D)
        u = ops.einsum("bkd,kde->bke", residual, vectors)
        a2 = (alpha * alpha)[:, :, None]
        precision = 1.0 / (a2 * values[None] + (sigma * sigma)[:, :, None])
        return flat, u, precision, vectors, sigma

    def _log_responsibility_terms(self, u, precision):
        log_norm = -0.5 * ops.sum(u * u * precision, axis=-1) + 0.5 * ops.sum(ops.log(precision), axis=-1)
        log_weights = ops.log(ops.convert_to_tensor(self.weights, dtype=u.dtype))
        return log_weights[None] + log_norm - 0.5 * self.dim * np.log(2.0 * np.pi)

    def eps(self, z, logsnr):
        """ε*(z) = Σ_k r_k σ (α²Σ_k + σ²I)⁻¹ (z − α μ_k), shape of `z`."""
        flat, u, precision, vectors, sigma = self._parts(z, logsnr)
        eps_k = sigma[:, :, None] * ops.einsum("bke,kde->bkd", u * precision, vectors)
        if len(self.weights) == 1:
            eps = eps_k[:, 0]
        else:
            r = ops.softmax(self._log_responsibility_terms(u, precision), axis=-1)
            eps = ops.sum(r[:, :, None] * eps_k, axis=1)
        return ops.reshape(eps, ops.shape(z))

    __call__ = eps

    def x0(self, z, logsnr):
        """E[x₀ | z] = (z − σ ε*)/α."""
        return prediction_from_eps("x0", self.eps(z, logsnr), z, logsnr)

    def v(self, z, logsnr):
        """v* = α ε* − σ E[x₀ | z]."""
        return prediction_from_eps("v", self.eps(z, logsnr), z, logsnr)

    def log_density(self, z, logsnr):
        """log p_λ(z), shape (batch,): the noisy marginal Σ_k π_k N(z; α μ_k, α² Σ_k + σ² I)."""
        _, u, precision, _, _ = self._parts(z, logsnr)
        return ops.logsumexp(self._log_responsibility_terms(u, precision), axis=-1)

    def affine_numpy(self, logsnr):
        """(A, b), float64, with ε*(z) = A z + b at one log-SNR (single Gaussian only)."""
        if len(self.weights) != 1:
            raise ValueError("affine_numpy needs a single Gaussian component (the mixture ε* is not affine)")
        a2 = 1.0 / (1.0 + np.exp(-float(logsnr)))
        alpha, sigma = np.sqrt(a2), np.sqrt(1.0 - a2)
        inverse = np.linalg.inv(a2 * self.covs[0] + (1.0 - a2) * np.eye(self.dim))
        matrix = sigma * inverse
        return matrix, -alpha * matrix @ self.means[0]


class GaussianDenoiser(GaussianMixtureDenoiser):
    """Exact ε* for Gaussian data N(mean, cov) (see `GaussianMixtureDenoiser`).

    Example:

    ```python
    import numpy as np
    from kgen.diffusion import DDIMSampler, CosineSchedule
    from kgen.diffusion.testing import GaussianDenoiser, propagate_gaussian, w2_gaussian

    oracle = GaussianDenoiser(np.zeros(3), np.diag([0.1, 1.0, 2.0]))
    mean, cov = propagate_gaussian(DDIMSampler(CosineSchedule(), 20), oracle)   # the sampler's exact output law
    w2_gaussian(mean, cov, np.zeros(3), np.diag([0.1, 1.0, 2.0]))              # its error, in W2
    ```
    """

    def __init__(self, mean, cov):
        mean = np.asarray(mean, dtype=np.float64).reshape(1, -1)
        super().__init__([1.0], mean, np.asarray(cov, dtype=np.float64)[None])


def propagate_gaussian(sampler, denoiser, mean=None, cov=None):
    """Exact law N(m, C) of `sampler.sample(denoiser, x_T)` for x_T ~ N(mean, cov) (default N(0, I)).

    Uses the sampler's affine steps x' = c_x x + c_ε (A x + b) + c_noise·noise with the oracle's (A, b) per step:
    m' = M m + c_ε b, C' = M C Mᵀ + c_noise² I with M = c_x I + c_ε A. Float64, no sampling.

    Returns:
        (m, C): float64 arrays of shapes (D,) and (D, D).
    """
    d = denoiser.dim
    m = np.zeros(d) if mean is None else np.asarray(mean, dtype=np.float64)
    c = np.eye(d) if cov is None else np.asarray(cov, dtype=np.float64)
    coefficients = sampler.coefficients()
    for i, logsnr in enumerate(coefficients["logsnr"]):
        a, b = denoiser.affine_numpy(logsnr)
        step = coefficients["c_x"][i] * np.eye(d) + coefficients["c_eps"][i] * a
        m = step @ m + coefficients["c_eps"][i] * b
        c = step @ c @ step.T + coefficients["c_noise"][i] ** 2 * np.eye(d)
    return m, 0.5 * (c + c.T)


def w2_gaussian(mean1, cov1, mean2, cov2):
    """2-Wasserstein distance between N(m1, C1) and N(m2, C2):
    W2² = ‖m1 − m2‖² + tr(C1 + C2 − 2 (C2^½ C1 C2^½)^½). Float64; returns a Python float."""
    m1, m2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    c1, c2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    root = _sqrtm_blocks(c2)  # a real symmetric matrix is one block
    cross = _sqrtm_blocks(root @ c1 @ root)
    squared = float(np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2.0 * np.trace(cross))
    return float(np.sqrt(max(squared, 0.0)))


def circulant(row):
    """The symmetric circulant matrix C[i, j] = row[(j − i) mod n] (a stationary periodic covariance)."""
    row = np.asarray(row, dtype=np.float64)
    n = len(row)
    return row[(np.arange(n)[None, :] - np.arange(n)[:, None]) % n]


class PeriodicWienerDenoiser:
    """ε* of a stationary zero-mean periodic 1-D law, run as a convolution at any length: a CNN analogue.

    At the law's own length L (covariance `circulant(covariance_row)`) this is the exact denoiser
    ε* = σ (α² C + σ² I)⁻¹ z, a circular convolution with taps h_λ. On a signal of another length n it applies
    the same taps (offsets −L/2..L/2, the ±L/2 tap split in half): what a convolutional network trained at
    length L does at length n. Upsample Guidance's toy (research note §6.2 UG5) trains at L = 32 and samples
    at n = 64. Inputs have shape (batch, n, channels).

    Example:

    ```python
    import keras
    import numpy as np
    from kgen.diffusion.testing import PeriodicWienerDenoiser

    row = np.exp(-np.minimum(np.arange(32), 32 - np.arange(32)) ** 2 / 18.0)
    model = PeriodicWienerDenoiser(row)                                 # exact at length 32
    eps = model(keras.ops.ones((2, 64, 1)), keras.ops.zeros((2,)))      # a CNN's answer at length 64
    ```
    """

    def __init__(self, covariance_row):
        row = np.asarray(covariance_row, dtype=np.float64).reshape(-1)
        if len(row) < 2 or len(row) % 2:
            raise ValueError(f"`covariance_row` must have an even length >= 2, got {len(row)}")
        self.length = len(row)
        self.spectrum = np.clip(np.real(np.fft.fft(row)), 0.0, None)  # eigenvalues of the circulant
        self._plans = {}

    def _plan(self, n):
        """(G, Q): the length-n spectrum is G @ m for the length-L spectrum m; Q is n's real Fourier basis."""
        if n not in self._plans:
            big_l, half = self.length, self.length // 2
            g = np.zeros((n, big_l))
            for j in range(big_l):
                taps = np.real(np.fft.ifft(np.eye(big_l)[j]))
                placed = np.zeros(n)
                for offset in range(-half + 1, half):
                    placed[offset % n] += taps[offset % big_l]
                placed[half % n] += 0.5 * taps[half]
                placed[-half % n] += 0.5 * taps[half]
                g[:, j] = np.real(np.fft.fft(placed))
            k = np.arange(n)
            rows, freqs = [np.ones(n) / np.sqrt(n)], [0]
            for f in range(1, (n + 1) // 2):
                rows += [np.cos(2 * np.pi * f * k / n) * np.sqrt(2 / n), np.sin(2 * np.pi * f * k / n) * np.sqrt(2 / n)]
                freqs += [f, f]
            if n % 2 == 0:
                rows.append(np.cos(np.pi * k) / np.sqrt(n))
                freqs.append(n // 2)
            self._plans[n] = (g[freqs], np.array(rows))
        return self._plans[n]

    def __call__(self, x, logsnr):
        n = x.shape[1]
        g, q = self._plan(n)
        dtype = x.dtype
        alpha, sigma = alpha_sigma(logsnr, ops.zeros((ops.shape(x)[0], 1), dtype=dtype))  # (B, 1)
        gain = sigma / (alpha * alpha * ops.convert_to_tensor(self.spectrum, dtype=dtype)[None] + sigma * sigma)
        row_gain = ops.matmul(gain, ops.convert_to_tensor(g.T, dtype=dtype))  # (B, n)
        basis = ops.convert_to_tensor(q, dtype=dtype)
        coefficients = ops.einsum("fn,bnc->bfc", basis, x) * row_gain[:, :, None]
        return ops.einsum("fn,bfc->bnc", basis, coefficients)
