"""Tests for kgen.metrics: bits/dim, Fréchet distance, KID and mode coverage.

Oracles: closed forms (uniform densities, the 2-Wasserstein distance between Gaussians), scipy's general
matrix square root, direct double loops, and NumPy float64 references for the float32 keras.ops metrics.
Every test runs on each Keras backend (KERAS_BACKEND=jax|tensorflow|torch).
"""

import doctest
import math

import keras
import numpy as np
import pytest
import scipy.linalg

import kgen.metrics
from kgen.metrics import (
    FrechetDistance,
    KernelInceptionDistance,
    bits_per_dim,
    frechet_distance,
    gaussian_statistics,
    kernel_inception_distance,
    mode_coverage,
)
from kgen.metrics import frechet as frechet_module
from kgen.metrics import kid as kid_module
from kgen.metrics import likelihood as likelihood_module
from kgen.metrics import modes as modes_module


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def _seeded(seed):
    return keras.initializers.GlorotUniform(seed=seed)


def _random_spd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


# ----------------------------------------------------------------------------------------------- bits/dim


@pytest.mark.parametrize("levels", [2, 16, 256])
@pytest.mark.parametrize("num_dims", [1, 3072])
def test_bits_per_dim_of_uniform_density_on_unit_cube_is_log2_levels(levels, num_dims):
    assert bits_per_dim(0.0, num_dims, levels) == pytest.approx(math.log2(levels), rel=1e-13)


def test_bits_per_dim_known_values():
    d = 3072
    # p_y = 256^D on its cell (all mass on one value): 0 bits.
    assert bits_per_dim(-d * math.log(256), d, 256) == pytest.approx(0.0, abs=1e-12)
    # One extra nat per dimension costs 1/ln 2 bits per dimension.
    assert bits_per_dim(float(d), d, 256) == pytest.approx(8.0 + 1.0 / math.log(2.0), rel=1e-13)
    # Half the density in every dimension: one extra bit per dimension.
    assert bits_per_dim(d * math.log(2.0), d, 256) == pytest.approx(9.0, rel=1e-13)


def test_bits_per_dim_equals_discrete_bits_for_piecewise_constant_density():
    rng = np.random.default_rng(0)
    levels, d, n = 5, 6, 40
    probs = rng.dirichlet(np.ones(levels), size=d)  # factorised categorical P(x) = prod_i probs[i, x_i]
    x = np.stack([rng.choice(levels, size=n, p=probs[i]) for i in range(d)], axis=1)
    log_p_x = np.log(probs[np.arange(d), x]).sum(axis=1)
    # Density on [0,1]^D constant on each cell [x/levels, (x+1)/levels): p(y) = levels^D P(x).
    nll_y = -(d * np.log(levels) + log_p_x)
    np.testing.assert_allclose(bits_per_dim(nll_y, d, levels), -log_p_x / (d * np.log(2.0)), rtol=1e-12)


def test_bits_per_dim_returns_the_kind_it_was_given():
    out = bits_per_dim(1.5, 10, 256)
    assert type(out) is float
    array = bits_per_dim(np.zeros((2, 3)), 10, 256)
    assert isinstance(array, np.ndarray) and array.shape == (2, 3)
    np.testing.assert_allclose(array, 8.0)
    assert isinstance(bits_per_dim([0.0, 0.0], 10, 256), np.ndarray)
    assert isinstance(bits_per_dim(np.float32(0.0), np.int64(10), 256), np.floating)
    tensor = bits_per_dim(keras.ops.zeros((3,)), 10, 256)
    assert keras.ops.is_tensor(tensor)
    np.testing.assert_allclose(_numpy(tensor), 8.0, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"num_dims": 0}, ValueError, "num_dims"),
        ({"num_dims": -3}, ValueError, "num_dims"),
        ({"num_dims": 2.0}, TypeError, "num_dims"),
        ({"num_dims": True}, TypeError, "num_dims"),
        ({"levels": 1}, ValueError, "levels"),
        ({"levels": 256.0}, TypeError, "levels"),
        ({"nll_nats": "x"}, TypeError, "nll_nats"),
        ({"nll_nats": True}, TypeError, "nll_nats"),
    ],
)
def test_bits_per_dim_rejects_bad_arguments(kwargs, error, name):
    args = {"nll_nats": 0.0, "num_dims": 4, "levels": 256, **kwargs}
    with pytest.raises(error, match=name):
        bits_per_dim(**args)


