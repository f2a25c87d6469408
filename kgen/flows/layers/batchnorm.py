"""`BatchNormFlow`: batch normalisation as an invertible layer with its log-det (RealNVP §3.7).

RealNVP (Dinh, Sohl-Dickstein & Bengio 2016, §3.7 and appendix E) batch-normalises the output of its
coupling layers and counts the normalisation in the likelihood; Su (5807) only notes that "RealNVP uses BN,
Glow replaces it with Actnorm". Per channel c (last axis), on every pixel:

    z = (x − μ_c) / sqrt(σ²_c + ε) · exp(log γ_c) + β_c
    log|det ∂z/∂x| = H·W · Σ_c [log γ_c − ½ log(σ²_c + ε)]       (Σ_c … for vectors)

In training, μ and σ² are the statistics of the current batch, and moving averages are updated
(m ← momentum·m + (1 − momentum)·batch statistic); at inference and in `inverse` the moving averages are used,
so the map is then a fixed per-example bijection. In training the map couples the examples of a batch (the
true Jacobian is over the whole batch); like RealNVP, the log-det counts only the per-example diagonal term.
The moving statistics are non-trainable variables updated with `assign`, which Keras carries out of `fit`
on every backend (JAX included) as it does for `keras.layers.BatchNormalization`.
"""

import numbers

import keras
import numpy as np
from keras import ops

from kgen._checks import check_positive_float
from kgen.flows.layers.base import FlowLayer, sum_except_batch


@keras.saving.register_keras_serializable(package="kgen")
class BatchNormFlow(FlowLayer):
    """Invertible batch normalisation z = (x − μ)/sqrt(σ² + ε)·exp(log γ) + β per channel (RealNVP §3.7).

    Args:
        momentum: of the moving averages, in [0, 1).
        epsilon: added to the variance, > 0.

    Shapes: `x` `(batch, D)` or `(batch, H, W, C)`; `z` the same; `logdet` `(batch,)`.

    Example:
        >>> layer = BatchNormFlow()
        >>> x = keras.random.normal((64, 4, 4, 3), mean=1.0, seed=0)
        >>> z, logdet = layer(x, training=True)     # batch statistics; moving averages updated
        >>> z, logdet = layer(x)                    # moving statistics
        >>> x_back = layer.inverse(z)
    """

    def __init__(self, momentum=0.9, epsilon=1e-4, **kwargs):
        super().__init__(**kwargs)
        if isinstance(momentum, (bool, np.bool_)) or not isinstance(momentum, numbers.Real):
            raise TypeError(f"`momentum` must be a real number in [0, 1), got {momentum!r}")
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"`momentum` must lie in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.epsilon = check_positive_float("epsilon", epsilon)

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"`x` must be (batch, ..., channels) with a known channel count, got {input_shape}")
        channels = (int(input_shape[-1]),)
        self.log_gamma = self.add_weight(name="log_gamma", shape=channels, initializer="zeros")
        self.beta = self.add_weight(name="beta", shape=channels, initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=channels, initializer="zeros",
                                           trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=channels, initializer="ones",
                                               trainable=False)

    def call(self, x, training=None):
        if training:
            axes = tuple(range(len(x.shape) - 1))
            mean, variance = ops.moments(x, axes=axes)
            decay = self.momentum
            self.moving_mean.assign(decay * self.moving_mean + (1.0 - decay) * ops.stop_gradient(mean))
            self.moving_variance.assign(decay * self.moving_variance + (1.0 - decay) * ops.stop_gradient(variance))
        else:
            mean, variance = ops.cast(self.moving_mean, x.dtype), ops.cast(self.moving_variance, x.dtype)
        log_gamma = ops.cast(self.log_gamma, x.dtype)
        log_scale = log_gamma - 0.5 * ops.log(variance + self.epsilon)
        z = (x - mean) * ops.exp(log_scale) + ops.cast(self.beta, x.dtype)
        pixels = sum_except_batch(ops.ones_like(x[..., :1]))
        return z, pixels * ops.sum(log_scale)

    def inverse(self, z):
        mean, variance = ops.cast(self.moving_mean, z.dtype), ops.cast(self.moving_variance, z.dtype)
        log_scale = ops.cast(self.log_gamma, z.dtype) - 0.5 * ops.log(variance + self.epsilon)
        return (z - ops.cast(self.beta, z.dtype)) * ops.exp(-log_scale) + mean

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
