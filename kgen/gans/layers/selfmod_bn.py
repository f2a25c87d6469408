"""Self-modulated batch normalization: BatchNorm whose scale and shift are functions of the latent z.

Chen, Lucic, Houlsby & Gelly (2019), "On Self Modulation for Generative Adversarial Networks" (ICLR);
Su, "从DCGAN到SELF-MOD：GAN的模型架构发展一览" (kexue.fm/archives/6549):

    x_out = γ(z) · (x − μ) / σ + β(z),   β(z) = W_β relu(W z + b) + b_β,   γ(z) = W_γ relu(W z + b) + b_γ

(Su's text prints a second bias b⁽²⁾ where the hidden layer's is meant.) As in compare_gan, the hidden layer
is shared by the two heads, has `hidden` units (32 there) and ReLU, the γ head's bias starts at 1 and the β
head's at 0. Unlike compare_gan (small random head kernels) the head kernels start at zero, so at
initialisation γ(z) = 1 and β(z) = 0 exactly and the layer equals plain BatchNorm; they get gradient
immediately, since relu(W z + b) ≠ 0. Su's O-GAN code writes the same thing as x·(γ'+1) + β with a hidden
width equal to z's. Pass `[x, concat(z, class embedding)]` for the conditional variant of the paper.
"""

import keras

from kgen._checks import check_int
from kgen.gans.layers.conditional_bn import _check_bn_args, broadcast_to_features


@keras.saving.register_keras_serializable(package="kgen")
class SelfModulatedBatchNorm(keras.layers.Layer):
    """BatchNorm over the last axis with γ(z), β(z) from a one-hidden-layer MLP on z; called on `[x, z]`.

    Args:
        hidden: width of the shared hidden layer (compare_gan: 32).
        momentum, epsilon: of the underlying `keras.layers.BatchNormalization` (Keras defaults).
        head_initializer: kernel initializer of the γ and β heads; "zeros" (default) makes the layer plain
            BatchNorm at initialisation.

    Call arguments:
        inputs: `[x, z]`, x of shape (batch, ..., C), z of shape (batch, latent_dim).
        training: batch statistics when True, moving averages when False.

    Example:
        >>> import keras
        >>> from kgen.gans.layers import SelfModulatedBatchNorm
        >>> smbn = SelfModulatedBatchNorm(hidden=32)
        >>> y = smbn([keras.random.normal((4, 8, 8, 16)), keras.random.normal((4, 128))], training=True)
        >>> y.shape
        (4, 8, 8, 16)
    """

    def __init__(self, hidden=32, momentum=0.99, epsilon=1e-3, head_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.hidden = check_int("hidden", hidden, 1)
        self.momentum, self.epsilon = _check_bn_args(momentum, epsilon)
        self.head_initializer = keras.initializers.get(head_initializer)
        self.normalize = keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, center=False, scale=False, name="normalize"
        )
        self.hidden_layer = keras.layers.Dense(self.hidden, activation="relu", name="hidden")

    def build(self, input_shape):
        x_shape, z_shape = input_shape
        if len(z_shape) != 2:
            raise ValueError(f"`z` must have shape (batch, latent_dim), got {tuple(z_shape)}")
        channels = x_shape[-1]
        self.normalize.build(x_shape)
        self.hidden_layer.build(z_shape)
        self.gamma_head = keras.layers.Dense(
            channels, kernel_initializer=self.head_initializer, bias_initializer="ones", name="gamma"
        )
        self.beta_head = keras.layers.Dense(
            channels, kernel_initializer=self.head_initializer, bias_initializer="zeros", name="beta"
        )
        self.gamma_head.build((None, self.hidden))
        self.beta_head.build((None, self.hidden))

    def modulation(self, z):
        """(γ(z), β(z)), each of shape (batch, C)."""
        h = self.hidden_layer(z)
        return self.gamma_head(h), self.beta_head(h)

    def call(self, inputs, training=False):
        x, z = inputs
        gamma, beta = self.modulation(z)
        rank = len(x.shape)
        return self.normalize(x, training=training) * broadcast_to_features(gamma, rank) + broadcast_to_features(
            beta, rank
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update({
            "hidden": self.hidden,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "head_initializer": keras.initializers.serialize(self.head_initializer),
        })
        return config
