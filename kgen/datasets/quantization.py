"""Between integer images and continuous data: uniform dequantization onto [0, 1) (flows), and the affine map
onto [-1, 1] (`to_signed`, GAN and diffusion data).

Convention. An image x with D integer entries in {0, ..., L-1} (L = `levels`) becomes
``y = (x + u) / L`` with ``u ~ U[0, 1)^D``, and ``x = floor(y * L)`` maps back (`quantize`).

Why it is a valid likelihood bound. Given a density p on [0, 1)^D, define the discrete model
P(x) = integral over the cell of x of p(y) dy = L^-D * integral over [0,1)^D of p((x + u) / L) du.
By Jensen's inequality

    log P(x) >= E_u[log p((x + u) / L)] - D log L,

so the continuous negative log-likelihood of y, plus D log L, upper-bounds -log P(x), and

    bits/dim = (-log p(y) + D ln L) / (D ln 2),

which `kgen.metrics.bits_per_dim(nll_nats, num_dims, levels)` computes. Data in kgen: digits use L = 17
(pixels 0..16), Animal-MNIST and the Keras image datasets L = 256.
"""

import numpy as np

from kgen._checks import check_int


def _integer_image(x, levels):
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"`x` must hold integers, got dtype {x.dtype}")
    if x.dtype.kind == "f" and not (np.isfinite(x).all() and (x == np.floor(x)).all()):
        raise ValueError("`x` must hold integers (integer dtype or integer-valued floats), got non-integer values")
    if x.size and (x.min() < 0 or x.max() > levels - 1):
        raise ValueError(
            f"`x` must lie in [0, levels - 1] = [0, {levels - 1}] for `levels`={levels}, "
            f"got values in [{x.min()}, {x.max()}]"
        )
    return x.astype(np.int64)


def dequantize(x, levels, seed=0):
    """Integer images to float32 data in [0, 1): ``(x + u) / levels`` with uniform noise u.

    Args:
        x: array of any shape, integer dtype (or integer-valued floats), values in [0, levels - 1].
        levels: number of intensity levels L, an int >= 2 (17 for digits, 256 for 8-bit images).
        seed: non-negative int for `numpy.random.default_rng`; one U[0, 1) draw per element.

    Returns:
        float32 array of x's shape with values in [0, 1) and ``quantize(result, levels) == x`` exactly
        (for levels up to 2**16).

    Example:
        >>> y = dequantize(np.array([0, 16]), levels=17, seed=0)
        >>> print(y.dtype, quantize(y, 17))
        float32 [ 0 16]
    """
    levels = check_int("levels", levels, 2)
    seed = check_int("seed", seed, 0)
    x = _integer_image(x, levels)
    u = np.random.default_rng(seed).random(x.shape)
    y = ((x + u) / levels).astype(np.float32)
    # Rounding to float32 can land y on an edge of a neighbouring cell; one ulp back puts it inside x's cell.
    # (y * levels is exact in float64 because y has a 24-bit mantissa.)
    scaled = y.astype(np.float64) * levels
    y = np.where(scaled >= x + 1, np.nextafter(y, np.float32(0)), y)
    y = np.where(scaled < x, np.nextafter(y, np.float32(1)), y)
    return y.astype(np.float32)


def quantize(y, levels):
    """Continuous data to integer levels: ``floor(y * levels)`` clipped to [0, levels - 1].

    Args:
        y: float array of any shape, finite; values outside [0, 1) are clipped to the end levels.
        levels: number of intensity levels L, an int >= 2.

    Returns:
        Array of y's shape, uint8 if levels <= 256 else int64, values in [0, levels - 1].

    Example:
        >>> print(quantize(np.array([0.0, 0.5, 0.999, 1.0]), levels=256))
        [  0 128 255 255]
    """
    levels = check_int("levels", levels, 2)
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"`y` must be a real array, got dtype {y.dtype}")
    if not np.isfinite(y).all():
        raise ValueError("`y` must be finite, got NaN or inf")
    # float64 so that y * levels is exact for float32 input and floor agrees with `dequantize`'s cells.
    x = np.clip(np.floor(y.astype(np.float64) * levels), 0, levels - 1)
    return x.astype(np.uint8 if levels <= 256 else np.int64)


def to_signed(x, levels):
    """Integer images to float32 data in [-1, 1], the range of GAN and diffusion data: ``2 x / (levels - 1) - 1``.

    Unlike ``x * 2 - 1`` on uint8 images, which wraps around, this checks the input and computes in float32.

    Args:
        x: array of any shape, integer dtype (or integer-valued floats), values in [0, levels - 1].
        levels: number of intensity levels L, an int >= 2 (17 for digits, 256 for 8-bit images).

    Returns:
        float32 array of x's shape: 0 maps to -1 and levels - 1 to 1, exactly.

    Example:
        >>> print(to_signed(np.array([0, 51, 255], np.uint8), levels=256))
        [-1.  -0.6  1. ]
    """
    levels = check_int("levels", levels, 2)
    x = _integer_image(x, levels)
    return x.astype(np.float32) / np.float32(levels - 1) * np.float32(2.0) - np.float32(1.0)
