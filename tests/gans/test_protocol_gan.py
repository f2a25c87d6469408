"""The protocol of `kgen.base` for `GAN` and `EnergyGAN` on the current backend: `sample(n, *, seed, labels,
temperature)`, `value_range`, the sign of `energy` against `critic`, the dtype policy across a reload; and the
old names of the GAN package, which warn and still work."""

import ast
import pathlib
import warnings

import keras
import numpy as np
import pytest
from keras import ops

import kgen
from kgen.base import EnergyModel, GenerativeModel
from kgen.gans import EnergyGAN, GAN
from kgen.gans.networks import mlp

PACKAGE = pathlib.Path(kgen.__file__).parent / "gans"


def _np(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")), dtype=np.float64)


def _tanh_generator(latent=3, data=2):
    z = keras.Input((latent,))
    h = keras.layers.Dense(16, activation="relu")(z)
    return keras.Model(z, keras.layers.Dense(data, activation="tanh")(h), name="generator")


def _model(kind, **kwargs):
    discriminator = mlp(2, 1, hidden=(16,), seed=2, name="discriminator")
    if kind == "gan":
        return GAN(_tanh_generator(), discriminator, seed=3, **kwargs)
    return EnergyGAN(_tanh_generator(), discriminator, entropy="jsd", seed=3, **kwargs)


KINDS = ["gan", "energy_gan"]


@pytest.mark.parametrize("kind", KINDS)
def test_int_seed_gives_the_same_samples_and_leaves_the_model_seed_alone(kind):
    model = _model(kind)
    state = _np(model.seed_generator.state)
    first, again = _np(model.sample(4, seed=7)), _np(model.sample(4, seed=7))
    assert first.shape == (4, 2)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, _np(model.sample(4, seed=8)))
    np.testing.assert_array_equal(_np(model.seed_generator.state), state)  # no draw from the model's generator
    a, b = _np(model.sample(4)), _np(model.sample(4))  # seed=None: the model's generator, fresh every call
    assert not np.allclose(a, b)
    assert not np.array_equal(_np(model.seed_generator.state), state)


@pytest.mark.parametrize("kind", KINDS)
def test_samples_lie_in_value_range_and_the_protocol_types_match(kind):
    model = _model(kind)
    assert model.value_range == (-1.0, 1.0)
    assert isinstance(model, GenerativeModel) and isinstance(model, EnergyModel)
    low, high = model.value_range
    x = _np(model.sample(256, seed=0, temperature=3.0))
    assert x.shape == (256,) + model.data_shape and low <= x.min() and x.max() <= high
    # Negative control: the same draws through a linear output leave (−1, 1), so the check can fail.
    linear = GAN(mlp(3, 2, hidden=(16,), seed=1), mlp(2, 1, hidden=(16,)), value_range=None)
    for w in linear.generator.trainable_weights:
        w.assign(ops.convert_to_numpy(w) * 10.0)
    assert linear.value_range is None and np.abs(_np(linear.sample(256, seed=0, temperature=3.0))).max() > 1.0


def test_temperature_scales_the_latents_and_generate_is_g_of_given_latents():
    model = _model("gan")
    z = keras.random.normal((4, 3), seed=keras.random.SeedGenerator(5))
    np.testing.assert_allclose(_np(model.sample(4, seed=5, temperature=0.5)), _np(model.generate(0.5 * z)),
                               rtol=1e-5, atol=1e-6)
    zero = _np(model.sample(4, seed=5, temperature=0.0))
    np.testing.assert_allclose(zero, np.repeat(_np(model.generator(ops.zeros((1, 3)))), 4, axis=0), atol=1e-6)
    np.testing.assert_allclose(_np(model.generate(z)), _np(model.generator(z)), rtol=1e-6)
    state = _np(model.seed_generator.state)
    model.generate(4)  # generate(n) is sample(n): the model's generator
    assert not np.array_equal(_np(model.seed_generator.state), state)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(4, temperature=-1.0)
    with pytest.raises(ValueError, match="n"):
        model.sample(0)


def test_conditional_gan_needs_one_label_per_sample():
    z_in, y_in = keras.Input((3,)), keras.Input((4,))
    h = keras.layers.Concatenate()([z_in, y_in])
    generator = keras.Model([z_in, y_in], keras.layers.Dense(2, activation="tanh")(h))
    x_in, y2_in = keras.Input((2,)), keras.Input((4,))
    discriminator = keras.Model([x_in, y2_in], keras.layers.Dense(1)(keras.layers.Concatenate()([x_in, y2_in])))
    model = GAN(generator, discriminator)
    labels = np.eye(4, dtype="float32")
    np.testing.assert_array_equal(_np(model.sample(4, seed=1, labels=labels)),
                                  _np(model.sample(4, seed=1, labels=labels)))
    with pytest.raises(ValueError, match="labels"):
        model.sample(4, seed=1)
    with pytest.raises(ValueError, match="labels"):
        model.sample(3, seed=1, labels=labels)
    with pytest.raises(ValueError, match="unconditional"):
        _model("gan").sample(4, labels=labels)


