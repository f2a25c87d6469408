"""Evaluation metrics for generative models.

    bits_per_dim            likelihood of dequantized discrete data in bits/dim (flows, VAEs)
    FrechetDistance         streaming Fréchet distance / FID (Heusel et al. 2017), a keras Metric
    frechet_distance        NumPy float64 reference, with gaussian_statistics
    KernelInceptionDistance streaming KID (Bińkowski et al. 2018), a keras Metric
    kernel_inception_distance  NumPy float64 unbiased MMD^2 reference
    power_spectrum          radially averaged power spectrum of an image set; spectrum_distance between two sets
    mode_coverage           modes captured / high-quality fraction on mixtures (Srivastava et al. 2017)
    feature_model           feature extractors for FID/KID (kgen's own CNN classifiers, see classifiers.py)
"""

from kgen.metrics.classifiers import CLASSIFIER_NAMES, classifier, feature_model
from kgen.metrics.frechet import FrechetDistance, frechet_distance, gaussian_statistics
from kgen.metrics.kid import KernelInceptionDistance, kernel_inception_distance
from kgen.metrics.likelihood import bits_per_dim, gaussian_bits_per_dim
from kgen.metrics.modes import mode_coverage
from kgen.metrics.spectrum import power_spectrum, spectrum_distance

__all__ = [
    "CLASSIFIER_NAMES",
    "FrechetDistance",
    "KernelInceptionDistance",
    "bits_per_dim",
    "classifier",
    "feature_model",
    "frechet_distance",
    "gaussian_bits_per_dim",
    "gaussian_statistics",
    "kernel_inception_distance",
    "mode_coverage",
    "power_spectrum",
    "spectrum_distance",
]
