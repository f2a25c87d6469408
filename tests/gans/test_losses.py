"""Adversarial losses: formulas against NumPy, Su's single loss against the separate losses, gradient penalties."""

import numpy as np
import pytest
from keras import ops
from scipy import stats

import keras
from kgen import backend as kb
from kgen.gans import GAN, LOSS_NAMES
from kgen.gans.fdivergences import FDIVERGENCES
from kgen.gans.losses import (LOSSES, AdversarialLoss, FGANLoss, GANQPLoss, HingeLoss, WGANDivLoss, WGANGPLoss,
                               get_loss, interpolates, per_example_norm_pow)
from kgen.gans.networks import mlp


def _np(x):
    return ops.convert_to_numpy(x).astype(np.float64)


def _softplus(v):
    return np.logaddexp(0.0, v)


RNG = np.random.default_rng(0)
V_REAL, V_FAKE = RNG.normal(size=8).astype("float32"), RNG.normal(size=8).astype("float32")


def _by_scores(loss):
    """Evaluate a loss on fixed scores: a critic that looks its output up (real = 1, fake = 0 in column 0)."""
    real, fake = np.ones((8, 1), "float32"), np.zeros((8, 1), "float32")
    critic = lambda x: ops.where(x[:, 0] > 0.5, V_REAL, V_FAKE)  # noqa: E731
    return _np(loss.discriminator_loss(critic, real, fake)), _np(loss.generator_loss(V_FAKE, V_REAL))


@pytest.mark.parametrize("name,d_expected,g_expected", [
    ("gan", _softplus(-V_REAL).mean() + _softplus(V_FAKE).mean(), _softplus(-V_FAKE).mean()),  # the original GAN, −log D
    ("hinge", np.maximum(0, 1 - V_REAL).mean() + np.maximum(0, 1 + V_FAKE).mean(), -V_FAKE.mean()),
    ("kl", -V_REAL.mean() + np.exp(V_FAKE - 1).mean(), -V_FAKE.mean()),
    ("reverse_kl", np.exp(V_REAL).mean() + (-1 - V_FAKE).mean(), np.exp(V_FAKE).mean()),
    ("hellinger", -(1 - np.exp(V_REAL)).mean() + (np.exp(-V_FAKE) - 1).mean(), -(1 - np.exp(V_FAKE)).mean()),
])
def test_losses_match_their_formulas(name, d_expected, g_expected):
    d_loss, g_loss = _by_scores(get_loss(name))
    assert d_loss == pytest.approx(d_expected, rel=1e-5)
    assert g_loss == pytest.approx(g_expected, rel=1e-5)


def test_saturating_generator_loss_is_minus_the_conjugate_term():
    _, g_loss = _by_scores(get_loss("gan", generator_form="saturating"))
    assert g_loss == pytest.approx(-_softplus(V_FAKE).mean(), rel=1e-5)  # = E log(1 − D(G(z)))


@pytest.mark.parametrize("name", sorted(FDIVERGENCES))
def test_every_fgan_row_gives_finite_losses_on_extreme_scores(name):
    loss = get_loss(name)
    v = np.linspace(-30, 30, 8).astype("float32")
    critic = lambda x: ops.convert_to_tensor(v)  # noqa: E731
    x = np.zeros((8, 1), "float32")
    values = [_np(loss.discriminator_loss(critic, x, x)), _np(loss.generator_loss(v))]
    assert all(np.isfinite(values)), values


def test_gan_qp_loss_matches_formula():
    real = RNG.normal(size=(8, 3)).astype("float32")
    fake = RNG.normal(size=(8, 3)).astype("float32")
    critic = lambda x: ops.sum(x, axis=-1)  # noqa: E731
    delta = real.sum(-1) - fake.sum(-1)
    distance = np.abs(real - fake).mean(-1)
    expected = np.mean(-delta + delta**2 / (2 * 10.0 * distance))
    assert _np(get_loss("gan_qp").discriminator_loss(critic, real, fake)) == pytest.approx(expected, rel=1e-4)


def _small_gan(loss, **kwargs):
    g = mlp(3, 2, hidden=(8,), activation="tanh", seed=1)
    d = mlp(2, 1, hidden=(8,), activation="tanh", seed=2)
    return GAN(g, d, loss=loss, seed=3, **kwargs)


@pytest.mark.parametrize("loss", ["hinge", "gan", "kl", "wgan_gp", "wgan_div", "gan_qp"])
def test_single_loss_gradients_equal_the_separate_losses_gradients(loss):
    model = _small_gan(loss, r1_weight=0.5)
    x = ops.convert_to_tensor(RNG.normal(size=(6, 2)).astype("float32"))
    z = ops.convert_to_tensor(RNG.normal(size=(6, 3)).astype("float32"))
    d_vars, g_vars = model.discriminator.trainable_variables, model.generator.trainable_variables
    seed_state = _np(model.seed_generator.state).astype("uint32")

    def reseeded(fn):  # WGAN-GP draws ε: every evaluation must see the same ε
        def wrapped():
            model.seed_generator.state.assign(seed_state)
            return fn()
        return wrapped

    single = reseeded(lambda: model.single_loss_value(x, None, z))
    d_only = reseeded(lambda: model.discriminator_loss(x, None, ops.stop_gradient(model.generator(z))))
    g_only = reseeded(lambda: model.generator_loss(x, None, model.generator(z)))
    value, grads = kb.gradients(single, d_vars + g_vars)
    d_value, d_grads = kb.gradients(d_only, d_vars)
    _, g_grads = kb.gradients(g_only, g_vars)
    assert _np(value) == pytest.approx(_np(d_value), rel=1e-5, abs=1e-6)  # the bracket is identically 0
    for mine, theirs in zip(grads, list(d_grads) + list(g_grads)):
        np.testing.assert_allclose(_np(mine), _np(theirs), rtol=1e-4, atol=1e-6)
    # Negative control: without the stop-gradient the discriminator would also follow the generator's loss.
    _, wrong = kb.gradients(lambda: model.discriminator_loss(x, None, ops.stop_gradient(model.generator(z)))
                            + model.generator_loss(x, None, model.generator(z)), d_vars)
    assert any(not np.allclose(_np(a), _np(b), atol=1e-6) for a, b in zip(wrong, d_grads))


