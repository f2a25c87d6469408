"""`Reshape`: a volume-preserving change of shape (images → vectors for NICE and MLP RealNVP)."""

import keras
import numpy as np
from keras import ops

from kgen.flows.layers.base import FlowLayer, zeros_logdet


@keras.saving.register_keras_serializable(package="kgen")
class Reshape(FlowLayer):
    """Reshape each example to `target_shape` (e.g. `(-1,)` to flatten); log-det 0.

    Example:
        >>> layer = Reshape((-1,))
        >>> z, logdet = layer(keras.ops.ones((2, 4, 4, 1)))     # z: (2, 16)
    """

    def __init__(self, target_shape=(-1,), **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1:
            raise ValueError(f"`target_shape` may hold at most one -1, got {self.target_shape}")

    def build(self, input_shape):
        self.source_shape = tuple(int(d) for d in input_shape[1:])
        size = int(np.prod(self.source_shape))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        if size % known:
            raise ValueError(f"`x` of shape {self.source_shape} cannot be reshaped to {self.target_shape}")
        self.resolved_shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        if int(np.prod(self.resolved_shape)) != size:
            raise ValueError(f"`x` of shape {self.source_shape} cannot be reshaped to {self.target_shape}")

    def call(self, x, training=None):
        return ops.reshape(x, (-1,) + self.resolved_shape), zeros_logdet(x)

    def inverse(self, z):
        return ops.reshape(z, (-1,) + self.source_shape)

    def output_shape_for(self, input_shape):
        size = int(np.prod(input_shape))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}
