"""`kgen.gans.EnergyGAN` (Su 6316/6331, MEG): the energy loss, the entropy estimators, training, saving."""

import numpy as np
import pytest
from keras import ops

import keras
from kgen.gans import EnergyGAN
from kgen.gans.energy import standardized_correlation
from kgen.gans.networks import mlp


def _np(x):
    return ops.convert_to_numpy(x).astype(np.float64)


def _adam():
    return keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9)


def _model(entropy="jsd", **kwargs):
    return EnergyGAN(mlp(3, 2, hidden=(16,), seed=1), mlp(2, 1, hidden=(16,), activation="leaky_relu", seed=2),
                     entropy=entropy, seed=3, **kwargs)


def _optimizers(model):
    names = ["generator", "discriminator"] + {"jsd": ["statistics_network"], "correlation": ["encoder"]}.get(
        model.entropy, [])
    return {name: _adam() for name in names}


def test_energy_loss_is_the_real_minus_fake_energy_plus_zero_centred_real_gradient_penalty():
    # A linear energy U(x) = w·x + b has ∇U = w everywhere: the penalty is λ‖w‖² (NumPy oracle).
    energy = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model = EnergyGAN(mlp(2, 2, hidden=(8,)), energy, gradient_penalty=0.7, entropy=None)
    w, b = energy.layers[0].kernel, energy.layers[0].bias
    w.assign(np.array([[1.5], [-2.0]], "float32"))
    b.assign(np.array([0.3], "float32"))
    rng = np.random.default_rng(0)
    x, fake = rng.normal(size=(6, 2)).astype("float32"), rng.normal(size=(6, 2)).astype("float32")
    u = lambda t: t @ np.array([1.5, -2.0]) + 0.3  # noqa: E731
    expected = u(x).mean() - u(fake).mean() + 0.7 * (1.5**2 + 2.0**2)
    assert _np(model.energy_loss(ops.convert_to_tensor(x), ops.convert_to_tensor(fake))) == pytest.approx(expected, rel=1e-5)


def test_correlation_is_one_for_affine_maps_and_near_zero_for_independent_codes():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(1000, 16)).astype("float32")
    assert _np(standardized_correlation(z, 3.0 * z + 2.0)) == pytest.approx(1.0, abs=1e-4)  # mean and scale are free
    assert _np(standardized_correlation(z, -z)) == pytest.approx(-1.0, abs=1e-4)
    assert abs(_np(standardized_correlation(z, rng.normal(size=(1000, 16)).astype("float32")))) < 0.02


def test_jsd_loss_rewards_a_statistics_network_that_tells_pairs_from_shuffled_pairs():
    # T(x, z) = 5 − 1000‖x − z[:2]‖² with x = z[:2]: joint pairs score 5, shuffled ones ≈ −4000 → cross-entropy ≈ 0.
    model = _model("jsd", entropy_weight=1.0)
    x_in, z_in = keras.Input((2,)), keras.Input((3,))
    pick = keras.layers.Dense(2, use_bias=False)
    diff = keras.layers.Subtract()([x_in, pick(z_in)])
    head = keras.layers.Dense(1)
    model.statistics_network = keras.Model([x_in, z_in], head(keras.layers.Multiply()([diff, diff])))
    pick.kernel.assign(np.eye(3, 2, dtype="float32"))
    head.kernel.assign(np.full((2, 1), -1000.0, "float32"))
    head.bias.assign(np.array([5.0], "float32"))
    z = ops.convert_to_tensor(np.random.default_rng(1).normal(size=(512, 3)).astype("float32"))
    informative = _np(model.mutual_information_loss(z, z[:, :2]))
    # Negative control: when x carries nothing about z, joint and shuffled scores are alike and
    # softplus(−t) + softplus(t) >= log 4 for every t.
    blind = _np(model.mutual_information_loss(z, ops.zeros((512, 2))))
    assert informative < 0.1 and blind > np.log(4.0) - 0.05


@pytest.mark.parametrize("entropy", ["jsd", "correlation", None])
def test_fit_steps_every_network_with_each_entropy_estimator(entropy):
    model = _model(entropy, d_steps=2)
    optimizers = _optimizers(model)
    before = [_np(v).copy() for v in model.trainable_variables]
    model.compile(optimizers=optimizers)
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    history = model.fit(x, batch_size=16, epochs=1, verbose=0)
    assert int(_np(optimizers["discriminator"].iterations)) == 8
    assert all(int(_np(opt.iterations)) == 4 for name, opt in optimizers.items() if name != "discriminator")
    for old, variable in zip(before, model.trainable_variables):
        if "kernel" in variable.path:  # (the energy's output bias has no gradient: it cancels in E_p U − E_q U)
            assert not np.allclose(old, _np(variable)), variable.path
    assert all(np.isfinite(v[-1]) for v in history.history.values())


def test_energy_gan_survives_save_and_reload(tmp_path):
    model = _model("jsd", gradient_penalty=0.5, entropy_weight=0.3)
    model.compile(optimizers=_optimizers(model))
    model.fit(np.random.default_rng(0).normal(size=(32, 2)).astype("float32"), batch_size=16, verbose=0)
    path = str(tmp_path / "energy.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert (loaded.entropy, loaded.gradient_penalty, loaded.entropy_weight) == ("jsd", 0.5, 0.3)
    z = np.random.default_rng(2).normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(_np(loaded.generate(z)), _np(model.generate(z)), rtol=1e-6)
    pair = [np.ones((2, 2), "float32"), np.ones((2, 3), "float32")]
    np.testing.assert_allclose(_np(loaded.statistics_network(pair)), _np(model.statistics_network(pair)), rtol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="entropy"):
        _model("infogan")
    with pytest.raises(ValueError, match="gradient_penalty"):
        _model(gradient_penalty=-1.0)
    with pytest.raises(ValueError, match="latent"):
        EnergyGAN(keras.Sequential([keras.Input((0,)), keras.layers.Dense(2)]), mlp(2, 1))
    model = _model("jsd")
    with pytest.raises(ValueError, match="statistics_network"):
        model.compile(optimizers={"generator": _adam(), "discriminator": _adam()})
