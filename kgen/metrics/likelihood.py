"""Likelihood metrics: bits per dimension of discrete data modelled by a continuous density.

Image density models (normalizing flows, VAEs, autoregressive models) report the negative log-likelihood of
the 8-bit data in *bits per dimension*. A continuous model cannot assign probability to the discrete values
x in {0, ..., levels-1}^D directly; uniform dequantization (Uria, Murray & Larochelle 2013, "RNADE";
Theis, van den Oord & Bethge 2016, "A note on the evaluation of generative models") fits a density to
x + u, u ~ U[0, 1)^D, and the discrete log-likelihood is bounded below by the continuous one:

    log P(x) = log E_u[ p_z(x + u) ]  >=  E_u[ log p_z(x + u) ]       (Jensen)

where p_z is the model's density on [0, levels]^D. kgen's data pipeline (`kgen.datasets.dequantize`) also
rescales to y = (x + u) / levels in [0, 1]^D, which changes the density by the Jacobian of the scaling:
p_z(z) = p_y(z / levels) * levels^-D. `bits_per_dim` undoes that rescaling and converts nats to bits.
"""

import math
import numbers

import keras
import numpy as np

from kgen._checks import check_int

__all__ = ["bits_per_dim"]


def bits_per_dim(nll_nats, num_dims, levels):
    """Convert the negative log-density of dequantized data in [0, 1]^D into bits per dimension.

    With y = (x + u) / levels the dequantized data in [0, 1]^D (as produced by `kgen.datasets.dequantize`)
    and `nll_nats` = -log p_y(y) per example, the density of z = x + u on [0, levels]^D is
    p_z(z) = levels^-D p_y(z / levels), so

        bits/dim = (-log p_z(z)) / (D log 2) = (nll_nats + D log(levels)) / (D log 2).

    Averaged over u this upper-bounds -log2 P(x) / D of the discrete data (the dequantization bound; see the
    module docstring), with equality for a model whose density is constant on each cell x + [0, 1)^D.
    A uniform density on [0, 1]^D (nll 0) scores log2(levels), e.g. 8 bits/dim for 8-bit images.

    Args:
        nll_nats: negative log-density per example, in nats, of the data in [0, 1]^D. A Python number, a
            NumPy array or array-like (any shape, elementwise), or a backend tensor.
        num_dims: D, the number of dimensions per example (e.g. 32*32*3), an int >= 1.
        levels: number of discrete values per dimension before dequantization (256 for 8-bit data),
            an int >= 2.

    Returns:
        Bits per dimension, of the same kind as `nll_nats`: a Python float for a Python number, a NumPy
        float64 array (same shape) for NumPy input or lists, a float tensor (same shape) for a backend tensor.

    Example:
        >>> round(bits_per_dim(0.0, num_dims=3072, levels=256), 6)
        8.0
        >>> bits_per_dim(np.array([0.0, -3072 * np.log(2.0)]), num_dims=3072, levels=256)
        array([8., 7.])
    """
    num_dims = check_int("num_dims", num_dims, 1)
    levels = check_int("levels", levels, 2)
    offset = num_dims * math.log(levels)
    scale = num_dims * math.log(2.0)
    if isinstance(nll_nats, (bool, np.bool_)):
        raise TypeError(f"`nll_nats` must be a number, array or tensor, got {nll_nats!r}")
    if isinstance(nll_nats, numbers.Real) and not isinstance(nll_nats, np.generic):
        return (float(nll_nats) + offset) / scale
    if keras.ops.is_tensor(nll_nats):
        # float16/bfloat16 cannot hold D*log(levels) (thousands) precisely: compute in float32 at least.
        dtype = "float64" if keras.backend.standardize_dtype(nll_nats.dtype) == "float64" else "float32"
        return (keras.ops.cast(nll_nats, dtype) + offset) / scale
    try:
        nll = np.asarray(nll_nats, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`nll_nats` must be a number, array or tensor: {error}") from None
    return (nll + offset) / scale


def gaussian_bits_per_dim(train, test, levels):
    """Bits/dim of a full-covariance Gaussian fitted to dequantized `train`, on dequantized `test`.

    The baseline every density model should beat (flows report it next to their own numbers).

    Args:
        train, test: arrays `(n, ...)` of data in [0, 1] as produced by `kgen.datasets.dequantize`.
        levels: the number of pixel levels (17 for digits, 256 for 8-bit images).

    Returns:
        Mean test bits/dim, a float.
    """
    train = np.asarray(train, dtype=np.float64).reshape(len(train), -1)
    test = np.asarray(test, dtype=np.float64).reshape(len(test), -1)
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"`train` and `test` must have the same number of dimensions, got {train.shape[1]} "
                         f"and {test.shape[1]}")
    dims = train.shape[1]
    mean = train.mean(axis=0)
    # A small ridge keeps always-zero pixels (digit borders) from making the covariance singular.
    cov = np.cov(train, rowvar=False) + 1e-6 * np.eye(dims)
    _, logdet = np.linalg.slogdet(cov)
    diff = test - mean
    nll = 0.5 * (np.einsum("nd,de,ne->n", diff, np.linalg.inv(cov), diff) + logdet + dims * np.log(2 * np.pi))
    return float(np.mean(bits_per_dim(nll, dims, levels)))