# ----------------------------------------------------------------------------- Fréchet distance: NumPy


def test_numpy_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.1, 3.0, size=5), rng.uniform(0.1, 3.0, size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_numpy_frechet_distance_matches_closed_form_for_commuting_covariances():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    a, b = rng.uniform(0.1, 3.0, size=4), rng.uniform(0.1, 3.0, size=4)
    cov1, cov2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(np.zeros(4), cov1, np.zeros(4), cov2) == pytest.approx(expected, rel=1e-9)


def test_numpy_frechet_distance_matches_scipy_sqrtm_for_non_commuting_covariances():
    rng = np.random.default_rng(3)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    cov1, cov2 = _random_spd(rng, d), _random_spd(rng, d, scale=2.0)
    assert np.abs(cov1 @ cov2 - cov2 @ cov1).max() > 0.1  # really non-commuting
    root1 = scipy.linalg.sqrtm(cov1).real
    cross = scipy.linalg.sqrtm(root1 @ cov2 @ root1).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2.0 * cross)
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-8)
    # Tr sqrt(C1 C2) is the same number (same eigenvalues): the usual FID implementations' form.
    other = np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2) - 2.0 * np.trace(scipy.linalg.sqrtm(cov1 @ cov2).real)
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(other, rel=1e-6)


def test_numpy_frechet_distance_is_symmetric_and_zero_for_identical_gaussians():
    rng = np.random.default_rng(4)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    cov1, cov2 = _random_spd(rng, 5), _random_spd(rng, 5)
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(frechet_distance(mu2, cov2, mu1, cov1), rel=1e-9)
    assert frechet_distance(mu1, cov1, mu1, cov1) == pytest.approx(0.0, abs=1e-9)
    # Rank-deficient (PSD, not PD) covariances are fine.
    v = rng.normal(size=(5, 2))
    assert frechet_distance(mu1, v @ v.T, mu1, v @ v.T) == pytest.approx(0.0, abs=1e-6)


def test_gaussian_statistics_match_numpy_mean_and_unbiased_cov():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, 3))
    mu, cov = gaussian_statistics(x)
    np.testing.assert_allclose(mu, x.mean(axis=0))
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False))
    mu1, cov1 = gaussian_statistics(x[:, :1])
    assert mu1.shape == (1,) and cov1.shape == (1, 1)


def test_numpy_frechet_helpers_reject_bad_shapes():
    with pytest.raises(ValueError, match="features"):
        gaussian_statistics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="features"):
        gaussian_statistics(np.zeros(5))
    with pytest.raises(ValueError, match="cov1"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="mu2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros((3, 1)), np.eye(3))
    with pytest.raises(ValueError, match="mu1"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="cov2"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]))


# ------------------------------------------------------------------------------ Fréchet distance: Metric


def _two_gaussian_sets(seed, n=4000, d=4, offset=0.0):
    rng = np.random.default_rng(seed)
    real = rng.multivariate_normal(rng.normal(size=d) + offset, _random_spd(rng, d), size=n)
    fake = rng.multivariate_normal(rng.normal(size=d) + offset, _random_spd(rng, d, scale=1.5), size=n)
    return real.astype(np.float32), fake.astype(np.float32)


def _feed(metric, real, fake, real_batches, fake_batches):
    """Update with len(real_batches) calls; an int splits evenly, a list gives the split indices."""
    real_parts, fake_parts = np.array_split(real, real_batches), np.array_split(fake, fake_batches)
    assert len(real_parts) == len(fake_parts)
    for r, f in zip(real_parts, fake_parts):
        metric.update_state(r, f)


def _reference_fd(real, fake):
    return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(fake))


