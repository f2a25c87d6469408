"""`ActNorm`: Glow's per-channel affine normalisation with data-dependent initialisation.

Glow (Kingma & Dhariwal 2018, "Glow: Generative Flow with Invertible 1x1 Convolutions", §3.1); Su's article
5807 calls it "only a generalisation of NICE's scale layer" (5776 eqs. 14–17) with a shift added. On every
pixel, channel by channel (last axis):

    z = (x + b) · exp(s),        log|det ∂z/∂x| = H·W·Σ_c s_c      (Σ_c s_c for vectors)

openai/glow centres first and scales second, as here, and stores s divided by `logscale_factor` (3 in its
code) so that the stored parameter moves `logscale_factor` times faster under the optimiser.

Initialisation. Glow sets b = −mean and s = log(1/std) from a first batch, so that the layer's outputs start
with zero mean and unit variance per channel (openai `actnorm` with `init=True`). Su's Keras glow.py skips
this and initialises b = s = 0 (the identity). Here both: the weights are zeros until `initialize_from(x)`
runs an *eager* data-dependent pass. Eager, because JAX drops assignments to trainable variables made inside
a compiled `fit` step; the persistent non-trainable `initialized` flag then makes sure that a reloaded
model is never re-initialised (rosinality/glow-pytorch #6, nflows #4).
"""

import keras
import numpy as np
from keras import ops

from kgen._checks import check_positive_float
from kgen.flows.layers.base import FlowLayer, sum_except_batch


@keras.saving.register_keras_serializable(package="kgen")
class ActNorm(FlowLayer):
    """Per-channel z = (x + b)·exp(s) with a data-dependent initialisation (Glow §3.1; Su 5807).

    Args:
        logscale_factor: s is stored as s / logscale_factor (openai/glow uses 3.0); a positive float.

    Shapes: `x` is `(batch, D)` or `(batch, H, W, C)`; `z` has the shape of `x`; `logdet` is `(batch,)`.

    Example:
        >>> layer = ActNorm()
        >>> x = keras.random.normal((64, 4, 4, 3), mean=2.0, stddev=3.0, seed=0)
        >>> layer.initialize_from(x)          # eager: b = -mean, s = -log(std) per channel
        >>> z, logdet = layer(x)              # z has per-channel mean ≈ 0 and std ≈ 1
        >>> x_back = layer.inverse(z)
    """

    data_init = True

    def __init__(self, logscale_factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.logscale_factor = check_positive_float("logscale_factor", logscale_factor)

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"`x` must be (batch, ..., channels) with a known channel count, got {input_shape}")
        channels = int(input_shape[-1])
        self.bias = self.add_weight(name="bias", shape=(channels,), initializer="zeros")
        self.logs = self.add_weight(name="logs", shape=(channels,), initializer="zeros")
        # A weight, not a Python attribute: it is saved with the model, so a reload is not re-initialised.
        self.initialized = self.add_weight(name="initialized", shape=(), initializer="zeros", trainable=False)

    def log_scale(self):
        """s = stored logs × logscale_factor, shape (channels,)."""
        return self.logs * self.logscale_factor

    def call(self, x, training=None):
        log_scale = ops.cast(self.log_scale(), x.dtype)
        z = (x + ops.cast(self.bias, x.dtype)) * ops.exp(log_scale)
        # H·W copies of the per-channel Jacobian (1 for vectors), counted from x so no static shape is needed.
        pixels = sum_except_batch(ops.ones_like(x[..., :1]))
        return z, pixels * ops.sum(log_scale)

    def inverse(self, z):
        log_scale = ops.cast(self.log_scale(), z.dtype)
        return z * ops.exp(-log_scale) - ops.cast(self.bias, z.dtype)

    def initialize_from(self, x):
        """Set b = −mean and s = log(1/(std + 1e-6)) per channel from the batch `x` (eagerly), once.

        Statistics run over every axis but the channel axis. Does nothing when the layer is already
        initialised, which is what keeps a reloaded or already trained model intact.
        """
        if not self.built:
            self.build(tuple(x.shape))
        if float(ops.convert_to_numpy(self.initialized)) > 0.5:
            return
        x = np.asarray(ops.convert_to_numpy(x), dtype=np.float64)
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axis=axes)
        std = np.sqrt(((x - mean) ** 2).mean(axis=axes))
        self.bias.assign(-mean.astype(self.bias.dtype))
        self.logs.assign((np.log(1.0 / (std + 1e-6)) / self.logscale_factor).astype(self.logs.dtype))
        self.initialized.assign(np.ones((), dtype=self.initialized.dtype))

    def get_config(self):
        return {**super().get_config(), "logscale_factor": self.logscale_factor}
