"""`Split` (factor-out of the multi-scale architecture) and `TopPrior` (Glow's learned top prior).

Multi-scale architecture (RealNVP, Dinh et al. 2016, §3.6; Glow, Kingma & Dhariwal 2018, §3): after each
level half of the channels leave the flow as a latent z and the other half h continues. The plain version
gives z a standard prior (RealNVP paper). Su (5807) stresses what he learned "only from reading the source
code": openai/glow's `split2d` gives z a *conditional* Gaussian prior whose mean and log-std come from h by a
zero-initialised 3×3 convolution, p(z|h) = N(z; μ(h), exp(logs(h))²), and a last learned prior on the top.

Here that prior is written as a change of variables (Su's "CondActnorm"), so that *every* latent of a kgen
flow is standard:

    ẑ = (z − μ(h))·exp(−logs(h)),    log|det ∂(h, ẑ)/∂(h, z)| = −Σ logs(h)

(the Jacobian is block-triangular: ẑ depends on h, h does not depend on z). Then
log N(ẑ; 0, I) − Σ logs = log N(z; μ, exp(logs)²), exactly the term openai's `split2d` adds to its objective,
and sampling ẑ = T·ε gives z = μ + exp(logs)·T·ε, openai's temperature sampling. The top prior (`TopPrior`,
openai `learntop`) is the same map with a learned, input-independent μ and logs per element.
"""

import keras
from keras import ops

from kgen._checks import check_choice
from kgen.flows.layers.base import FlowLayer, sum_except_batch, with_state_dtype, zeros_logdet

PRIORS = ("conditional", "standard")


@keras.saving.register_keras_serializable(package="kgen")
class Split(keras.layers.Layer):
    """Factor out the second half of the channels, standardised by a learned conditional prior.

    Not a plain FlowLayer: it has two outputs. `call(x) -> (h, z_hat, logdet)` with h = x[..., :C/2]
    (goes on through the flow) and z = x[..., C/2:] (leaves it); `inverse(h, z_hat) -> x`.

    - `prior="conditional"` (Glow `split2d`, Su's CondActnorm; default): a zero-initialised Conv2D(3×3, C)
      on h (a Dense layer for vectors) gives μ = out[..., :C/2] and logs = out[..., C/2:];
      z_hat = (z − μ)·exp(−logs), logdet = −Σ logs. At initialisation μ = logs = 0, the plain split.
    - `prior="standard"` (RealNVP paper): z_hat = z, logdet = 0.

    Args:
        prior: "conditional" or "standard".

    Shapes: `x` `(batch, H, W, C)` or `(batch, C)` with C even; `h` and `z_hat` `(batch, ..., C/2)`;
    `logdet` `(batch,)`.

    Example:
        >>> layer = Split()
        >>> h, z_hat, logdet = layer(keras.random.normal((2, 4, 4, 6), seed=0))   # h, z_hat: (2, 4, 4, 3)
        >>> x = layer.inverse(h, z_hat)
    """

    data_init = False

    def __init__(self, prior="conditional", **kwargs):
        super().__init__(**with_state_dtype(kwargs))
        self.prior = check_choice("prior", prior, PRIORS)

    def output_shapes_for(self, input_shape):
        """(h shape, z shape) without batch, for an input shape without batch."""
        input_shape = tuple(input_shape)
        if len(input_shape) not in (1, 3):
            raise ValueError(f"`x` must be (batch, D) or (batch, H, W, C), got example shape {input_shape}")
        channels = input_shape[-1]
        if channels is None or channels % 2:
            raise ValueError(f"`x` must have an even number of channels to split, got {channels}")
        half = input_shape[:-1] + (channels // 2,)
        return half, half

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        h_shape, _ = self.output_shapes_for(input_shape[1:])
        half = h_shape[-1]
        if self.prior == "conditional":
            common = dict(kernel_initializer="zeros", bias_initializer="zeros", dtype=self.dtype_policy)
            if len(input_shape) == 4:
                self.prior_net = keras.layers.Conv2D(2 * half, 3, padding="same", name="prior_conv", **common)
            else:
                self.prior_net = keras.layers.Dense(2 * half, name="prior_dense", **common)
            # Built here, while the layer may still add state (Keras locks it after build).
            self.prior_net.build(input_shape[:-1] + (half,))

    def _mean_logs(self, h):
        mean, logs = ops.split(self.prior_net(h), 2, axis=-1)
        return mean, logs

    def call(self, x, training=None):
        h, z = ops.split(x, 2, axis=-1)
        if self.prior == "standard":
            return h, z, zeros_logdet(x)
        mean, logs = self._mean_logs(h)
        return h, (z - mean) * ops.exp(-logs), -sum_except_batch(logs)

    def inverse(self, h, z_hat):
        if self.prior == "standard":
            return ops.concatenate([h, z_hat], axis=-1)
        mean, logs = self._mean_logs(h)
        return ops.concatenate([h, z_hat * ops.exp(logs) + mean], axis=-1)

    def get_config(self):
        return {**super().get_config(), "prior": self.prior}


@keras.saving.register_keras_serializable(package="kgen")
class TopPrior(FlowLayer):
    """Learned top prior (openai/glow `learntop`; Su's final Actnorm): ẑ = (z − μ)·exp(−logs) per element.

    μ and logs have the shape of one example and start at zero (the identity); logdet = −Σ logs, so that
    log N(ẑ; 0, I) − Σ logs = log N(z; μ, exp(logs)²).

    Shapes: `z` `(batch, ...)`; output of the same shape; `logdet` `(batch,)`.

    Example:
        >>> layer = TopPrior()
        >>> z_hat, logdet = layer(keras.random.normal((2, 2, 2, 12), seed=0))
        >>> z = layer.inverse(z_hat)
    """

    def build(self, input_shape):
        shape = tuple(input_shape)[1:]
        if not shape or any(d is None for d in shape):
            raise ValueError(f"`x` must have a fully known example shape, got {tuple(input_shape)}")
        self.mean = self.add_weight(name="mean", shape=shape, initializer="zeros")
        self.logs = self.add_weight(name="logs", shape=shape, initializer="zeros")

    def call(self, x, training=None):
        logs = ops.cast(self.logs, x.dtype)
        z_hat = (x - ops.cast(self.mean, x.dtype)) * ops.exp(-logs)
        return z_hat, zeros_logdet(x) - ops.sum(logs)

    def inverse(self, z):
        return z * ops.exp(ops.cast(self.logs, z.dtype)) + ops.cast(self.mean, z.dtype)
