"""The f-GAN table (Su 6016, Nowozin et al. 2016): conjugates, activation ranges, composites, the bound."""

import math

import numpy as np
import pytest
from keras import ops
from scipy import stats

import kgen
from kgen.gans.fdivergences import FDIVERGENCES

ROWS = sorted(FDIVERGENCES)
U0 = np.array([0.2, 0.7, 1.5, 4.0], "float32")


def _np(x):
    return ops.convert_to_numpy(x).astype(np.float64)


@pytest.mark.parametrize("name", ROWS)
def test_conjugate_is_tight_at_tangent_points_and_a_bound_elsewhere(name):
    div = kgen.gans.fdivergence(name)
    t = _np(div.derivative(U0))
    # Fenchel–Young: f*(t) = t·u0 − f(u0) at t = f'(u0) ...
    np.testing.assert_allclose(_np(div.conjugate(t)), t * U0 - _np(div.f(U0)), rtol=1e-5, atol=1e-5)
    # ... and f*(t) >= t·u − f(u) for every other u (it is the supremum, not any function through those points).
    u = np.geomspace(0.01, 100.0, 400).astype("float32")
    lower = t[:, None] * u[None, :] - _np(div.f(u))[None, :]
    assert np.all(_np(div.conjugate(t))[:, None] >= lower.max(axis=1, keepdims=True) - 1e-4 * (1 + np.abs(lower).max()))


@pytest.mark.parametrize("name", ROWS)
def test_f_is_zero_at_one_and_convex(name):
    div = kgen.gans.fdivergence(name)
    # The paper's GAN row is 2·JS − log 4, not a divergence: f(1) = −log 4 (its minimum over P = Q).
    expected = -math.log(4.0) if div.name == "u*log(u)-(u+1)*log(u+1)" else 0.0
    assert abs(float(_np(div.f(1.0))) - expected) < 1e-6
    u = np.linspace(0.05, 5.0, 200).astype("float32")
    assert np.all(np.diff(_np(div.f(u)), 2) > -1e-5)  # second differences of a convex function are >= 0


@pytest.mark.parametrize("name", ROWS)
def test_activation_maps_the_real_line_into_the_conjugate_domain(name):
    div = kgen.gans.fdivergence(name)
    low, high = div.t_range
    inner = _np(div.activation(np.linspace(-5, 5, 101).astype("float32")))
    assert np.all(inner > low) and np.all(inner < high)
    tails = _np(div.activation(np.linspace(-20, 20, 101).astype("float32")))  # float32 may reach the boundary
    slack = 1e-6 * (1 + max(abs(b) for b in (low, high) if np.isfinite(b)) if np.isfinite([low, high]).any() else 1)
    assert np.all(tails >= low - slack) and np.all(tails <= high + slack)


@pytest.mark.parametrize("name", ROWS)
def test_composite_equals_conjugate_of_activation(name):
    div = kgen.gans.fdivergence(name)
    v = np.linspace(-5, 5, 41).astype("float32")
    np.testing.assert_allclose(_np(div.composite(v)), _np(div.conjugate(div.activation(v))), rtol=2e-5, atol=2e-5)


def _closed_forms(m1, s1, m2, s2):
    """D_f(N(m1, s1²) ‖ N(m2, s2²)) where a closed form exists (float64)."""
    d = m1 - m2
    kl = math.log(s2 / s1) + (s1**2 + d**2) / (2 * s2**2) - 0.5
    rkl = math.log(s1 / s2) + (s2**2 + d**2) / (2 * s1**2) - 0.5
    bc = math.sqrt(2 * s1 * s2 / (s1**2 + s2**2)) * math.exp(-d**2 / (4 * (s1**2 + s2**2)))

    def chi2(a_mean, a_std, b_mean, b_std):  # ∫ a²/b − 1
        denominator = 2 * b_std**2 - a_std**2
        return b_std**2 / (a_std * math.sqrt(denominator)) * math.exp((a_mean - b_mean) ** 2 / denominator) - 1

    # TV: the densities cross where a quadratic vanishes; P − Q keeps its sign between the crossings.
    a = 1 / (2 * s2**2) - 1 / (2 * s1**2)
    b = m1 / s1**2 - m2 / s2**2
    c = m2**2 / (2 * s2**2) - m1**2 / (2 * s1**2) + math.log(s2 / s1)
    roots = np.sort(np.roots([a, b, c]).real)
    edges = np.concatenate([[-np.inf], roots, [np.inf]])
    p, q = stats.norm(m1, s1), stats.norm(m2, s2)
    tv = 0.5 * sum(abs((p.cdf(hi) - p.cdf(lo)) - (q.cdf(hi) - q.cdf(lo))) for lo, hi in zip(edges[:-1], edges[1:]))
    return {"u*log(u)": kl, "-log(u)": rkl, "(sqrt(u)-1)^2": 2 * (1 - bc), "(u-1)^2": chi2(m1, s1, m2, s2),
            "(1-u)^2/u": chi2(m2, s2, m1, s1), "(u-1)*log(u)": kl + rkl, "|u-1|/2": tv}


