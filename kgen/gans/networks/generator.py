"""Image generators along Su's "从DCGAN到SELF-MOD" path (kexue.fm/archives/6549), chosen by arguments.

    DCGAN     arch="dcgan", upsample="transpose", norm="bn"           (Radford, Metz & Chintala 2016)
    +nearest  upsample="nearest": UpSampling2D + 3×3 conv instead of strided deconvolution (no checkerboard)
    SNGAN     the same G; the discriminator gets spectral_norm=True       (Miyato et al. 2018)
    SAGAN     spectral_norm=True, attention=True (and the D likewise)     (Zhang et al. 2019)
    BigGAN-ish num_classes=..., norm="cbn", spectral_norm, attention; projection D; GAN(..., ema_decay=...)
    SELF-MOD  norm="selfmod": γ(z), β(z) in every BatchNorm               (Chen et al. 2019)
    ResNet    arch="resnet": pre-activation residual up-blocks (SNGAN/BigGAN style)

Layout for an image H = base·2ⁿ (28 = 7·2², 32 = 4·2³): z → Dense → base×base×(width·2ⁿ⁻¹) → n upsamplings,
halving the channels down to `width`, → C channels with tanh (data in [−1, 1]). DCGAN's last upsampling
produces the image directly (Su's DCGAN code); the ResNet's n residual up-blocks are followed by
BN → ReLU → 3×3 conv → tanh. Self-attention, when on, sits on the H/2 × H/2 feature map.

Conditioning (`num_classes`): the model takes `[z, labels]`. norm="bn" concatenates a class embedding to z
(the keras.io conditional GAN); "cbn" looks γ, β up by class; "selfmod" modulates on concat(z, embedding),
the SELF-MOD paper's conditional variant.
"""

import keras

from kgen._checks import check_choice, check_int
from kgen.gans.layers import SelfAttention2D
from kgen.gans.networks import _blocks as B

ARCHS = ("dcgan", "resnet")
UPSAMPLES = ("transpose", "nearest")


def _upsample_conv(h, filters, kernel, upsample, spectral_norm, init, **kwargs):
    if upsample == "transpose":
        return B.conv_transpose(filters, 4, spectral_norm, init=init, **kwargs)(h)
    h = keras.layers.UpSampling2D(2, interpolation="nearest")(h)
    return B.conv(filters, kernel, spectral_norm, init=init, **kwargs)(h)


def _resblock_up(h, filters, upsample, spectral_norm, norm, condition):
    shortcut = keras.layers.UpSampling2D(2, interpolation="nearest")(h)
    shortcut = B.conv(filters, 1, spectral_norm)(shortcut)
    main = keras.layers.ReLU()(B.normalize(h, norm, condition))
    main = _upsample_conv(main, filters, 3, upsample, spectral_norm, "glorot_uniform")
    main = keras.layers.ReLU()(B.normalize(main, norm, condition))
    main = B.conv(filters, 3, spectral_norm)(main)
    return keras.layers.Add()([shortcut, main])


def generator(image_shape, latent_dim=128, arch="dcgan", upsample=None, norm="bn", spectral_norm=False,
              attention=False, num_classes=None, width=64, name="generator"):
    """A functional Keras generator z (or [z, labels]) → images in [−1, 1].

    Args:
        image_shape: (H, W, C), H = W = base·2ⁿ with base in [4, 7], n ≥ 1 (28×28, 32×32, 64×64, ...);
            any number of channels.
        latent_dim: size of z.
        arch: "dcgan" or "resnet".
        upsample: "transpose" (stride-2 4×4 deconvolution) or "nearest" (UpSampling2D + 3×3 conv);
            None picks "transpose" for dcgan and "nearest" for resnet.
        norm: "bn", "cbn" (class-conditional, needs `num_classes`), "selfmod" or "none".
        spectral_norm: spectral-normalize every Dense/conv (SAGAN, BigGAN).
        attention: a SelfAttention2D block on the H/2 feature map.
        num_classes: None (unconditional, input z) or the number of classes (input [z, labels]).
        width: channels of the last feature map (doubling towards the input).
        name: the model's name.

    Returns:
        `keras.Model` with input z of shape (latent_dim,) (and integer labels of shape ()) and output
        (H, W, C) after tanh.

    Example:
        >>> import keras
        >>> from kgen.gans.networks import generator
        >>> g = generator((28, 28, 1), latent_dim=64, norm="selfmod", width=32)
        >>> g(keras.random.normal((2, 64))).shape
        (2, 28, 28, 1)
    """
    base, n = B.check_image_shape(image_shape)
    latent_dim = check_int("latent_dim", latent_dim, 1)
    check_choice("arch", arch, ARCHS)
    upsample = check_choice("upsample", upsample or ("transpose" if arch == "dcgan" else "nearest"), UPSAMPLES)
    num_classes = B.check_num_classes(num_classes)
    norm = B.check_norm(norm, num_classes)
    width = B.check_width(width)
    spectral_norm, attention = bool(spectral_norm), bool(attention)
    init = B.DCGAN_INIT if arch == "dcgan" else "glorot_uniform"

    z = keras.Input((latent_dim,), name="z")
    inputs, h0, condition = [z], z, B.Condition(z)
    if num_classes is not None:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        embedded = keras.layers.Embedding(num_classes, latent_dim, name="class_embedding")(labels)
        both = keras.layers.Concatenate()([z, embedded])
        condition = B.Condition(both if norm == "selfmod" else z, labels, num_classes)
        if norm in ("bn", "none"):
            h0 = both

    channels = [width * 2 ** max(n - 1 - i, 0) for i in range(n + 1)]  # at resolutions base·2^i
    h = B.dense(base * base * channels[0], spectral_norm, init=init)(h0)
    h = keras.layers.Reshape((base, base, channels[0]))(h)
    if arch == "dcgan":
        h = keras.layers.ReLU()(B.normalize(h, norm, condition))
        for i in range(1, n):
            h = _upsample_conv(h, channels[i], 3, upsample, spectral_norm, init, use_bias=norm == "none")
            h = keras.layers.ReLU()(B.normalize(h, norm, condition))
            if attention and i == n - 1:
                h = SelfAttention2D(spectral_norm=spectral_norm)(h)
        if attention and n == 1:
            h = SelfAttention2D(spectral_norm=spectral_norm)(h)
        h = _upsample_conv(h, image_shape[-1], 3, upsample, spectral_norm, init)
    else:
        if attention and n == 1:
            h = SelfAttention2D(spectral_norm=spectral_norm)(h)
        for i in range(1, n + 1):
            h = _resblock_up(h, channels[i], upsample, spectral_norm, norm, condition)
            if attention and i == n - 1:
                h = SelfAttention2D(spectral_norm=spectral_norm)(h)
        h = keras.layers.ReLU()(B.normalize(h, norm, condition))
        h = B.conv(image_shape[-1], 3, spectral_norm)(h)
    images = keras.layers.Activation("tanh", name="images")(h)
    return keras.Model(inputs if num_classes is not None else z, images, name=name)
