"""Evaluation metrics for generative models.

    bits_per_dim            likelihood of dequantized discrete data in bits/dim (flows, VAEs)
    FrechetDistance         streaming Fréchet distance / FID (Heusel et al. 2017), a keras Metric
    frechet_distance        NumPy float64 reference, with gaussian_statistics
    KernelInceptionDistance streaming KID (Bińkowski et al. 2018), a keras Metric
    kernel_inception_distance  NumPy float64 unbiased MMD^2 reference
    mode_coverage           modes captured / high-quality fraction on mixtures (Srivastava et al. 2017)
    feature_model           feature extractors for FID/KID (from kgen.metrics.classifiers, imported lazily)
"""

import importlib.util as _importlib_util

from kgen.metrics.frechet import FrechetDistance, frechet_distance, gaussian_statistics
from kgen.metrics.kid import KernelInceptionDistance, kernel_inception_distance
from kgen.metrics.likelihood import bits_per_dim
from kgen.metrics.modes import mode_coverage

__all__ = [
    "FrechetDistance",
    "KernelInceptionDistance",
    "bits_per_dim",
    "frechet_distance",
    "gaussian_statistics",
    "kernel_inception_distance",
    "mode_coverage",
    # "feature_model" is served lazily by __getattr__ below (kept out of __all__ so that
    # `from kgen.metrics import *` works before kgen/metrics/classifiers.py exists).
]


def _classifiers_available():
    return _importlib_util.find_spec("kgen.metrics.classifiers") is not None


def __getattr__(name):
    # Lazy re-export of `from kgen.metrics.classifiers import feature_model`, on first access only, so this
    # package imports while classifiers.py is missing and never pays for its imports unless asked.
    if name == "feature_model":
        if not _classifiers_available():
            raise AttributeError("`kgen.metrics.feature_model` needs kgen/metrics/classifiers.py, which is missing")
        from kgen.metrics.classifiers import feature_model

        globals()["feature_model"] = feature_model
        return feature_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    names = set(globals())
    if _classifiers_available():
        names.add("feature_model")
    return sorted(names)
