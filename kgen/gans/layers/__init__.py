"""Layers for GAN generators and discriminators (Su, kexue.fm/archives/6549, "从DCGAN到SELF-MOD").

    SpectralNormalization   W/σ(W) reparameterisation of a Dense/Conv/Embedding layer (SNGAN), JAX-safe
    ConditionalBatchNorm    BatchNorm with class-conditional γ(y), β(y) (cGAN, SAGAN, BigGAN)
    SelfModulatedBatchNorm  BatchNorm with γ(z), β(z) from an MLP on the latent (SELF-MOD)
    SelfAttention2D         the SAGAN non-local block, identity at initialisation
    ProjectionHead          the projection discriminator's logit ψ(h) + ⟨embed(y), h⟩
"""

from kgen.gans.layers.attention import SelfAttention2D
from kgen.gans.layers.conditional_bn import ConditionalBatchNorm
from kgen.gans.layers.projection import ProjectionHead
from kgen.gans.layers.selfmod_bn import SelfModulatedBatchNorm
from kgen.gans.layers.spectral_norm import SpectralNormalization

__all__ = [
    "ConditionalBatchNorm",
    "ProjectionHead",
    "SelfAttention2D",
    "SelfModulatedBatchNorm",
    "SpectralNormalization",
]