def test_frechet_metric_accumulated_over_batches_matches_numpy_reference():
    # Batches of 250 x 4 throughout the file: under JAX every new shape costs an eager compile.
    real, fake = _two_gaussian_sets(10)
    metric = FrechetDistance(feature_dim=4)
    _feed(metric, real, fake, real_batches=16, fake_batches=16)
    expected = _reference_fd(real, fake)
    assert expected > 1.0
    assert float(metric.result()) == pytest.approx(expected, rel=1e-3)
    # Unequal, uneven batch sizes per set give the same statistics.
    uneven = FrechetDistance(feature_dim=4)
    _feed(uneven, real, fake, real_batches=[250], fake_batches=[3750])
    assert float(uneven.result()) == pytest.approx(expected, rel=1e-3)


def test_frechet_metric_is_accurate_for_features_far_from_the_origin():
    # Mean 1e3, unit spread: sum(x x^T)/n - mu mu^T in float32 would lose the covariance entirely.
    real, fake = _two_gaussian_sets(11, offset=1000.0)
    metric = FrechetDistance(feature_dim=4)
    _feed(metric, real, fake, real_batches=16, fake_batches=16)
    real64, fake64 = real.astype(np.float64), fake.astype(np.float64)
    assert float(metric.result()) == pytest.approx(_reference_fd(real64, fake64), rel=1e-3)
    naive = real64.astype(np.float32)
    naive_cov = (naive.T @ naive) / np.float32(len(naive)) - np.outer(naive.mean(0), naive.mean(0))
    assert np.abs(naive_cov - np.cov(real64, rowvar=False)).max() > 0.1  # negative control: naive fails


def test_frechet_metric_is_zero_for_identical_sets_and_squared_shift_for_shifted_sets():
    real, _ = _two_gaussian_sets(12, n=1000)
    same = FrechetDistance(feature_dim=4)
    _feed(same, real, real.copy(), 4, 4)
    assert float(same.result()) == pytest.approx(0.0, abs=1e-3)
    shift = np.array([0.5, -1.0, 2.0, 0.0], dtype=np.float32)
    shifted = FrechetDistance(feature_dim=4)
    _feed(shifted, real, real + shift, 4, 4)
    assert float(shifted.result()) == pytest.approx(float(shift @ shift), rel=1e-3, abs=1e-3)


def test_frechet_metric_is_symmetric_in_real_and_fake():
    real, fake = _two_gaussian_sets(13, n=1000)
    forward, backward = FrechetDistance(feature_dim=4), FrechetDistance(feature_dim=4)
    _feed(forward, real, fake, 4, 4)
    _feed(backward, fake, real, 4, 4)
    assert float(forward.result()) == pytest.approx(float(backward.result()), rel=1e-3)


def test_frechet_metric_reset_state_forgets_everything():
    real, fake = _two_gaussian_sets(14, n=1000)
    metric = FrechetDistance(feature_dim=4)
    _feed(metric, real + 5.0, fake, 2, 2)
    metric.reset_state()
    assert all(np.all(_numpy(v) == 0.0) for v in metric.variables)
    _feed(metric, real, fake, 4, 4)
    assert float(metric.result()) == pytest.approx(_reference_fd(real, fake), rel=1e-3)


def test_frechet_metric_flattens_image_batches_for_the_identity_feature_model():
    real, fake = _two_gaussian_sets(15, n=1000)
    metric = FrechetDistance(feature_dim=4)
    _feed(metric, real.reshape(-1, 2, 2, 1), fake.reshape(-1, 2, 2, 1), 4, 4)
    assert float(metric.result()) == pytest.approx(_reference_fd(real, fake), rel=1e-3)


def test_frechet_metric_applies_the_feature_model_and_infers_its_dimension():
    # Seeded initializers, not keras.utils.set_random_seed (which imports TensorFlow: seconds).
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, kernel_initializer=_seeded(0))])
    rng = np.random.default_rng(16)
    real = rng.normal(size=(1000, 6)).astype(np.float32)
    fake = (rng.normal(size=(1000, 6)) * 1.5 + 0.5).astype(np.float32)
    metric = FrechetDistance(feature_model=model)
    assert metric.feature_dim == 4
    _feed(metric, real, fake, 4, 4)
    expected = _reference_fd(_numpy(model(real)), _numpy(model(fake)))
    assert expected > 0.1
    assert float(metric.result()) == pytest.approx(expected, rel=1e-3)
    # Any callable works too, given feature_dim.
    plain = FrechetDistance(feature_model=lambda x: keras.ops.square(x)[:, :4], feature_dim=4)
    _feed(plain, real, fake, 4, 4)
    assert float(plain.result()) == pytest.approx(_reference_fd(real[:, :4] ** 2, fake[:, :4] ** 2), rel=1e-3)


