"""Loss weightings of `DiffusionModel`: min-SNR-γ and the multi-scale loss.

Min-SNR-γ (Hang et al. 2023, arXiv:2303.09556) weights the x-space error ‖x̂ − x‖² by min(SNR, γ). Since
ε̂ − ε = −(α/σ)(x̂ − x) and v̂ − v = −(1/σ)(x̂ − x), the same weighting reads, per parameterisation,

    eps: min(SNR, γ)/SNR,     x0: min(SNR, γ),     v: min(SNR, γ)/(SNR + 1).

Multi-scale loss (simple diffusion, Hoogeboom et al. 2023, arXiv:2301.11093; Su, "生成扩散模型漫谈(二十二)",
https://kexue.fm/archives/10047): L_{s×s} = mean over the (H/s)(W/s)C pooled values of (D_s[target] −
D_s[output])², D_s = s×s average pooling (`guidance.average_pool`, the D of Upsample Guidance), averaged over
the scales s = 1, 2, 4, ... for which H and W stay divisible and the pooled image is at least 4×4 (or the scales
given). It asks the high-resolution model to be right on the coarse image too ("at least no worse than a
low-resolution model").
"""

import keras
import numpy as np
from keras import ops

from kgen._checks import check_choice, check_int
from kgen.diffusion.guidance import average_pool
from kgen.diffusion.predictions import PREDICTIONS

__all__ = ["LOSS_WEIGHTINGS", "min_snr_weight", "multiscale_factors", "multiscale_squared_error"]

LOSS_WEIGHTINGS = (None, "min_snr")


def min_snr_weight(logsnr, prediction, gamma=5.0):
    """Per-example min-SNR-γ weight (Hang et al. 2023) of the `prediction`-space squared error at λ.

    eps: min(e^λ, γ)/e^λ; x0: min(e^λ, γ); v: min(e^λ, γ)/(e^λ + 1) — all equal to min(SNR, γ)‖x̂ − x‖².

    Example:

    ```python
    import numpy as np
    from kgen.diffusion.losses import min_snr_weight

    min_snr_weight(np.array([-2.0, 0.0, 4.0]), "v", gamma=5.0)   # min(SNR, 5)/(SNR + 1)
    ```
    """
    check_choice("prediction", prediction, PREDICTIONS)
    logsnr = ops.convert_to_tensor(logsnr)
    if "float" not in keras.backend.standardize_dtype(logsnr.dtype):
        logsnr = ops.cast(logsnr, keras.config.floatx())
    clipped = ops.exp(ops.minimum(logsnr, float(np.log(gamma))))  # min(SNR, γ) without overflow
    if prediction == "eps":
        return clipped * ops.exp(-logsnr)
    if prediction == "x0":
        return clipped
    return clipped * ops.sigmoid(-logsnr)


def multiscale_factors(multiscale, data_shape):
    """The pooling factors s of the multi-scale loss: (1,) when off, 1, 2, 4, ... down to 4×4 when True."""
    if multiscale is False or multiscale is None:
        return (1,)
    if len(data_shape) != 3:
        raise ValueError(f"`multiscale` needs image data (H, W, C), got data shape {data_shape}")
    height, width = data_shape[:2]
    if multiscale is True:
        factors, s = [], 1
        while height % s == 0 and width % s == 0 and min(height, width) // s >= 4:
            factors.append(s)
            s *= 2
        return tuple(factors)
    factors = tuple(check_int("multiscale", s, 1) for s in multiscale)
    for s in factors:
        if height % s or width % s:
            raise ValueError(f"`multiscale` factor {s} must divide the image size {height}x{width}")
    return factors


def multiscale_squared_error(residual, factors):
    """Per-example mean of the squared residual, average-pooled by each factor s, averaged over the factors."""
    batch = ops.shape(residual)[0]
    terms = []
    for s in factors:
        pooled = residual if s == 1 else average_pool(residual, s)
        terms.append(ops.mean(ops.reshape(pooled * pooled, (batch, -1)), axis=-1))
    return terms[0] if len(terms) == 1 else ops.mean(ops.stack(terms, axis=0), axis=0)
