"""Kernel Inception Distance (KID): unbiased squared MMD with a cubic polynomial kernel.

Bińkowski, Sutherland, Arbel & Gretton (2018), "Demystifying MMD GANs" (ICLR), propose the squared Maximum
Mean Discrepancy (Gretton et al. 2012) between real and generated Inception features, with the kernel

    k(x, y) = (x . y / d + 1)^3          (d = feature dimension)

and the unbiased U-statistic estimator, for X = {x_i}_{i<m}, Y = {y_j}_{j<n}:

    MMD^2_u = sum_{i != i'} k(x_i, x_i') / (m (m-1)) + sum_{j != j'} k(y_j, y_j') / (n (n-1))
              - 2 sum_{i, j} k(x_i, y_j) / (m n).

Unlike FID it has an unbiased estimator (its expectation does not depend on the sample size), which also
means it can come out slightly negative when the two distributions are equal. The paper reports the mean
(and spread) of estimates over random subsets of the samples; `KernelInceptionDistance` uses the same
subset-average estimator with the subsets being the batches passed to `update_state` (as the keras.io DDIM
example does).

Contents:
    kernel_inception_distance(f1, f2): NumPy float64 unbiased MMD^2 of two feature sets.
    KernelInceptionDistance: a streaming `keras.metrics.Metric` (pure keras.ops, every backend).
"""

import keras
import numpy as np

from kgen._checks import as_float_matrix
from kgen.metrics._features import (
    check_feature_model,
    compute_features,
    deserialize_feature_model,
    infer_feature_dim,
    serialize_feature_model,
)
from kgen._checks import check_choice

__all__ = ["KernelInceptionDistance", "kernel_inception_distance"]

KERNELS = ("polynomial",)


def kernel_inception_distance(f1, f2):
    """Unbiased squared MMD between two feature sets with the KID kernel (x.y/d + 1)^3, in float64.

    Args:
        f1: features of the first (e.g. real) set, shape (m, d), m >= 2.
        f2: features of the second (e.g. generated) set, shape (n, d), n >= 2.

    Returns:
        A Python float; unbiased, so it may be slightly negative when the distributions match.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> kernel_inception_distance(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 2.0) > 0.5
        True
    """
    x = as_float_matrix("f1", f1, min_rows=2)
    y = as_float_matrix("f2", f2, min_rows=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"`f1` and `f2` must have the same number of features, got {x.shape[1]} and {y.shape[1]}")
    d = x.shape[1]
    m, n = x.shape[0], y.shape[0]
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    term_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    term_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(term_xx + term_yy - 2.0 * k_xy.mean())


def _mmd2_unbiased_ops(x, y):
    """keras.ops version of `kernel_inception_distance` on one batch (float32, traceable)."""
    ops = keras.ops
    d = ops.cast(ops.shape(x)[1], "float32")
    m = ops.cast(ops.shape(x)[0], "float32")
    n = ops.cast(ops.shape(y)[0], "float32")

    def kernel(a, b):
        return ops.power(ops.matmul(a, ops.transpose(b)) / d + 1.0, 3)

    k_xx = kernel(x, x)
    k_yy = kernel(y, y)
    k_xy = kernel(x, y)
    term_xx = (ops.sum(k_xx) - ops.trace(k_xx)) / (m * (m - 1.0))
    term_yy = (ops.sum(k_yy) - ops.trace(k_yy)) / (n * (n - 1.0))
    return term_xx + term_yy - 2.0 * ops.mean(k_xy)


@keras.saving.register_keras_serializable(package="kgen")
class KernelInceptionDistance(keras.metrics.Metric):
    """Streaming KID: the running mean of per-batch unbiased MMD^2 estimates (cubic polynomial kernel).

    Each `update_state(real, fake)` maps both batches through `feature_model`, computes the unbiased MMD^2
    of that pair of batches (see the module docstring) and adds it to a running mean; `result()` returns the
    mean over all batches since the last reset. This is the subset-average estimator of Bińkowski et al.
    (2018) with subset = batch: unbiased for the MMD^2 whatever the batch size, but with a variance that
    shrinks with larger batches, and each batch costs O((m + n)^2 d). It is not the same number as
    `kernel_inception_distance` on all samples at once (which has lower variance and equal expectation).

    Args:
        feature_model: None (identity: the inputs are features; each example is flattened to a row) or a
            callable / Keras model mapping a batch to (batch, d) features. Keras layers are called with
            `training=False`. Only its architecture is part of `get_config`.
        feature_dim: optional d; when given (or known from a built Keras `feature_model`), every batch is
            checked against it. The kernel's d is always the batch's feature dimension.
        kernel: "polynomial", k(x, y) = (x . y / d + 1)^3, the only kernel so far.
        name: metric name.
        **kwargs: passed to `keras.metrics.Metric`; the state is float32 regardless.

    Shapes:
        update_state(real, fake): real (m, ...) and fake (n, ...), m, n >= 2, giving (m, d) and (n, d)
        features. result(): scalar float32.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> kid = KernelInceptionDistance()
        >>> for _ in range(3):
        ...     kid.update_state(rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 2.0)
        >>> float(kid.result()) > 0.5
        True
    """

    def __init__(self, feature_model=None, feature_dim=None, kernel="polynomial", name="kid", **kwargs):
        feature_model = deserialize_feature_model(feature_model)
        check_feature_model(feature_model)
        feature_dim = infer_feature_dim(feature_model, feature_dim, required=False)
        check_choice("kernel", kernel, KERNELS)
        super().__init__(name=name, **kwargs)
        self.feature_model = feature_model
        self.feature_dim = feature_dim
        self.kernel = kernel
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

    def update_state(self, real, fake, sample_weight=None):
        """Add the unbiased MMD^2 of one batch of real and one batch of generated examples."""
        if sample_weight is not None:
            raise ValueError("`sample_weight` is not supported by KernelInceptionDistance; pass None")
        x = compute_features(self.feature_model, real, "real", self.feature_dim)
        y = compute_features(self.feature_model, fake, "fake", self.feature_dim)
        for name, features in (("real", x), ("fake", y)):
            if features.shape[0] is not None and features.shape[0] < 2:
                raise ValueError(f"`{name}` needs at least 2 examples per batch for the unbiased MMD^2")
        if x.shape[1] is not None and y.shape[1] is not None and x.shape[1] != y.shape[1]:
            raise ValueError(f"`real` gives {x.shape[1]} features per example but `fake` gives {y.shape[1]}")
        self.total.assign(self.total + _mmd2_unbiased_ops(x, y))
        self.count.assign(self.count + 1.0)

    def result(self):
        """Mean of the per-batch unbiased MMD^2 estimates (0 before any update)."""
        return self.total / keras.ops.maximum(self.count, 1.0)

    def reset_state(self):
        """Zero the running total and batch count."""
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "feature_model": serialize_feature_model(self.feature_model),
                "feature_dim": self.feature_dim,
                "kernel": self.kernel,
            }
        )
        return config
