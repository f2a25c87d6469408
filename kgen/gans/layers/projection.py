"""The projection discriminator head: an unconditional logit plus the inner product of the features with
a class embedding.

Miyato & Koyama (2018), "cGANs with Projection Discriminator" (ICLR), the D-side conditioning of SNGAN,
SAGAN and BigGAN; Su, "从DCGAN到SELF-MOD" (kexue.fm/archives/6549). With φ(x) ∈ R^d the discriminator's
features (after global pooling or flattening) and y the class label:

    D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩,   ψ a linear map to one logit,

which follows from writing the log density ratio log q(y|x)/p(y|x) with log-linear class posteriors.
Both ψ and the embedding are spectral-normalized when `spectral_norm=True`, as in the paper.
"""

import keras
from keras import ops

from kgen._checks import check_int
from kgen.gans.layers.spectral_norm import SpectralNormalization


@keras.saving.register_keras_serializable(package="kgen")
class ProjectionHead(keras.layers.Layer):
    """Logit D(x, y) = ψ(h) + ⟨embed(y), h⟩ from features h; called on `[h, labels]`, returns (batch, 1).

    Args:
        num_classes: number of classes; labels are ints in [0, num_classes).
        spectral_norm: spectral-normalize ψ and the class embedding.

    Example:
        >>> import keras
        >>> from kgen.gans.layers import ProjectionHead
        >>> head = ProjectionHead(num_classes=10)
        >>> head([keras.random.normal((4, 64)), keras.ops.array([0, 1, 2, 3])]).shape
        (4, 1)
    """

    def __init__(self, num_classes, spectral_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.spectral_norm = bool(spectral_norm)
        linear = keras.layers.Dense(1, name="linear")
        self.linear = SpectralNormalization(linear, name="linear_sn") if self.spectral_norm else linear

    def build(self, input_shape):
        h_shape, _ = input_shape
        if len(h_shape) != 2 or h_shape[-1] is None:
            raise ValueError(f"ProjectionHead expects features of shape (batch, d), got {tuple(h_shape)}")
        # The embedding width is the feature width, known only here.
        embedding = keras.layers.Embedding(self.num_classes, h_shape[-1], name="embedding")
        self.embedding = SpectralNormalization(embedding, name="embedding_sn") if self.spectral_norm else embedding
        self.linear.build(h_shape)
        self.embedding.build((None,))

    def call(self, inputs, training=False):
        h, labels = inputs
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        projection = ops.sum(self.embedding(labels, training=training) * h, axis=-1, keepdims=True)
        return self.linear(h, training=training) + projection

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "spectral_norm": self.spectral_norm})
        return config
