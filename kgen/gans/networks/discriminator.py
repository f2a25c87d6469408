"""Image discriminators along Su's "从DCGAN到SELF-MOD" path (kexue.fm/archives/6549), chosen by arguments.

    DCGAN     arch="dcgan", spectral_norm=False, norm="bn": strided 4×4 convs, LeakyReLU(0.2), BatchNorm
              everywhere but the first conv, Flatten → logit (Su's working rules; Radford et al. 2016)
    SNGAN     spectral_norm=True (then norm defaults to "none", as in Miyato et al. 2018)
    SNDCGAN   arch="sndcgan": the SNGAN paper's "standard CNN" critic (Miyato et al. 2018, Table 3; compare_gan's
              SNDCGAN, the discriminator of the SELF-MOD paper's experiments): a 3×3 stride-1 conv before the first
              and after every strided 4×4 conv, LeakyReLU(0.1), Flatten → logit (2n + 1 convs where DCGAN's
              critic has n)
    SAGAN     attention=True: SelfAttention2D on the H/2 feature map (Zhang et al. 2019)
    cGAN      num_classes=...: the projection head ψ(h) + ⟨embed(y), h⟩ (Miyato & Koyama 2018)
    ResNet    arch="resnet": SNGAN's residual D, ReLU, average-pool downsampling, global sum pooling

Layout for an image H = base·2ⁿ: n stride-2 stages (28 → 14 → 7, 32 → 16 → 8 → 4), channels doubling from
`width` (SNDCGAN: conv3×3 w | conv4×4/2 w, conv3×3 2w | conv4×4/2 2w, conv3×3 4w | …, the paper's
64 | 64, 128 | 128, 256 | 256, 512 at 32×32 with width 64). The output is one logit per example, shape
(batch, 1), higher = more real (the sign convention of kgen.gans.losses).
"""

import keras

from kgen._checks import check_choice
from kgen.gans.layers import ProjectionHead, SelfAttention2D
from kgen.gans.networks import _blocks as B

ARCHS = ("dcgan", "sndcgan", "resnet")
DCGAN_SLOPE = 0.2  # LeakyReLU slopes: Radford et al. 2016
SNDCGAN_SLOPE = 0.1  # Miyato et al. 2018, Table 3
D_NORMS = ("bn", "none")


def _dblock(h, filters, down, spectral_norm, norm, first):
    """SNGAN's discriminator block; the first one starts from the image, without a pre-activation."""
    main = h if first else keras.layers.ReLU()(h)
    main = B.conv(filters, 3, spectral_norm)(main)
    if norm == "bn":
        main = keras.layers.BatchNormalization()(main)
    main = B.conv(filters, 3, spectral_norm)(keras.layers.ReLU()(main))
    shortcut = h
    if first:
        shortcut = B.conv(filters, 1, spectral_norm)(keras.layers.AveragePooling2D(2, padding="same")(shortcut))
    elif down or h.shape[-1] != filters:
        shortcut = B.conv(filters, 1, spectral_norm)(shortcut)
        if down:
            shortcut = keras.layers.AveragePooling2D(2, padding="same")(shortcut)
    if down:
        main = keras.layers.AveragePooling2D(2, padding="same")(main)
    return keras.layers.Add()([shortcut, main])


def _conv_block(h, filters, kernel_size, strides, spectral_norm, norm, init, slope, first=False):
    """One conv of the DCGAN and SNDCGAN critics: conv (bias only without a BatchNorm after it), BatchNorm (not
    after the first conv), LeakyReLU(slope)."""
    batch_norm = norm == "bn" and not first
    h = B.conv(filters, kernel_size, spectral_norm, strides=strides, init=init, use_bias=not batch_norm)(h)
    if batch_norm:
        h = keras.layers.BatchNormalization()(h)
    return keras.layers.LeakyReLU(slope)(h)


def discriminator(image_shape, arch="dcgan", spectral_norm=True, attention=False, num_classes=None, width=64,
                  norm=None, name="discriminator"):
    """A functional Keras discriminator images (or [images, labels]) → logits (batch, 1).

    Args:
        image_shape: (H, W, C), H = W = base·2ⁿ with base in [4, 7], n ≥ 1.
        arch: "dcgan", "sndcgan" or "resnet".
        spectral_norm: spectral-normalize every conv and dense layer (and the projection head).
        attention: a SelfAttention2D block on the H/2 feature map.
        num_classes: None (input images) or the number of classes (input [images, labels], projection head).
        width: channels of the first feature map.
        norm: "bn" or "none" (BatchNorm after every conv but the first); None picks "none" with spectral norm or
            for resnet, else "bn" (DCGAN).
        name: the model's name.

    Returns:
        `keras.Model` from (H, W, C) images (and integer labels of shape ()) to logits of shape (batch, 1).

    Example:
        >>> import keras
        >>> from kgen.gans.networks import discriminator
        >>> d = discriminator((32, 32, 3), spectral_norm=True, attention=True, width=16)
        >>> d(keras.random.normal((2, 32, 32, 3))).shape
        (2, 1)
    """
    base, n = B.check_image_shape(image_shape)
    check_choice("arch", arch, ARCHS)
    spectral_norm, attention = bool(spectral_norm), bool(attention)
    num_classes = B.check_num_classes(num_classes)
    width = B.check_width(width)
    if norm is None:
        norm = "none" if spectral_norm or arch == "resnet" else "bn"
    check_choice("norm", norm, D_NORMS)
    init = "glorot_uniform" if arch == "resnet" else B.DCGAN_INIT

    images = keras.Input(tuple(image_shape), name="images")
    h = images
    if arch == "dcgan":
        for i in range(n):
            h = _conv_block(h, width * 2 ** i, 4, 2, spectral_norm, norm, init, DCGAN_SLOPE, first=i == 0)
            if attention and i == 0:
                h = SelfAttention2D(spectral_norm=spectral_norm)(h)
        features = keras.layers.Flatten()(h)
    elif arch == "sndcgan":
        h = _conv_block(h, width, 3, 1, spectral_norm, norm, init, SNDCGAN_SLOPE, first=True)
        for i in range(n):
            h = _conv_block(h, width * 2 ** i, 4, 2, spectral_norm, norm, init, SNDCGAN_SLOPE)
            if attention and i == 0:
                h = SelfAttention2D(spectral_norm=spectral_norm)(h)
            h = _conv_block(h, width * 2 ** (i + 1), 3, 1, spectral_norm, norm, init, SNDCGAN_SLOPE)
        features = keras.layers.Flatten()(h)
    else:
        for i in range(n):
            h = _dblock(h, width * 2 ** i, True, spectral_norm, norm, first=i == 0)
            if attention and i == 0:
                h = SelfAttention2D(spectral_norm=spectral_norm)(h)
        h = _dblock(h, width * 2 ** (n - 1), False, spectral_norm, norm, first=False)
        features = B.GlobalSumPooling2D()(keras.layers.ReLU()(h))
    if num_classes is None:
        logits = B.dense(1, spectral_norm, init=init, name="logit")(features)
        return keras.Model(images, logits, name=name)
    labels = keras.Input((), dtype="int32", name="labels")
    logits = ProjectionHead(num_classes, spectral_norm=spectral_norm, name="projection")([features, labels])
    return keras.Model([images, labels], logits, name=name)
