"""Latent Langevin / MALA (Su 6331, with the prior term and the corrected proposal density)."""

import numpy as np
import pytest
from keras import ops
from scipy import stats

import kgen

from kgen.gans import GAN
from kgen.gans.networks import mlp
from kgen.gans.mcmc import LatentMCMC, latent_energy


def _np(x):
    return ops.convert_to_numpy(x).astype(np.float64)


def identity(z):
    return z


def zero_energy(x):
    return ops.zeros((ops.shape(x)[0],), dtype=x.dtype)


def _start(n=4000, d=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype("float32")


@pytest.mark.jax
def test_mala_with_zero_energy_leaves_the_standard_normal_prior_invariant():
    sampler = LatentMCMC(identity, zero_energy, method="mala", step_size=1.0, steps=20, seed=1)
    z, acceptance = sampler.run(_start())
    assert stats.kstest(_np(z).ravel(), "norm").pvalue > 0.01
    assert 0.5 < acceptance < 1.0  # reported, and some proposals are rejected at this step size
    # Negative control: unadjusted Langevin at the same step has stationary variance 1/(1 − ε/4) = 4/3.
    ula = LatentMCMC(identity, zero_energy, method="langevin", step_size=1.0, steps=20, seed=1)
    z_ula, rate = ula.run(_start())
    assert rate == 1.0 and stats.kstest(_np(z_ula).ravel(), "norm").pvalue < 1e-6


@pytest.mark.jax
def test_mala_samples_the_prior_times_the_energy():
    # U(x) = 2‖x‖² with x = z: p(z) ∝ exp(−½‖z‖² − 2‖z‖²) = N(0, 0.2·I). MALA from N(0, I) must reach it.
    quadratic = lambda x: 2.0 * ops.sum(x * x, axis=-1)  # noqa: E731
    sampler = LatentMCMC(identity, quadratic, step_size=0.1, steps=100, seed=2)
    z, acceptance = sampler.run(_start())
    assert stats.kstest(_np(z).ravel(), "norm", args=(0.0, np.sqrt(0.2))).pvalue > 0.01
    assert acceptance > 0.8


def test_compiled_chain_equals_the_eager_chain():
    # The gradient is taken inside the compiled loop (jax.jit + fori_loop, tf.function + while_loop).
    quadratic = lambda x: ops.sum(x * x, axis=-1) + ops.sum(ops.sin(3.0 * x), axis=-1)  # noqa: E731
    runs = []
    for jit_compile in ("auto", False):
        sampler = LatentMCMC(identity, quadratic, step_size=0.2, steps=10, seed=3, jit_compile=jit_compile)
        runs.append(sampler.run(_start(64)))
    np.testing.assert_allclose(_np(runs[0][0]), _np(runs[1][0]), rtol=1e-4, atol=1e-5)
    assert runs[0][1] == pytest.approx(runs[1][1])


def test_acceptance_rate_falls_as_the_step_grows():
    sin_energy = lambda x: ops.sum(ops.sin(3.0 * x), axis=-1)  # noqa: E731
    rates = [LatentMCMC(identity, sin_energy, step_size=eps, steps=10, seed=4).run(_start(256))[1]
             for eps in (0.01, 1.0, 6.0)]
    assert rates[0] > 0.95 and rates[0] > rates[1] > rates[2] and rates[2] < 0.5


def test_latent_energy_includes_the_prior():
    z = ops.convert_to_tensor(np.array([[1.0, 2.0], [0.0, -3.0]], "float32"))
    energy = latent_energy(identity, lambda x: ops.sum(x, axis=-1))
    np.testing.assert_allclose(_np(energy(z)), [3.0 + 2.5, -3.0 + 4.5], rtol=1e-6)


def test_sampler_runs_on_a_gan_energy_and_keeps_shapes():
    model = GAN(mlp(3, 2, hidden=(8,), seed=1), mlp(2, 1, hidden=(8,), seed=2))
    sampler = LatentMCMC(model.generator, model.energy, step_size=0.01, steps=5)
    x, z, acceptance = sampler.sample(16)
    assert tuple(x.shape) == (16, 2) and tuple(z.shape) == (16, 3)
    assert np.all(np.isfinite(_np(x))) and 0.0 <= acceptance <= 1.0
    # The sampler follows the model's current weights (state threaded on JAX).
    model.generator.layers[-1].bias.assign(np.array([100.0, 100.0], "float32"))
    x2, _, _ = sampler.sample(4)
    assert np.all(_np(x2) > 50.0)


def test_the_state_of_closures_is_found_without_state_argument():
    """A generator and energy written as closures over Keras layers: their variables are found (kgen.backend.state_of),
    so the compiled chain follows weight changes on JAX too; the old `state=` still works, with a warning."""
    model = GAN(mlp(3, 2, hidden=(8,), seed=1), mlp(2, 1, hidden=(8,), seed=2))
    generator = lambda z: 2.0 * model.generator(z)  # noqa: E731
    energy = lambda x: -ops.squeeze(model.discriminator(x), -1)  # noqa: E731
    assert kgen.backend.state_of(generator) == [model]  # the closure reads `model`
    sampler = LatentMCMC(generator, energy, step_size=0.01, steps=3)
    with pytest.raises(ValueError, match="latent_shape"):
        sampler.sample(4)
    sampler.sample(4, latent_shape=(3,))
    model.generator.layers[-1].bias.assign(np.array([100.0, 100.0], "float32"))
    x, _, _ = sampler.sample(4, latent_shape=(3,))
    assert np.all(_np(x) > 100.0)
    # negative control: a plain function reading the model through a global is not found
    assert kgen.backend.state_of(_global_generator) == []
    with pytest.warns(DeprecationWarning, match="state="):
        old = LatentMCMC(generator, energy, steps=2, state=[model])
    assert tuple(old.sample(2, latent_shape=(3,))[0].shape) == (2, 2)


_GLOBAL = {}


def _global_generator(z):
    return _GLOBAL["g"](z)


def test_a_seed_gives_the_same_chain_and_leaves_the_chains_generator_alone():
    model = GAN(mlp(3, 2, hidden=(8,), seed=1), mlp(2, 1, hidden=(8,), seed=2))
    sampler = LatentMCMC(model.generator, model.energy, step_size=0.05, steps=4)
    before = _np(sampler.seed_generator.state.value)
    x1, z1, _ = sampler.sample(8, seed=5)
    x2, z2, _ = sampler.sample(8, seed=5)
    np.testing.assert_array_equal(_np(z1), _np(z2))
    np.testing.assert_array_equal(_np(x1), _np(x2))
    np.testing.assert_array_equal(_np(sampler.seed_generator.state.value), before)
    assert not np.allclose(_np(sampler.sample(8, seed=6)[1]), _np(z1))  # another seed, another chain
    # unseeded calls advance the generator and differ (the negative control of the seeded case)
    a, b = sampler.sample(8)[1], sampler.sample(8)[1]
    assert not np.allclose(_np(a), _np(b))
    assert not np.array_equal(_np(sampler.seed_generator.state.value), before)
    z0 = np.zeros((4, 3), "float32")
    np.testing.assert_array_equal(_np(sampler.run(z0, seed=2)[0]), _np(sampler.run(z0, seed=2)[0]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="method"):
        LatentMCMC(identity, zero_energy, method="hmc")
    with pytest.raises(ValueError, match="step_size"):
        LatentMCMC(identity, zero_energy, step_size=0.0)
    with pytest.raises(ValueError, match="steps"):
        LatentMCMC(identity, zero_energy, steps=0)
    with pytest.raises(TypeError, match="callables"):
        LatentMCMC(identity, "energy")