def test_energy_is_minus_the_critic_for_gan_and_the_critic_for_energy_gan():
    x = np.random.default_rng(0).normal(size=(6, 2)).astype("float32")
    gan, energy_gan = _model("gan"), _model("energy_gan")
    d = _np(gan.critic(x, training=False))
    assert d.shape == (6,) and np.abs(d).max() > 0
    np.testing.assert_allclose(_np(gan.energy(x)), -d, rtol=1e-6)
    np.testing.assert_allclose(_np(energy_gan.energy(x)), _np(energy_gan.critic(x, training=False)), rtol=1e-6)
    assert (gan.energy_sign, energy_gan.energy_sign) == (-1.0, 1.0)


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), None, (0.0, 1.0)])
def test_value_range_is_checked_and_kept_by_get_config(value_range):
    model = _model("gan", value_range=value_range)
    assert model.value_range == value_range
    restored = GAN.from_config(model.get_config())
    assert restored.value_range == value_range
    with pytest.raises(ValueError, match="value_range"):
        _model("gan", value_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="value_range"):
        _model("energy_gan", value_range="signed")


@pytest.mark.parametrize("kind", KINDS)
def test_dtype_policy_and_value_range_survive_reload(kind, tmp_path, mixed_bfloat16):
    model = _model(kind, value_range=None)
    assert model.dtype_policy.name == "mixed_bfloat16"
    path = str(tmp_path / "model.keras")
    model.save(path)
    keras.config.set_dtype_policy("float32")
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.dtype_policy.name == "mixed_bfloat16"  # was float32: get_config dropped super()'s "dtype"
    assert loaded.value_range is None
    np.testing.assert_allclose(_np(loaded.sample(4, seed=2)), _np(model.sample(4, seed=2)), atol=1e-2)


def test_gans_modules_import_at_module_level_only():
    # The old cycle gan.py → losses.py → fdivergences.py ⇢ gan.mlp was closed by an import inside a function.
    # Only the module __getattr__ of a deprecated path may import lazily (fdivergences → estimation).
    deferred = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "__getattr__":
                deferred += [f"{path.name}:{n.lineno}" for n in ast.walk(node)
                             if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert deferred == []


def _warns(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    assert any(issubclass(w.category, DeprecationWarning) for w in caught), "no DeprecationWarning"
    return result


def test_old_gan_names_warn_and_still_work():
    from kgen.gans import base, estimation, losses, mcmc
    from kgen.gans import gan as gan_module
    from kgen.gans import fdivergences as fdiv_module

    assert _warns(lambda: gan_module.mlp) is mlp
    assert _warns(lambda: gan_module.AdversarialGenerator) is base.AdversarialGenerator
    assert _warns(lambda: fdiv_module.estimate_fdivergence) is estimation.estimate_fdivergence
    assert _warns(lambda: fdiv_module.VariationalCritic) is estimation.VariationalCritic
    assert kgen.gans.estimate_fdivergence is estimation.estimate_fdivergence
    g = ops.convert_to_tensor([[3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(_np(_warns(lambda: losses.per_example_norm(g, 2.0))), [25.0, 1.0])
    identity = lambda z: z  # noqa: E731
    chain = _warns(lambda: mcmc.LatentSampler(identity, lambda x: ops.zeros(ops.shape(x)[:1]), steps=2))
    assert isinstance(chain, mcmc.LatentMCMC)
    with pytest.raises(AttributeError):
        gan_module.no_such_name  # noqa: B018


def test_energy_gan_generator_loss_old_form_warns_and_matches_the_new_form():
    model = EnergyGAN(_tanh_generator(), mlp(2, 1, hidden=(16,), seed=2), entropy="correlation", seed=3)
    z = keras.random.normal((8, 3), seed=keras.random.SeedGenerator(1))
    new = _np(model.generator_loss(None, None, model.generator(z), z))
    np.testing.assert_allclose(_np(_warns(lambda: model.generator_loss(z))), new, rtol=1e-5)
    with pytest.raises(ValueError, match="z"):
        model.generator_loss(None, None, model.generator(z))  # the entropy term needs the latents
