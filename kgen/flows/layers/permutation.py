"""`Permute`: a fixed permutation of the last axis, so successive couplings transform different elements.

NICE (Dinh et al. 2014, arXiv:1410.8516) reverses the dimensions between couplings; Su
(https://kexue.fm/archives/5776, 5807) reverses before each NICE coupling and shuffles randomly for RealNVP and
Glow (his `Permute(mode='random')`, stored as an int32 weight). Glow's ablation orders them
reverse < shuffle < invertible 1×1 conv. A permutation matrix has |det| = 1, so the log-det is 0.
"""

import keras
import numpy as np
from keras import ops

from kgen._checks import check_choice, check_int
from kgen.flows.layers.base import FlowLayer, zeros_logdet

MODES = ("reverse", "random")


@keras.saving.register_keras_serializable(package="kgen")
class Permute(FlowLayer):
    """z[..., k] = x[..., π(k)] for a fixed permutation π of the last axis (features or channels); log-det 0.

    "random" (Su's shuffle) draws π with `numpy.random.default_rng(seed)` at build; π is kept as a
    non-trainable int32 weight named `permutation`, so a saved model reloads with the same order even if
    numpy's generator changes. The inverse gathers with argsort(π).

    Args:
        mode: "reverse" (NICE) or "random" (Su's RealNVP/Glow).
        seed: non-negative int for "random".

    Shapes: `(batch, D)` or `(batch, H, W, C)` → the same, `logdet` `(batch,)` of zeros.

    Example:
        >>> layer = Permute("random", seed=3)
        >>> z, logdet = layer(keras.random.normal((2, 8)))
        >>> x = layer.inverse(z)
    """

    def __init__(self, mode="reverse", seed=0, **kwargs):
        super().__init__(**kwargs)
        self.mode = check_choice("mode", mode, MODES)
        self.seed = check_int("seed", seed, 0)

    def build(self, input_shape):
        size = input_shape[-1]
        if len(input_shape) < 2 or size is None:
            raise ValueError(f"`x` must have a static last axis, got shape {tuple(input_shape)}")
        size = int(size)
        if self.mode == "reverse":
            order = np.arange(size)[::-1]
        else:
            order = np.random.default_rng(self.seed).permutation(size)
        self.permutation = self.add_weight(shape=(size,), dtype="int32", trainable=False, name="permutation",
                                           initializer=keras.initializers.Constant(order.astype("int32")))

    def call(self, x, training=None):
        return ops.take(x, self.permutation, axis=-1), zeros_logdet(x)

    def inverse(self, z):
        if not self.built:
            self.build(tuple(z.shape))
        return ops.take(z, ops.argsort(self.permutation), axis=-1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "seed": self.seed}
