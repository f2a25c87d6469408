"""The SAGAN self-attention (non-local) block for feature maps, the identity at initialisation.

Zhang, Goodfellow, Metaxas & Odena (2019), "Self-Attention Generative Adversarial Networks" (ICML); Su,
"从DCGAN到SELF-MOD：GAN的模型架构发展一览" (kexue.fm/archives/6549), who notes that SAGAN "only inserts one
self-attention layer". With x of shape (batch, H, W, C), N = H·W positions and N' = N/4 after pooling
(compare_gan's `non_local_block`):

    θ = conv1×1(x) → C/8          (queries, N of them)
    φ = maxpool2×2(conv1×1(x)) → C/8   (keys, N')
    g = maxpool2×2(conv1×1(x)) → C/2   (values, N')
    A = softmax(θ φᵀ) over the N' keys,   o = conv1×1(A g) → C,   y = x + γ o,  γ a scalar initialised to 0.

The 1×1 convolutions have no bias and, as in SAGAN, are spectral-normalized when `spectral_norm=True`.
Pooling uses padding "same", so odd sizes (7×7 in a 28×28 network) work.
"""

import keras
from keras import ops

from kgen._checks import check_int
from kgen.gans.layers.spectral_norm import SpectralNormalization


def _conv1x1(filters, spectral_norm, name):
    conv = keras.layers.Conv2D(filters, 1, use_bias=False, name=name)
    return SpectralNormalization(conv, name=f"{name}_sn") if spectral_norm else conv


@keras.saving.register_keras_serializable(package="kgen")
class SelfAttention2D(keras.layers.Layer):
    """SAGAN self-attention over the positions of a (batch, H, W, C) feature map, y = x + γ·attention(x).

    Args:
        spectral_norm: wrap the four 1×1 convolutions in `SpectralNormalization` (SAGAN does).
        key_ratio: C // key_ratio channels for queries and keys (SAGAN: 8), at least 1.
        value_ratio: C // value_ratio channels for values (SAGAN: 2), at least 1.
        pool: max-pool keys and values 2×2 (SAGAN does, for a 4× cheaper attention).

    Example:
        >>> import keras
        >>> from kgen.gans.layers import SelfAttention2D
        >>> attention = SelfAttention2D()
        >>> x = keras.random.normal((2, 14, 14, 32))
        >>> bool(keras.ops.all(attention(x) == x))  # γ = 0 at initialisation
        True
    """

    def __init__(self, spectral_norm=False, key_ratio=8, value_ratio=2, pool=True, **kwargs):
        super().__init__(**kwargs)
        self.spectral_norm = bool(spectral_norm)
        self.key_ratio = check_int("key_ratio", key_ratio, 1)
        self.value_ratio = check_int("value_ratio", value_ratio, 1)
        self.pool = bool(pool)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"SelfAttention2D expects inputs (batch, H, W, C) with known C, got {tuple(input_shape)}")
        channels = input_shape[-1]
        keys, values = max(1, channels // self.key_ratio), max(1, channels // self.value_ratio)
        self.theta = _conv1x1(keys, self.spectral_norm, "theta")
        self.phi = _conv1x1(keys, self.spectral_norm, "phi")
        self.g = _conv1x1(values, self.spectral_norm, "g")
        self.out = _conv1x1(channels, self.spectral_norm, "out")
        for conv in (self.theta, self.phi, self.g):
            conv.build(input_shape)
        self.out.build(tuple(input_shape[:-1]) + (values,))
        self.pooling = keras.layers.MaxPooling2D(2, padding="same", name="pool")
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros")

    def _positions(self, x):
        return ops.reshape(x, (ops.shape(x)[0], -1, x.shape[-1]))

    def attention_weights(self, x, training=False):
        """A = softmax(θ φᵀ): shape (batch, H·W, N'), each row a distribution over the pooled positions."""
        theta = self._positions(self.theta(x, training=training))
        phi = self.phi(x, training=training)
        if self.pool:
            phi = self.pooling(phi)
        return ops.softmax(ops.matmul(theta, ops.transpose(self._positions(phi), (0, 2, 1))), axis=-1)

    def call(self, x, training=False):
        attention = self.attention_weights(x, training=training)
        g = self.g(x, training=training)
        if self.pool:
            g = self.pooling(g)
        attended = ops.matmul(attention, self._positions(g))
        attended = ops.reshape(attended, (ops.shape(x)[0], x.shape[1], x.shape[2], attended.shape[-1]))
        return x + self.gamma * self.out(attended, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"spectral_norm": self.spectral_norm, "key_ratio": self.key_ratio,
                       "value_ratio": self.value_ratio, "pool": self.pool})
        return config
