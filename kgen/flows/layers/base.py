"""The one contract every invertible layer in kgen.flows follows.

Direction and sign, stated once (as TFP bijectors state theirs, but in the data→latent direction):

    z, logdet = layer(x, training=...)      # logdet = log|det ∂z/∂x| per example, shape (batch,)
    x = layer.inverse(z)                    # the same layer object, the same weights

A flow's log-density is then log p(x) = log p_Z(z) + Σ_layers logdet (change of variables, Su 5776 eq. 6).
Layers with data-dependent initialisation (ActNorm, NICE's scale layer with `data_init=True`) implement
`initialize_from(x)`: an eager pass sets their parameters from a batch and flips a persistent,
non-trainable `initialized` flag, so a reloaded model is never re-initialised (it survives `.keras` saving,
and JAX, where assignments to trainable variables inside `fit` would be dropped).
"""

import keras
from keras import ops


class FlowLayer(keras.layers.Layer):
    """Base class of invertible layers: `call(x, training=None) -> (z, logdet)`, `inverse(z) -> x`.

    Subclasses implement `call(x, training)` and `inverse(z)` (never a method named `forward`: on the torch
    backend a Keras layer is a `torch.nn.Module`, whose `forward` Keras itself defines). Shapes: `x` is
    `(batch, D)` or `(batch, H, W, C)`; `z` has the same number of elements (Squeeze changes the shape), `logdet` is `(batch,)`.

    Example:
        >>> layer = kgen.flows.layers.AffineCoupling(partition="halves", network="mlp", hidden=(8,))
        >>> x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
        >>> z, logdet = layer(x)                                # logdet: shape (5,)
        >>> np.abs(keras.ops.convert_to_numpy(layer.inverse(z)) - x).max() < 1e-5
    """

    data_init = False

    def __init__(self, **kwargs):
        super().__init__(**with_state_dtype(kwargs))

    def call(self, x, training=None):
        raise NotImplementedError

    def inverse(self, z):
        raise NotImplementedError

    def output_shape_for(self, input_shape):
        """The latent shape (without batch) for an input shape (without batch); most layers keep it."""
        return tuple(input_shape)


def with_state_dtype(kwargs):
    """Layer kwargs with `dtype` defaulting to the policy's *variable* dtype (float32 under "mixed_bfloat16").

    The flow state, log-determinants, priors and ActNorm / 1×1-conv parameters stay in full precision under a
    mixed policy: a bf16 log-det is wrong by whole nats. Only the coupling networks compute in the mixed policy
    (`_Coupling(network_dtype=...)`).
    """
    if kwargs.get("dtype") is None:
        kwargs = dict(kwargs, dtype=keras.config.dtype_policy().variable_dtype)
    return kwargs


def sum_except_batch(x):
    """Σ over every axis but the first: per-example totals, shape (batch,)."""
    return ops.sum(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def zeros_logdet(x):
    """A `(batch,)` vector of zeros in the dtype of `x` (volume-preserving layers)."""
    return ops.zeros((ops.shape(x)[0],), dtype=x.dtype)
