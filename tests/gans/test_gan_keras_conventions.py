"""GANs follow Keras conventions like the other families: a reloaded GAN is compiled with its optimizers' state,
and `evaluate` reports the players' losses (it returned zeros before)."""

import os

import keras
import numpy as np
import pytest

import kgen


def _networks(critic_bias=None):
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(2, activation="tanh")])
    last = keras.layers.Dense(1) if critic_bias is None else keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(critic_bias))
    discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="relu"), last])
    return generator, discriminator


def _compiled(model):
    model.compile(optimizers={"generator": keras.optimizers.Adam(1e-3),
                              "discriminator": keras.optimizers.Adam(2e-3)})
    return model


def _data(n=256):
    return np.random.default_rng(0).uniform(-1, 1, size=(n, 2)).astype("float32")


def _np(variables):
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]


def test_a_reloaded_gan_is_compiled_with_its_optimizers_state_and_trains_on(tmp_path):
    gan = _compiled(kgen.gans.GAN(*_networks(), loss="hinge"))
    x = _data()
    gan.fit(x, batch_size=64, epochs=1, verbose=0)
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert set(reloaded.network_optimizers) == {"generator", "discriminator"}
    for name in ("generator", "discriminator"):
        before, after = gan.network_optimizers[name], reloaded.network_optimizers[name]
        assert float(keras.ops.convert_to_numpy(after.learning_rate)) == pytest.approx(
            float(keras.ops.convert_to_numpy(before.learning_rate)))
        assert int(keras.ops.convert_to_numpy(after.iterations)) == 4  # 256 / 64 steps, not a fresh optimizer
        for a, b in zip(_np(before.variables), _np(after.variables)):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    history = reloaded.fit(x, batch_size=64, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert int(keras.ops.convert_to_numpy(reloaded.network_optimizers["generator"].iterations)) == 8


def _stored_datasets(path):
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
        stored = []
        h5.visititems(lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None)
    return stored


def test_a_saved_gan_stores_each_optimizer_variable_once(tmp_path):
    gan = _compiled(kgen.gans.GAN(*_networks(), loss="hinge"))
    gan.fit(_data(), batch_size=64, epochs=1, verbose=0)
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    stored = _stored_datasets(path)
    # The networks' weights, then every optimizer variable once: the router's own (its iteration count and
    # learning rate) and each sub-optimizer's moments and counts. Keras's MultiOptimizer wrote its sub-optimizers'
    # variables among its own and again under each sub-optimizer (and kgen's dict of them a third time).
    assert len(stored) == len(gan.generator.weights + gan.discriminator.weights) + len(gan.optimizer.variables)
    assert not any(name.startswith("network_optimizers") for name in stored)


DATA = os.path.join(os.path.dirname(__file__), "data")


def test_a_gan_saved_before_the_fix_loads_its_optimizer_state():
    """tests/gans/data/gan_9243896.keras: written by kgen at 9243896 (make_gan_9243896.py), every optimizer
    variable twice; its optimizer state (the .npz) is restored, and it trains on."""
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer 'adam"):  # its empty groups
        reloaded = keras.saving.load_model(os.path.join(DATA, "gan_9243896.keras"), safe_mode=True)
    expected = np.load(os.path.join(DATA, "gan_9243896_optimizer.npz"))
    variables = reloaded.optimizer.variables
    assert len(variables) == len(expected.files) == 22
    for i, variable in enumerate(variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), expected[f"arr_{i}"])
    assert [int(keras.ops.convert_to_numpy(o.iterations)) for o in reloaded.network_optimizers.values()] == [4, 4]
    assert np.abs(expected["arr_4"]).max() > 0  # a moment, non-zero: the comparison can fail
    reloaded.fit(np.zeros((8, 2), "float32"), batch_size=4, epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(reloaded.network_optimizers["generator"].iterations)) == 6


@pytest.mark.parametrize("kind, bias, expected", [
    ("gan", 0.3, {"d_loss": 2.0, "g_loss": -0.3}),          # hinge: relu(1 − c) + relu(1 + c), −c
    ("energy_gan", 0.3, {"d_loss": 0.0, "g_loss": 0.3}),   # U ≡ c: E_p U − E_q U, E_q U
])
def test_evaluate_reports_the_losses_of_a_constant_critic(kind, bias, expected):
    networks = _networks(critic_bias=bias)
    model = (kgen.gans.GAN(*networks, loss="hinge") if kind == "gan"
             else kgen.gans.EnergyGAN(*networks, entropy=None))
    _compiled(model)
    weights = _np(model.weights)
    result = model.evaluate(_data(128), batch_size=64, verbose=0, return_dict=True)
    assert result["d_loss"] == pytest.approx(expected["d_loss"], abs=1e-5)
    assert result["g_loss"] == pytest.approx(expected["g_loss"], abs=1e-5)
    assert result["loss"] == pytest.approx(expected["d_loss"] + expected["g_loss"], abs=1e-5)
    for a, b in zip(weights, _np(model.weights)):  # no step was taken
        np.testing.assert_array_equal(a, b)
