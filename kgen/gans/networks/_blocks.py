"""Building blocks shared by the generators and discriminators (private)."""

import keras
from keras import ops

from kgen._checks import check_choice, check_int
from kgen.gans.layers import ConditionalBatchNorm, SelfModulatedBatchNorm, SpectralNormalization

# DCGAN's initialisation (Radford et al. 2016; Su's Keras code): N(0, 0.02).
DCGAN_INIT = "dcgan_normal"
MIN_BASE, MAX_BASE = 4, 7


def initializer(name):
    if name == DCGAN_INIT:
        return keras.initializers.RandomNormal(0.0, 0.02)
    return keras.initializers.get(name)


def check_image_shape(image_shape):
    """(H, W, C) → (base, n): H = W = base·2ⁿ with base in [4, 7] and n ≥ 1 (28 = 7·2², 32 = 4·2³).

    The networks double (or halve) the resolution n times between a base×base map and the image; a shape
    with no such decomposition cannot be produced, so it is refused here, before any layer is built.
    """
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be (height, width, channels), got {image_shape!r}")
    height, width, channels = (check_int("image_shape", d, 1) for d in image_shape)
    if height != width:
        raise ValueError(f"`image_shape` must be square, got {height}×{width}")
    base, n = height, 0
    while base % 2 == 0 and base > MAX_BASE:
        base, n = base // 2, n + 1
    if n == 0 or not MIN_BASE <= base <= MAX_BASE:
        raise ValueError(
            f"`image_shape` {height}×{width} is not base·2^n with base in [{MIN_BASE}, {MAX_BASE}] and n ≥ 1 "
            "(e.g. 28 = 7·4, 32 = 4·8, 64 = 4·16): the networks cannot produce it"
        )
    return base, n


def check_width(width):
    return check_int("width", width, 1)


def check_num_classes(num_classes):
    return None if num_classes is None else check_int("num_classes", num_classes, 1)


def sn(layer, enabled):
    """`layer` wrapped in SpectralNormalization when `enabled`."""
    return SpectralNormalization(layer) if enabled else layer


def dense(units, spectral_norm, init="glorot_uniform", **kwargs):
    return sn(keras.layers.Dense(units, kernel_initializer=initializer(init), **kwargs), spectral_norm)


def conv(filters, kernel_size, spectral_norm, strides=1, init="glorot_uniform", **kwargs):
    layer = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                                kernel_initializer=initializer(init), **kwargs)
    return sn(layer, spectral_norm)


def conv_transpose(filters, kernel_size, spectral_norm, init="glorot_uniform", **kwargs):
    layer = keras.layers.Conv2DTranspose(filters, kernel_size, strides=2, padding="same",
                                         kernel_initializer=initializer(init), **kwargs)
    return sn(layer, spectral_norm)


NORMS = ("bn", "cbn", "selfmod", "none")


def check_norm(norm, num_classes, choices=NORMS):
    check_choice("norm", norm, choices)
    if norm == "cbn" and num_classes is None:
        raise ValueError("`norm='cbn'` (class-conditional BatchNorm) needs `num_classes`")
    return norm


def normalize(h, norm, condition):
    """Apply the generator's normalization: `condition` is the labels (cbn) or the modulation input (selfmod)."""
    if norm == "bn":
        return keras.layers.BatchNormalization()(h)
    if norm == "cbn":
        return ConditionalBatchNorm(condition.num_classes)([h, condition.labels])
    if norm == "selfmod":
        return SelfModulatedBatchNorm()([h, condition.latent])
    return h


class Condition:
    """What the generator's normalization layers condition on (plain holder, not a layer)."""

    def __init__(self, latent, labels=None, num_classes=None):
        self.latent, self.labels, self.num_classes = latent, labels, num_classes


@keras.saving.register_keras_serializable(package="kgen")
class GlobalSumPooling2D(keras.layers.Layer):
    """Sum over the spatial axes, (batch, H, W, C) → (batch, C): SNGAN's ResNet discriminator pooling.

    Example:
        >>> import keras
        >>> from kgen.gans.networks import GlobalSumPooling2D
        >>> GlobalSumPooling2D()(keras.ops.ones((2, 4, 4, 3)))  # every entry 16
    """

    def call(self, x):
        return ops.sum(x, axis=(1, 2))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