def test_frechet_metric_rejects_bad_arguments_before_any_work():
    with pytest.raises(ValueError, match="feature_dim"):
        FrechetDistance()
    with pytest.raises(ValueError, match="feature_dim"):
        FrechetDistance(feature_model=lambda x: x)
    with pytest.raises(ValueError, match="feature_dim"):
        FrechetDistance(feature_model=keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)]), feature_dim=4)
    with pytest.raises(ValueError, match="feature_dim"):
        FrechetDistance(feature_dim=0)
    with pytest.raises(TypeError, match="feature_dim"):
        FrechetDistance(feature_dim=2.0)
    with pytest.raises(TypeError, match="feature_model"):
        FrechetDistance(feature_model="inception", feature_dim=2)
    metric = FrechetDistance(feature_dim=4)
    with pytest.raises(ValueError, match="real"):
        metric.update_state(np.zeros((8, 3)), np.zeros((8, 4)))
    with pytest.raises(ValueError, match="fake"):
        metric.update_state(np.zeros((8, 4)), np.zeros((8, 5)))
    with pytest.raises(ValueError, match="sample_weight"):
        metric.update_state(np.zeros((8, 4)), np.zeros((8, 4)), sample_weight=np.ones(8))
    assert all(np.all(_numpy(v) == 0.0) for v in metric.variables)


# ------------------------------------------------------------------------------------------------- KID


def test_numpy_kid_matches_a_direct_double_loop():
    rng = np.random.default_rng(20)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.3
    d = 3

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    assert kernel_inception_distance(x, y) == pytest.approx(xx + yy - 2.0 * xy, rel=1e-12)


def test_numpy_kid_is_unbiased_near_zero_for_equal_distributions_and_positive_otherwise():
    rng = np.random.default_rng(21)
    null = np.array([kernel_inception_distance(rng.normal(size=(40, 4)), rng.normal(size=(40, 4))) for _ in range(60)])
    assert (null < 0).any() and (null > 0).any()  # unbiased: both signs occur
    assert abs(null.mean()) < 3.0 * null.std() / math.sqrt(len(null))
    shifted = kernel_inception_distance(rng.normal(size=(40, 4)), rng.normal(size=(40, 4)) + 1.0)
    assert shifted > null.max() + 5.0 * null.std()


def test_kid_metric_equals_the_mean_of_per_batch_numpy_estimates():
    rng = np.random.default_rng(22)
    batches = [
        (rng.normal(size=(m, 4)).astype(np.float32), (rng.normal(size=(n, 4)) * 1.3 + 0.4).astype(np.float32))
        for m, n in [(50, 50), (50, 50), (50, 30)]
    ]
    metric = KernelInceptionDistance()
    for real, fake in batches:
        metric.update_state(real, fake)
    expected = np.mean([kernel_inception_distance(r, f) for r, f in batches])
    assert expected > 0.1
    assert float(metric.result()) == pytest.approx(expected, rel=1e-4)
    metric.reset_state()
    assert float(metric.result()) == 0.0
    metric.update_state(*batches[2])
    assert float(metric.result()) == pytest.approx(kernel_inception_distance(*batches[2]), rel=1e-4)


def test_kid_metric_is_near_zero_for_one_distribution_and_clearly_positive_for_two():
    rng = np.random.default_rng(23)
    same, different = KernelInceptionDistance(feature_dim=4), KernelInceptionDistance(feature_dim=4)
    for _ in range(5):
        real = rng.normal(size=(50, 4)).astype(np.float32)
        same.update_state(real, rng.normal(size=(50, 4)).astype(np.float32))
        different.update_state(real, (rng.normal(size=(50, 4)) + 1.0).astype(np.float32))
    assert abs(float(same.result())) < 0.05
    assert float(different.result()) > 0.5


