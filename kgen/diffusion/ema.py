"""The EMA of a diffusion model's network weights: `kgen.ema.ExponentialMovingAverage` (shared with the GANs)."""

from kgen.ema import ExponentialMovingAverage  # noqa: F401

__all__ = ["ExponentialMovingAverage"]
