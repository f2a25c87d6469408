"""Preprocessing bijections from data in [0, 1] to model space, with their log-dets: `Logit`, `Shift`.

A flow's density of the *data* must include the Jacobian of any rescaling applied before the flow, or
bits/dim are off by a constant (Su's NICE loss, for one, omits such constants; see flows research §1.2).
Putting the preprocessing in the flow as its first layer keeps that bookkeeping in one place.

- `Logit` (RealNVP, Dinh et al. 2016, §4.1 and its code `data_constraint=0.9`): y = logit(α + (1 − 2α)x),
  which maps [0, 1] into R without the infinite slopes of logit at 0 and 1 (α = 0.05).
- `Shift`: y = scale·(x + offset). openai/glow uses x − 0.5 (offset −0.5, scale 1); Su's Keras glow
  uses 2x − 1 (offset −0.5, scale 2), and his articles 5776/5807 train on data in [0, 1] or [−1, 1].
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from kgen.flows.layers.base import FlowLayer, sum_except_batch


def _check_real(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}")
    return value


@keras.saving.register_keras_serializable(package="kgen")
class Logit(FlowLayer):
    """y = logit(p), p = α + (1 − 2α)·x, for x in [0, 1] (RealNVP §4.1).

        log|det ∂y/∂x| = Σ [log(1 − 2α) − log p − log(1 − p)]
        inverse: x = (sigmoid(y) − α) / (1 − 2α)

    Args:
        alpha: α in (0, 0.5); RealNVP uses 0.05.

    Example:
        >>> layer = Logit(alpha=0.05)
        >>> y, logdet = layer(keras.ops.convert_to_tensor([[0.0, 0.5, 1.0]]))   # y ≈ [[-2.94, 0, 2.94]]
        >>> layer.inverse(y)                                                     # ≈ [[0, 0.5, 1]]
    """

    def __init__(self, alpha=0.05, **kwargs):
        super().__init__(**kwargs)
        alpha = _check_real("alpha", alpha)
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"`alpha` must lie in (0, 0.5), got {alpha}")
        self.alpha = alpha

    def call(self, x, training=None):
        p = self.alpha + (1.0 - 2.0 * self.alpha) * x
        log_p, log_q = ops.log(p), ops.log1p(-p)
        logdet = sum_except_batch(math.log(1.0 - 2.0 * self.alpha) - log_p - log_q)
        return log_p - log_q, logdet

    def inverse(self, z):
        return (ops.sigmoid(z) - self.alpha) / (1.0 - 2.0 * self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="kgen")
class Shift(FlowLayer):
    """y = scale·(x + offset); log|det| = D·log|scale| with D the number of entries per example.

    Args:
        offset: added first; −0.5 centres data in [0, 1].
        scale: a non-zero real; 1 gives openai/glow's [−0.5, 0.5], 2 Su's [−1, 1].

    Example:
        >>> layer = Shift(offset=-0.5, scale=2.0)               # Su's glow: 2x − 1
        >>> y, logdet = layer(keras.ops.ones((2, 3)))           # y = 1, logdet = 3·log 2
    """

    def __init__(self, offset=-0.5, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = _check_real("offset", offset)
        self.scale = _check_real("scale", scale)
        if self.scale == 0.0:
            raise ValueError("`scale` must be non-zero (the map would not be invertible)")

    def call(self, x, training=None):
        return self.scale * (x + self.offset), sum_except_batch(ops.ones_like(x)) * math.log(abs(self.scale))

    def inverse(self, z):
        return z / self.scale - self.offset

    def get_config(self):
        return {**super().get_config(), "offset": self.offset, "scale": self.scale}
