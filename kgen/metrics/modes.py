"""Mode coverage of samples from a known mixture (the synthetic-data protocol of VEEGAN).

Srivastava, Valkov, Russell, Gutmann & Sutton (2017), "VEEGAN: Reducing Mode Collapse in GANs using
Implicit Variational Learning" (NeurIPS), evaluate generators on mixtures of Gaussians with known centres
(a ring of 8, a 5x5 grid): a sample is *high quality* when it lies within three standard deviations of the
nearest centre, and a mode counts as *captured* when high-quality samples are assigned to it. Later papers
differ in how many samples a mode needs: some require a minimum count (or a fraction of the count expected
under the mixture weights), hence `min_count` (default 1, the VEEGAN rule).
"""

import numpy as np

from kgen._checks import as_float_matrix, check_int, check_positive_float

__all__ = ["mode_coverage"]


def mode_coverage(samples, centres, std, min_count=1):
    """Count the mixture modes hit by high-quality samples, and the fraction of high-quality samples.

    A sample is high quality when its Euclidean distance to the nearest centre is <= 3 * std. A mode is
    covered when at least `min_count` high-quality samples have it as their nearest centre (ties go to the
    lower centre index). All computations are NumPy float64.

    Args:
        samples: array-like, shape (n, d), n >= 1.
        centres: array-like, shape (k, d), k >= 1: the mixture's component means.
        std: the components' standard deviation, a finite number > 0.
        min_count: samples a mode needs to count as covered, an int >= 1 (1 is the VEEGAN protocol).

    Returns:
        `(modes_covered, high_quality_fraction)`: a Python int in [0, k] and a Python float in [0, 1].

    Example:
        >>> centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
        >>> samples = np.array([[0.1, 0.0], [9.9, 0.2], [5.0, 5.0], [0.0, -0.1]])
        >>> mode_coverage(samples, centres, std=0.1)
        (2, 0.75)
    """
    x = as_float_matrix("samples", samples)
    c = as_float_matrix("centres", centres)
    if x.shape[1] != c.shape[1]:
        raise ValueError(
            f"`samples` and `centres` must have the same dimension d, got shapes {x.shape} and {c.shape}"
        )
    std = check_positive_float("std", std)
    min_count = check_int("min_count", min_count, 1)
    # ||x - c||^2 by direct differences in chunks (exact for far-away points, bounded memory).
    nearest = np.empty(x.shape[0], dtype=np.int64)
    nearest_sq = np.empty(x.shape[0], dtype=np.float64)
    chunk = max(1, 2**22 // max(1, c.size))
    for start in range(0, x.shape[0], chunk):
        block = x[start:start + chunk]
        sq = ((block[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1)
        nearest[start:start + chunk] = sq.argmin(axis=1)
        nearest_sq[start:start + chunk] = sq.min(axis=1)
    high_quality = np.sqrt(nearest_sq) <= 3.0 * std
    counts = np.bincount(nearest[high_quality], minlength=c.shape[0])
    return int((counts >= min_count).sum()), float(high_quality.mean())
