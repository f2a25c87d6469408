"""Class-conditional batch normalization: BatchNorm whose scale and shift are looked up by class label.

de Vries, Strub, Mary, Larochelle, Pietquin & Courville (2017), "Modulating early visual processing by
language" (NeurIPS); used by the projection cGAN (Miyato & Koyama 2018), SAGAN and BigGAN. Su,
"从DCGAN到SELF-MOD：GAN的模型架构发展一览" (kexue.fm/archives/6549), writes it as

    x_out = γ(y) · (x − μ) / σ + β(y)

with μ, σ the batch statistics of ordinary BatchNorm (moving averages in inference) and γ(y), β(y) rows of
two class embeddings, initialised to 1 and 0 so that the layer starts as plain BatchNorm. Su's Keras recipe
is the same: BatchNormalization(center=False, scale=False), then x·γ + β. (BigGAN instead maps one shared
class embedding linearly to γ, β; compare_gan optionally spectral-normalizes those maps.)
"""

import keras
from keras import ops

from kgen._checks import check_int


def _check_bn_args(momentum, epsilon):
    if not isinstance(momentum, (int, float)) or not 0.0 <= momentum < 1.0:
        raise ValueError(f"`momentum` must be a number in [0, 1), got {momentum!r}")
    if not isinstance(epsilon, (int, float)) or epsilon <= 0:
        raise ValueError(f"`epsilon` must be a number > 0, got {epsilon!r}")
    return float(momentum), float(epsilon)


def broadcast_to_features(params, x_rank):
    """(batch, C) → (batch, 1, ..., 1, C) so that it broadcasts against a (batch, ..., C) tensor."""
    return ops.reshape(params, (-1,) + (1,) * (x_rank - 2) + (params.shape[-1],))


@keras.saving.register_keras_serializable(package="kgen")
class ConditionalBatchNorm(keras.layers.Layer):
    """BatchNorm over the last axis with per-class γ and β; called on `[x, labels]`.

    Args:
        num_classes: number of classes; labels are ints in [0, num_classes).
        momentum, epsilon: of the underlying `keras.layers.BatchNormalization` (Keras defaults).

    Call arguments:
        inputs: `[x, labels]`, x of shape (batch, ..., C) and integer labels of shape (batch,) or (batch, 1).
        training: batch statistics (and moving-average updates) when True, moving averages when False.

    Example:
        >>> import keras
        >>> from kgen.gans.layers import ConditionalBatchNorm
        >>> cbn = ConditionalBatchNorm(num_classes=10)
        >>> y = cbn([keras.random.normal((4, 8, 8, 16)), keras.ops.array([0, 1, 2, 3])], training=True)
        >>> y.shape
        (4, 8, 8, 16)
    """

    def __init__(self, num_classes, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.momentum, self.epsilon = _check_bn_args(momentum, epsilon)
        self.normalize = keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, center=False, scale=False, name="normalize"
        )

    def build(self, input_shape):
        x_shape, _ = input_shape
        channels = x_shape[-1]
        self.normalize.build(x_shape)
        self.gamma = self.add_weight(name="gamma", shape=(self.num_classes, channels), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(self.num_classes, channels), initializer="zeros")

    def call(self, inputs, training=False):
        x, labels = inputs
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        rank = len(x.shape)
        gamma = broadcast_to_features(ops.take(self.gamma, labels, axis=0), rank)
        beta = broadcast_to_features(ops.take(self.beta, labels, axis=0), rank)
        return self.normalize(x, training=training) * gamma + beta

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "momentum": self.momentum, "epsilon": self.epsilon})
        return config
