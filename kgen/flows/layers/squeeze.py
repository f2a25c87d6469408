"""`Squeeze`: space-to-channel reshaping for image flows (RealNVP §3.6; Su 5807), log-det 0.

RealNVP (Dinh, Sohl-Dickstein & Bengio 2016, "Density estimation using Real NVP") turns each 2×2×c block of
an h×w×c image into a 1×1×4c pixel: (H, W, C) → (H/2, W/2, 4C). Su (5807) calls it "an essential operation
for image flows": convolutions then see a wider context, and the later channel split of the multi-scale
architecture factors out whole 2×2 blocks. It only rearranges entries, so log|det| = 0.

Every implementation is a bijection, but the *channel order* of the result differs, which matters for
the channel splits that follow and for comparing weights with another implementation. With the block
entry x[2i + a, 2j + b, c] (a, b ∈ {0, 1}, factor f = 2) landing at output channel k of pixel (i, j):

- `order="openai"` (default; openai/glow `squeeze2d`, the Glow paper's code): reshape to
  (H/2, 2, W/2, 2, C), transpose (0, 1, 3, 5, 2, 4) → channel blocks [C, 2, 2]: k = 4c + 2a + b.
  The four spatial copies of one input channel stay adjacent.
- `order="su"` (Su's Keras glow `Squeeze`): transpose (0, 1, 3, 2, 4, 5) → channel blocks [2, 2, C]:
  k = 2C·a + C·b + c. Each spatial position keeps its C channels together (tf.nn.space_to_depth's order).

For a general factor f replace 2 by f (k = f²c + f·a + b, or k = fC·a + C·b + c).
"""

import keras
from keras import ops

from kgen._checks import check_choice, check_int
from kgen.flows.layers.base import FlowLayer, zeros_logdet

ORDERS = ("openai", "su")


@keras.saving.register_keras_serializable(package="kgen")
class Squeeze(FlowLayer):
    """(batch, H, W, C) → (batch, H/f, W/f, f²·C), a volume-preserving reshape (RealNVP §3.6; Su 5807).

    Args:
        factor: block size f, an int >= 2 dividing H and W.
        order: channel order of the result, "openai" ([C, f, f] blocks, Glow's code, default) or
            "su" ([f, f, C] blocks, Su's Keras glow); see the module docstring.

    Example:
        >>> layer = Squeeze(order="openai")
        >>> z, logdet = layer(keras.ops.ones((2, 8, 8, 3)))     # z: (2, 4, 4, 12), logdet: zeros (2,)
        >>> x = layer.inverse(z)                                 # (2, 8, 8, 3)
    """

    def __init__(self, factor=2, order="openai", **kwargs):
        super().__init__(**kwargs)
        self.factor = check_int("factor", factor, 2)
        self.order = check_choice("order", order, ORDERS)

    def output_shape_for(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"`x` must be an image (batch, H, W, C) to squeeze, got example shape {input_shape}")
        height, width, channels = input_shape
        f = self.factor
        if height is not None and height % f or width is not None and width % f:
            raise ValueError(f"`x` height and width must be divisible by factor={f}, got {height}×{width}")
        return (None if height is None else height // f, None if width is None else width // f, channels * f * f)

    def build(self, input_shape):
        self.output_shape_for(tuple(input_shape)[1:])

    def call(self, x, training=None):
        _, height, width, channels = x.shape
        f = self.factor
        blocks = ops.reshape(x, (-1, height // f, f, width // f, f, channels))
        perm = (0, 1, 3, 5, 2, 4) if self.order == "openai" else (0, 1, 3, 2, 4, 5)
        z = ops.reshape(ops.transpose(blocks, perm), (-1, height // f, width // f, channels * f * f))
        return z, zeros_logdet(x)

    def inverse(self, z):
        _, height, width, channels = z.shape
        f = self.factor
        channels //= f * f
        if self.order == "openai":
            blocks = ops.reshape(z, (-1, height, width, channels, f, f))
            x = ops.transpose(blocks, (0, 1, 4, 2, 5, 3))
        else:
            blocks = ops.reshape(z, (-1, height, width, f, f, channels))
            x = ops.transpose(blocks, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, height * f, width * f, channels))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "order": self.order}
