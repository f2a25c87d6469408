"""GAN networks as functional Keras models: the path DCGAN → SNGAN → SAGAN → BigGAN-style → SELF-MOD of
Su's "从DCGAN到SELF-MOD：GAN的模型架构发展一览" (kexue.fm/archives/6549), rebuilt by arguments.

    generator(image_shape, latent_dim, arch, upsample, norm, spectral_norm, attention, num_classes, width)
    discriminator(image_shape, arch, spectral_norm, attention, num_classes, width, norm)
    mlp, mlp_generator, mlp_discriminator     2-D toys

The article's path, for 28×28 animals (`D` always spectral-normalized from SNGAN on):

    DCGAN     generator(s, norm="bn"),                          discriminator(s, spectral_norm=False)
    SNGAN     generator(s, norm="bn"),                          discriminator(s)
    SAGAN     generator(s, spectral_norm=True, attention=True), discriminator(s, attention=True)
    BigGAN    generator(s, norm="cbn", num_classes=10, spectral_norm=True, attention=True),
              discriminator(s, attention=True, num_classes=10), with GAN(..., ema_decay=...)
    SELF-MOD  generator(s, norm="selfmod"),                     discriminator(s)
"""

from kgen.gans.networks._blocks import GlobalSumPooling2D
from kgen.gans.networks.discriminator import discriminator
from kgen.gans.networks.generator import generator
from kgen.gans.networks.toy import mlp, mlp_discriminator, mlp_generator

__all__ = ["GlobalSumPooling2D", "discriminator", "generator", "mlp", "mlp_discriminator", "mlp_generator"]