def _bound_with_optimal_critic(div, m1=0.0, s1=1.0, m2=1.0, s2=1.2):
    x = np.linspace(-12, 12, 24001)
    p, q = stats.norm(m1, s1).pdf(x), stats.norm(m2, s2).pdf(x)
    t_star = div.derivative((p / q).astype("float32"))  # T*(x) = f'(p/q), the analytic optimum
    integrand = p * _np(t_star) - q * _np(div.conjugate(t_star))
    return np.trapezoid(integrand, x)


@pytest.mark.parametrize("name", sorted(_closed_forms(0.0, 1.0, 1.0, 1.2)))
def test_bound_at_the_optimal_critic_is_the_closed_form_gaussian_divergence(name):
    target = _closed_forms(0.0, 1.0, 1.0, 1.2)[name]
    assert _bound_with_optimal_critic(kgen.gans.fdivergence(name)) == pytest.approx(target, rel=1e-4)


def test_js_and_gan_rows_match_their_definitions():
    # JS (Su, ½-scaled) has no Gaussian closed form: a float64 quadrature of ½∫p log(2p/(p+q)) + q log(2q/(p+q)).
    x = np.linspace(-12, 12, 24001)
    p, q = stats.norm(0, 1).pdf(x), stats.norm(1, 1.2).pdf(x)
    js = 0.5 * np.trapezoid(p * np.log(2 * p / (p + q)) + q * np.log(2 * q / (p + q)), x)
    assert _bound_with_optimal_critic(kgen.gans.fdivergence("js")) == pytest.approx(js, rel=1e-4)
    # The paper's GAN row: D_GAN = ∫p log(p/(p+q)) + q log(q/(p+q)) = 2·JS(Su) − log 4.
    assert _bound_with_optimal_critic(kgen.gans.fdivergence("gan")) == pytest.approx(2 * js - math.log(4), rel=1e-4)


def test_a_suboptimal_critic_gives_a_strictly_smaller_bound():
    # Negative control for the identity above: perturbing T* lowers the bound (it is a maximum).
    div = kgen.gans.fdivergence("kl")
    x = np.linspace(-12, 12, 24001)
    p, q = stats.norm(0, 1).pdf(x), stats.norm(1, 1.2).pdf(x)
    t = _np(div.derivative((p / q).astype("float32"))) + 0.2
    bound = np.trapezoid(p * t - q * _np(div.conjugate(t.astype("float32"))), x)
    assert bound < _closed_forms(0.0, 1.0, 1.0, 1.2)["u*log(u)"] - 1e-3


def test_names_follow_f_and_both_chi_square_conventions_are_aliases():
    assert kgen.gans.fdivergence("pearson").name == "(u-1)^2"  # the paper's (and statistics') Pearson χ²
    assert kgen.gans.fdivergence("neyman_su").name == "(u-1)^2"  # Su calls it Neyman
    assert kgen.gans.fdivergence("neyman").name == "(1-u)^2/u"
    assert kgen.gans.fdivergence("pearson_su").name == "(1-u)^2/u"
    for alias, canonical in [("kl", "u*log(u)"), ("reverse_kl", "-log(u)"), ("hellinger", "(sqrt(u)-1)^2"),
                             ("tv", "|u-1|/2"), ("gan", "u*log(u)-(u+1)*log(u+1)")]:
        assert kgen.gans.fdivergence(alias) is kgen.gans.fdivergence(canonical)


def test_unknown_divergence_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="hellinger") as info:
        kgen.gans.fdivergence("wasserstein")
    assert "'kl'" in str(info.value) and "name" in str(info.value)


def test_estimator_rejects_mismatched_samples_before_training():
    p = np.zeros((10, 2))
    with pytest.raises(ValueError, match="dimension"):
        kgen.gans.estimate_fdivergence(p, np.zeros((10, 3)), "kl")
    with pytest.raises(ValueError, match="name"):
        kgen.gans.estimate_fdivergence(p, p, "chi")
    with pytest.raises(ValueError, match="p_samples"):
        kgen.gans.estimate_fdivergence(np.zeros(10), p, "kl")