def test_gradient_penalty_uses_per_example_norms():
    # D(x) = ½‖x‖²: ∇D = x. Rows with norms 5 and 1 → mean((5−1)², (1−1)²) = 8 (a batch-global norm would not).
    x = ops.convert_to_tensor(np.array([[3.0, 4.0], [0.6, 0.8]], "float32"))
    critic = lambda t: 0.5 * ops.sum(t * t, axis=-1)  # noqa: E731
    np.testing.assert_allclose(_np(per_example_norm_pow(kb.input_gradient(critic, x))), [5.0, 1.0], rtol=1e-5)
    loss = WGANGPLoss(weight=10.0).discriminator_loss(critic, x, x, keras.random.SeedGenerator(0))
    assert _np(loss) == pytest.approx(10.0 * 8.0, rel=1e-5)


def test_interpolation_coefficient_is_uniform_and_shared_within_each_example():
    n = 10_000
    real, fake = ops.ones((n, 3, 2)), ops.zeros((n, 3, 2))
    eps = _np(interpolates(real, fake, keras.random.SeedGenerator(5)))  # x̂ = ε exactly
    np.testing.assert_allclose(eps, eps[:, :1, :1] * np.ones((1, 3, 2)))  # one ε per example, not per pixel
    assert stats.kstest(eps[:, 0, 0], "uniform").pvalue > 0.01
    assert stats.kstest(eps[:, 0, 0], "norm").pvalue < 1e-6  # the test tells U[0,1] from N(0,1) (keras-io #415)


@pytest.mark.parametrize("penalty", ["wgan_gp", "wgan_div", "r1"])
def test_gradient_penalty_parameter_gradient_matches_finite_differences(penalty):
    d = mlp(2, 1, hidden=(6,), activation="tanh", seed=4)
    x = ops.convert_to_tensor(RNG.normal(size=(5, 2)).astype("float32"))
    critic = lambda t: ops.squeeze(d(t), -1)  # noqa: E731
    power = {"wgan_gp": 1.0, "wgan_div": 6.0, "r1": 2.0}[penalty]

    def term():
        norms = per_example_norm_pow(kb.input_gradient(critic, x), power)
        return ops.mean(ops.square(norms - 1.0)) if penalty == "wgan_gp" else ops.mean(norms)

    variables = d.trainable_variables
    _, grads = kb.gradients(term, variables)
    # Along the (unit) gradient direction the float32 difference quotient has the largest signal; a wrong
    # gradient still disagrees with the true directional derivative along it.
    scale = np.sqrt(sum(float(np.sum(_np(g) ** 2)) for g in grads))
    directions = [(_np(g) / scale).astype("float32") for g in grads]
    analytic = sum(float(np.sum(_np(g) * u)) for g, u in zip(grads, directions))
    originals = [_np(v).astype("float32") for v in variables]
    values = []
    for sign in (1.0, -1.0):
        for v, w, u in zip(variables, originals, directions):
            v.assign(w + sign * 3e-3 * u)
        values.append(float(_np(term())))
    for v, w in zip(variables, originals):
        v.assign(w)
    numeric = (values[0] - values[1]) / 6e-3
    assert analytic == pytest.approx(numeric, rel=2e-3, abs=1e-4)


def test_unknown_loss_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="hinge") as info:
        get_loss("lsgan")
    assert "wgan_gp" in str(info.value) and "'kl'" in str(info.value)
    assert "hinge" in LOSS_NAMES and "gan" in LOSS_NAMES
    with pytest.raises(ValueError, match="generator_form"):
        get_loss("gan", generator_form="minimax")


def test_every_loss_is_an_adversarial_loss_found_by_name():
    assert LOSSES == {"hinge": HingeLoss, "wgan_gp": WGANGPLoss, "wgan_div": WGANDivLoss, "gan_qp": GANQPLoss}
    assert LOSS_NAMES[:4] == ("hinge", "wgan_gp", "wgan_div", "gan_qp")
    for name in LOSS_NAMES:
        loss = get_loss(name)
        assert isinstance(loss, AdversarialLoss) and loss.name == name
        assert isinstance(loss, LOSSES.get(name, FGANLoss))
    # The default generator loss, written once in the base: −mean D(x_f) (hinge and both Wasserstein losses).
    for name in ("hinge", "wgan_gp", "wgan_div"):
        assert _np(get_loss(name).generator_loss(V_FAKE)) == pytest.approx(-V_FAKE.mean(), rel=1e-6)
    assert get_loss("wgan_gp", weight=5.0).weight == 5.0 and get_loss("gan_qp", weight=3.0).weight == 3.0
    assert get_loss("wgan_gp").weight == 10.0  # weight=None keeps the paper's value
    assert get_loss("kl", generator_form="saturating").generator_form == "saturating"
    with pytest.raises(NotImplementedError):
        AdversarialLoss().discriminator_loss(lambda x: x, V_REAL, V_FAKE)