def test_kid_metric_applies_the_feature_model():
    model = keras.Sequential(
        [keras.Input((2, 3)), keras.layers.Flatten(), keras.layers.Dense(4, kernel_initializer=_seeded(1))]
    )
    rng = np.random.default_rng(24)
    real = rng.normal(size=(50, 2, 3)).astype(np.float32)
    fake = (rng.normal(size=(50, 2, 3)) + 1.0).astype(np.float32)
    metric = KernelInceptionDistance(feature_model=model)
    assert metric.feature_dim == 4
    metric.update_state(real, fake)
    expected = kernel_inception_distance(_numpy(model(real)), _numpy(model(fake)))
    assert float(metric.result()) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_kid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kernel"):
        KernelInceptionDistance(kernel="rbf")
    with pytest.raises(TypeError, match="feature_model"):
        KernelInceptionDistance(feature_model=3)
    metric = KernelInceptionDistance()
    with pytest.raises(ValueError, match="real"):
        metric.update_state(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="fake"):
        metric.update_state(np.zeros((5, 4)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="real"):
        KernelInceptionDistance(feature_dim=4).update_state(np.zeros((5, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="f2"):
        kernel_inception_distance(np.zeros((5, 4)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="f1"):
        kernel_inception_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    assert float(metric.count) == 0.0


# --------------------------------------------------------------------------- Metrics inside Keras' loops


def test_metrics_work_compiled_inside_model_evaluate():
    # compile() hands (y_true, y_pred) to update_state: here real = y, fake = the identity model's output.
    rng = np.random.default_rng(30)
    real = rng.normal(size=(1000, 4)).astype(np.float32)
    fake = (rng.normal(size=(1000, 4)) * 1.2 + 0.5).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Identity()])
    model.compile(loss="mse", metrics=[FrechetDistance(feature_dim=4), KernelInceptionDistance()])
    logs = model.evaluate(fake, real, batch_size=250, verbose=0, return_dict=True)
    assert logs["frechet_distance"] == pytest.approx(_reference_fd(real, fake), rel=1e-3)
    per_batch = [kernel_inception_distance(real[i:i + 250], fake[i:i + 250]) for i in range(0, 1000, 250)]
    assert logs["kid"] == pytest.approx(np.mean(per_batch), rel=1e-4)


# ---------------------------------------------------------------------------------------- mode coverage


def _ring(k=8, radius=2.0):
    angles = 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def test_mode_coverage_counts_every_mode_when_all_are_sampled():
    rng = np.random.default_rng(40)
    centres = _ring()
    samples = centres[rng.integers(0, 8, size=800)] + 0.02 * rng.normal(size=(800, 2))
    assert mode_coverage(samples, centres, std=0.02) == (8, pytest.approx(1.0, abs=0.01))
    result = mode_coverage(samples, centres, std=0.02)
    assert type(result[0]) is int and type(result[1]) is float


def test_mode_coverage_misses_unsampled_modes_and_counts_far_samples_as_low_quality():
    rng = np.random.default_rng(41)
    centres = _ring()
    collapsed = centres[rng.integers(0, 5, size=300)] + 0.01 * rng.normal(size=(300, 2))
    far = 10.0 + rng.normal(size=(100, 2))  # nearest to some centre, but far beyond 3 std
    covered, quality = mode_coverage(np.concatenate([collapsed, far]), centres, std=0.02)
    assert covered == 5
    assert quality == pytest.approx(0.75)
    assert mode_coverage(far, centres, std=0.02) == (0, 0.0)


def test_mode_coverage_threshold_is_three_std_inclusive():
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.array([[0.0, 3.0], [10.0, 3.001]])
    assert mode_coverage(samples, centres, std=1.0) == (1, 0.5)


def test_mode_coverage_min_count_requires_enough_high_quality_samples():
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    samples = np.array([[0.0, 0.1], [0.1, 0.0], [5.0, 0.1], [0.0, 5.1], [0.0, 4.9], [0.0, 4.8], [2.5, 2.5]])
    assert mode_coverage(samples, centres, std=0.1) == (3, pytest.approx(6 / 7))
    assert mode_coverage(samples, centres, std=0.1, min_count=2)[0] == 2
    assert mode_coverage(samples, centres, std=0.1, min_count=3)[0] == 1
    assert mode_coverage(samples, centres, std=0.1, min_count=4)[0] == 0


@pytest.mark.parametrize(
    "samples, centres, kwargs, error, name",
    [
        (np.zeros(4), np.zeros((2, 2)), {}, ValueError, "samples"),
        (np.zeros((0, 2)), np.zeros((2, 2)), {}, ValueError, "samples"),
        (np.zeros((4, 2)), np.zeros((2, 2, 1)), {}, ValueError, "centres"),
        (np.zeros((4, 3)), np.zeros((2, 2)), {}, ValueError, "samples"),
        (np.full((4, 2), np.nan), np.zeros((2, 2)), {}, ValueError, "samples"),
        (np.zeros((4, 2)), np.zeros((2, 2)), {"std": 0.0}, ValueError, "std"),
        (np.zeros((4, 2)), np.zeros((2, 2)), {"std": -1.0}, ValueError, "std"),
        (np.zeros((4, 2)), np.zeros((2, 2)), {"std": "1"}, TypeError, "std"),
        (np.zeros((4, 2)), np.zeros((2, 2)), {"min_count": 0}, ValueError, "min_count"),
        (np.zeros((4, 2)), np.zeros((2, 2)), {"min_count": 1.5}, TypeError, "min_count"),
    ],
)
def test_mode_coverage_rejects_bad_arguments(samples, centres, kwargs, error, name):
    with pytest.raises(error, match=name):
        mode_coverage(samples, centres, **{"std": 0.1, **kwargs})


# --------------------------------------------------------------------------------- serialization, docs


@pytest.mark.parametrize(
    "make",
    [lambda: FrechetDistance(feature_dim=4, name="fd"), lambda: KernelInceptionDistance(feature_dim=4)],
    ids=["frechet", "kid"],
)
def test_metrics_round_trip_through_keras_serialization(make):
    metric = make()
    config = keras.saving.serialize_keras_object(metric)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(metric)
    assert restored.get_config() == metric.get_config()
    rng = np.random.default_rng(50)
    real, fake = rng.normal(size=(64, 4)), rng.normal(size=(64, 4)) + 1.0
    metric.update_state(real, fake)
    restored.update_state(real, fake)
    assert float(restored.result()) == pytest.approx(float(metric.result()), rel=1e-6)


def test_metric_config_keeps_a_keras_feature_model_architecture():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    restored = FrechetDistance.from_config(FrechetDistance(feature_model=model).get_config())
    assert restored.feature_dim == 3 and isinstance(restored.feature_model, keras.Model)


def test_feature_model_is_exported():
    assert "feature_model" in kgen.metrics.__all__ and callable(kgen.metrics.feature_model)
    with pytest.raises(AttributeError):
        kgen.metrics.no_such_metric  # noqa: B018


@pytest.mark.parametrize("module", [likelihood_module, frechet_module, kid_module, modes_module])
def test_docstring_examples_run(module):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, globs={"np": np, **vars(module)}) if t.examples]
    assert tests
    for test in tests:
        runner.run(test)
    assert runner.failures == 0


def test_gaussian_bits_per_dim_matches_scipy_log_density():
    from scipy.stats import multivariate_normal

    from kgen.metrics import gaussian_bits_per_dim

    rng = np.random.default_rng(0)
    train = rng.uniform(0.2, 0.8, size=(500, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.2], [0.0, 0.0, 1.0]]) * 0.5
    test = rng.uniform(0.2, 0.8, size=(200, 3)) * 0.5
    cov = np.cov(train, rowvar=False) + 1e-6 * np.eye(3)
    nll = -multivariate_normal(train.mean(0), cov).logpdf(test)
    expected = np.mean((nll + 3 * np.log(17)) / (3 * np.log(2)))
    assert gaussian_bits_per_dim(train, test, 17) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="dimensions"):
        gaussian_bits_per_dim(train, test[:, :2], 17)
