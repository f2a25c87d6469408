"""The U-Net's building blocks: GroupNorm, the log-SNR embedding, the residual block, 2-D self-attention.

DDPM (Ho et al. 2020, arXiv 2006.11239, after PixelCNN++ / Wide ResNet): residual blocks with GroupNorm + SiLU and
the noise-level embedding added inside, self-attention at low resolution. The noise level is the log-SNR λ (VDM,
Kingma et al. 2021; simple diffusion, Hoogeboom et al. 2023), embedded by sinusoids of λ itself and a two-layer
MLP; `kgen.diffusion.unet` explains why λ and not an integer step. All layers are channels-last.
"""

import keras
import numpy as np
from keras import ops

from kgen._checks import check_int, check_positive_float

__all__ = ["GroupNorm", "LogSNREmbedding", "ResBlock", "SelfAttention2D"]


def _groups(channels, max_groups):
    """The largest divisor of `channels` not above `max_groups` (GroupNorm needs groups | channels)."""
    return max(g for g in range(1, min(channels, max_groups) + 1) if channels % g == 0)


@keras.saving.register_keras_serializable(package="kgen")
class GroupNorm(keras.layers.Layer):
    """Group normalisation (Wu & He 2018) over channels-last inputs, with a learned per-channel scale and shift.

    The same function as `keras.layers.GroupNormalization(groups, epsilon=1e-3)` on the last axis, written so
    that every reduction runs over the spatial axes with the channels kept contiguous: per-channel spatial
    means first, then a (C, C) block-averaging matmul over the channels of each group. Keras's layer reshapes
    to (..., groups, channels/groups) and reduces over non-adjacent axes, which XLA on CPU runs 4–5× slower
    forward and ~3.5× slower backward (28×28×16, batch 64). Two passes (mean, then the mean square of the
    centred input), so no E[x²] − E[x]² cancellation.

    Args:
        groups: number of channel groups; must divide the channel count.
        epsilon: added to the variance.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(2, 4, 4, 8)).astype("float32")
        >>> GroupNorm(groups=4)(x).shape                  # (2, 4, 4, 8); each group has mean 0, variance 1
    """

    def __init__(self, groups=8, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.groups = check_int("groups", groups, 1)
        self.epsilon = check_positive_float("epsilon", epsilon)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels % self.groups:
            raise ValueError(f"`groups` ({self.groups}) must divide the channel count ({channels})")
        size = channels // self.groups
        # (C, C) block matrix: row c averages the channels of c's group (fixed, so built once here).
        self._same_group = np.kron(np.eye(self.groups), np.full((size, size), 1.0 / size)).astype("float32")
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def _group_average(self, per_channel, rank):
        # (batch, C) spatial means -> (batch, 1, ..., 1, C), each channel holding its group's mean. Averaging
        # and spreading back are matmuls with a fixed (C, C) block matrix (repeat/5-D reshapes export badly
        # to ONNX from torch, and their gradients are slow on XLA CPU).
        averaged = ops.matmul(per_channel, ops.convert_to_tensor(self._same_group, per_channel.dtype))
        return ops.reshape(averaged, (-1,) + (1,) * (rank - 2) + (per_channel.shape[-1],))

    def call(self, x):
        rank = len(x.shape)
        axes = tuple(range(1, rank - 1))
        h = ops.cast(x, "float32")  # statistics in float32 under a mixed policy (a no-op otherwise)
        centred = h - self._group_average(ops.mean(h, axis=axes), rank)
        variance = self._group_average(ops.mean(ops.square(centred), axis=axes), rank)
        normed = centred * ops.rsqrt(variance + self.epsilon)
        return ops.cast(normed, x.dtype) * ops.cast(self.gamma, x.dtype) + ops.cast(self.beta, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="kgen")
class LogSNREmbedding(keras.layers.Layer):
    """Embedding of the log-SNR λ: sinusoidal features of λ, then Dense-SiLU-Dense.

    Args:
        dim: output width (and number of sinusoidal features, half sines and half cosines).
        max_frequency: the highest angular frequency ω per unit of λ; the lowest is 1/max_frequency.

    Example:
        >>> LogSNREmbedding(32)(keras.ops.convert_to_tensor([-5.0, 0.0, 5.0])).shape   # (3, 32)
    """

    def __init__(self, dim, max_frequency=16.0, **kwargs):
        super().__init__(**kwargs)
        self.dim = check_int("dim", dim, 2)
        self.max_frequency = check_positive_float("max_frequency", max_frequency)
        half = self.dim // 2
        self.frequencies = np.geomspace(1.0 / self.max_frequency, self.max_frequency, half).astype("float32")
        self.dense1 = keras.layers.Dense(self.dim, activation="silu", dtype=self.dtype_policy)
        self.dense2 = keras.layers.Dense(self.dim, dtype=self.dtype_policy)

    def build(self, input_shape):
        # Built here, not on the first call only, so that a reload builds the Dense layers before their weights
        # are read (Keras warns about a layer whose sublayers a default build leaves unbuilt).
        self.dense1.build((None, 2 * (self.dim // 2)))
        self.dense2.build((None, self.dim))

    def features(self, logsnr):
        """The sinusoidal features, shape (batch, 2 * (dim // 2))."""
        angles = ops.cast(ops.reshape(logsnr, (-1, 1)), "float32") * ops.convert_to_tensor(self.frequencies)
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def call(self, logsnr):
        return self.dense2(self.dense1(self.features(logsnr)))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_frequency": self.max_frequency}


@keras.saving.register_keras_serializable(package="kgen")
class ResBlock(keras.layers.Layer):
    """GroupNorm-SiLU-Conv, plus the embedding, GroupNorm-SiLU-Dropout-Conv, added to a (1×1-projected) skip.

    Called on `[h, emb]` with h (batch, H, W, C_in) and emb (batch, E); returns (batch, H, W, channels).

    Example:
        >>> h, emb = np.zeros((2, 8, 8, 4), "float32"), np.zeros((2, 16), "float32")
        >>> ResBlock(8, norm_groups=4)([h, emb]).shape    # (2, 8, 8, 8)
    """

    def __init__(self, channels, norm_groups=8, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.channels = check_int("channels", channels, 1)
        self.norm_groups = check_int("norm_groups", norm_groups, 1)
        self.dropout_rate = float(dropout)

    def build(self, input_shape):
        h_shape, emb_shape = input_shape
        in_channels = int(h_shape[-1])
        d = dict(dtype=self.dtype_policy)
        self.norm1 = GroupNorm(_groups(in_channels, self.norm_groups), **d)
        self.conv1 = keras.layers.Conv2D(self.channels, 3, padding="same", **d)
        self.emb_proj = keras.layers.Dense(self.channels, **d)
        self.norm2 = GroupNorm(_groups(self.channels, self.norm_groups), **d)
        self.dropout = keras.layers.Dropout(self.dropout_rate, **d)
        self.conv2 = keras.layers.Conv2D(self.channels, 3, padding="same", **d)
        self.skip = keras.layers.Conv2D(self.channels, 1, **d) if in_channels != self.channels else None
        out_shape = tuple(h_shape[:-1]) + (self.channels,)
        self.norm1.build(h_shape)
        self.conv1.build(h_shape)
        self.emb_proj.build(emb_shape)
        self.norm2.build(out_shape)
        self.conv2.build(out_shape)
        if self.skip is not None:
            self.skip.build(h_shape)
        self.built = True

    def call(self, inputs, training=None):
        h, emb = inputs
        out = self.conv1(ops.silu(self.norm1(h)))
        out = out + self.emb_proj(ops.silu(emb))[:, None, None, :]
        out = self.conv2(self.dropout(ops.silu(self.norm2(out)), training=training))
        return out + (h if self.skip is None else self.skip(h))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "norm_groups": self.norm_groups,
                "dropout": self.dropout_rate}


@keras.saving.register_keras_serializable(package="kgen")
class SelfAttention2D(keras.layers.Layer):
    """Residual multi-head self-attention over the H·W positions of a feature map (after GroupNorm).

    Example:
        >>> SelfAttention2D(num_heads=2, norm_groups=4)(np.zeros((2, 4, 4, 8), "float32")).shape   # (2, 4, 4, 8)
    """

    def __init__(self, num_heads=1, norm_groups=8, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_int("num_heads", num_heads, 1)
        self.norm_groups = check_int("norm_groups", norm_groups, 1)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels % self.num_heads:
            raise ValueError(f"`num_heads` ({self.num_heads}) must divide the channels ({channels})")
        self.norm = GroupNorm(_groups(channels, self.norm_groups), dtype=self.dtype_policy)
        self.attention = keras.layers.MultiHeadAttention(self.num_heads, channels // self.num_heads,
                                                         dtype=self.dtype_policy)
        self.norm.build(input_shape)
        tokens = (input_shape[0], None, channels)
        self.attention.build(tokens, tokens)
        self.built = True

    def call(self, x):
        _, height, width, channels = ops.shape(x)
        tokens = ops.reshape(self.norm(x), (-1, height * width, channels))
        return x + ops.reshape(self.attention(tokens, tokens), (-1, height, width, channels))

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "norm_groups": self.norm_groups}
