"""`kgen.gans.GAN` under plain `fit` on every backend: losses, schedules, conditioning, saving, bad input.

Bad data (NaN, integers, wrong shape) and stopping on a NaN loss: tests/test_fit_data.py.
"""

import numpy as np
import pytest
from keras import ops

import keras
from kgen.gans import GAN
from kgen.gans.networks import mlp


def _np(x):
    return ops.convert_to_numpy(x)


def _adam():
    return keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9)


def _gan(latent=3, **kwargs):
    return GAN(mlp(latent, 2, hidden=(16,), seed=1, name="generator"),
               mlp(2, 1, hidden=(16,), seed=2, name="discriminator"), seed=3, **kwargs)


def _data(n=64, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 2)).astype("float32")


def _fit(model, x, batch_size=16, **fit_kwargs):
    d_opt, g_opt = _adam(), _adam()
    model.compile(optimizers={"discriminator": d_opt, "generator": g_opt})
    history = model.fit(x, batch_size=batch_size, epochs=1, verbose=0, shuffle=False, **fit_kwargs)
    return d_opt, g_opt, history


@pytest.mark.parametrize("loss,options", [
    ("hinge", {}),
    ("gan", {"single_loss": True}),
    ("kl", {"generator_form": "saturating", "r1_weight": 1.0}),
    ("wgan_gp", {"d_steps": 2}),
    ("wgan_div", {}),
    ("gan_qp", {}),
])
def test_fit_steps_both_networks_with_each_loss(loss, options):
    model = _gan(loss=loss, **options)
    g_before = [_np(v).copy() for v in model.generator.trainable_variables]
    d_before = [_np(v).copy() for v in model.discriminator.trainable_variables]
    d_opt, g_opt, history = _fit(model, _data())
    d_steps = options.get("d_steps", 1)
    assert int(_np(d_opt.iterations)) == 4 * d_steps and int(_np(g_opt.iterations)) == 4
    for before, variable in zip(g_before + d_before, model.generator.trainable_variables
                                + model.discriminator.trainable_variables):
        if "kernel" in variable.path:  # (a Wasserstein critic's output bias has no gradient)
            assert not np.allclose(before, _np(variable)), variable.path
    assert set(history.history) == {"loss", "d_loss", "g_loss"}
    assert all(np.isfinite(v[-1]) for v in history.history.values())


def test_latent_dimension_comes_from_the_generator_and_generate_is_deterministic_in_z():
    model = _gan(latent=5)
    assert model.latent_dim == 5 and model.latent_shape == (5,)
    assert tuple(model.generate(7).shape) == (7, 2)
    z = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(_np(model.generate(z)), _np(model.generator(z)), rtol=1e-6)
    first, second = _np(model.generate(4)), _np(model.generate(4))
    assert not np.allclose(first, second), "generate(n) must draw fresh latents"
    with pytest.raises(ValueError, match="z"):
        model.generate(np.zeros((4, 3), "float32"))


def test_conditional_gan_trains_on_pairs_and_generates_per_label():
    z_in, y_in = keras.Input((3,)), keras.Input((4,))
    h = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([z_in, y_in]))
    generator = keras.Model([z_in, y_in], keras.layers.Dense(2)(h), name="generator")
    x_in, y2_in = keras.Input((2,)), keras.Input((4,))
    h = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([x_in, y2_in]))
    discriminator = keras.Model([x_in, y2_in], keras.layers.Dense(1)(h), name="discriminator")
    model = GAN(generator, discriminator, loss="hinge", r1_weight=1.0)
    assert model.conditional
    labels = np.eye(4, dtype="float32")[np.arange(64) % 4]
    d_opt, g_opt = _adam(), _adam()
    model.compile(optimizers={"discriminator": d_opt, "generator": g_opt})
    model.fit(_data(), labels, batch_size=16, epochs=1, verbose=0)
    assert int(_np(g_opt.iterations)) == 4
    assert tuple(model.generate(4, labels[:4]).shape) == (4, 2)
    with pytest.raises(ValueError, match="labels"):
        model.generate(4)


def test_gan_survives_save_and_reload(tmp_path):
    model = _gan(loss="wgan_gp", d_steps=2, loss_weight=5.0)
    _fit(model, _data())
    path = str(tmp_path / "gan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, GAN)
    assert (loaded.loss_name, loaded.d_steps, loaded.loss_weight) == ("wgan_gp", 2, 5.0)
    z = np.random.default_rng(2).normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(_np(loaded.generate(z)), _np(model.generate(z)), rtol=1e-6)
    x = _data(8)
    np.testing.assert_allclose(_np(loaded.energy(x)), _np(model.energy(x)), rtol=1e-6)


def test_bad_arguments_are_named_before_any_work():
    with pytest.raises(ValueError, match="hinge") as info:
        _gan(loss="lsgan")
    assert "wgan_div" in str(info.value) and "'js'" in str(info.value)
    with pytest.raises(ValueError, match="latent dimension"):
        GAN(keras.Sequential([keras.Input((0,)), keras.layers.Dense(2)]), mlp(2, 1))
    with pytest.raises(ValueError, match="d_steps"):
        _gan(single_loss=True, d_steps=2)
    with pytest.raises(ValueError, match="d_steps"):
        _gan(d_steps=0)
    with pytest.raises(TypeError, match="generator"):
        GAN(lambda z: z, mlp(2, 1))
    with pytest.raises(ValueError, match="generator_form"):
        _gan(loss="gan", generator_form="minimax")
    with pytest.raises(ValueError, match="r1_weight"):
        _gan(r1_weight=-1.0)


def _image_networks():
    z = keras.Input((3,))
    generator = keras.Model(z, keras.layers.Reshape((4, 4, 1))(keras.layers.Dense(16, activation="tanh")(z)),
                            name="generator")
    x = keras.Input((4, 4, 1), name="images")
    discriminator = keras.Model(x, keras.layers.Dense(1)(keras.layers.Flatten()(x)), name="discriminator")
    return generator, discriminator


def _wrong_shape_batches():
    for _ in range(2):  # 2x2 images for 4x4 networks: not read before training, fails inside the first step
        yield (np.zeros((16, 2, 2, 1), "float32"),)


@pytest.mark.parametrize("retry", ["same_gan", "new_gan"])
@pytest.mark.parametrize("bad_data", ["numpy", "generator"])
def test_a_failed_fit_leaves_the_networks_as_they_were_and_trainable(bad_data, retry):
    # new-user-review section 3: on JAX a fit that failed in its first step left every variable without a
    # value ('NoneType' object is not callable on the next fit, even for a new GAN on the same networks).
    generator, discriminator = _image_networks()
    model = GAN(generator, discriminator, seed=3)
    before = [_np(w).copy() for w in model.weights]
    if bad_data == "numpy":  # refused before any step, naming the shape the networks need
        with pytest.raises(ValueError, match=r"`x` must have shape \(batch,\) \+ \(4, 4, 1\) \(the discriminator's "
                                             r"input shape\), got \(64, 2, 2, 1\)"):
            _fit(model, np.zeros((64, 2, 2, 1), "float32"))
    else:
        with pytest.raises(ValueError, match="images"):
            _fit(model, _wrong_shape_batches(), batch_size=None, steps_per_epoch=2)
    for old, weight in zip(before, model.weights):
        np.testing.assert_array_equal(old, _np(weight))
    if retry == "new_gan":
        model = GAN(generator, discriminator, seed=3)
    x = np.random.default_rng(0).uniform(-1, 1, (64, 4, 4, 1)).astype("float32")
    d_opt, g_opt, history = _fit(model, x)
    assert int(_np(d_opt.iterations)) == 4 and int(_np(g_opt.iterations)) == 4
    assert all(np.isfinite(v[-1]) for v in history.history.values())


def test_a_failed_predict_leaves_the_generator_usable():
    model = GAN(*_image_networks(), seed=3)
    before = [_np(w).copy() for w in model.weights]
    with pytest.raises(ValueError):
        model.predict(np.zeros((4, 5), "float32"), verbose=0)  # z of size 5 for a generator of z of size 3
    for old, weight in zip(before, model.weights):
        np.testing.assert_array_equal(old, _np(weight))
    z = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(_np(model.predict(z, verbose=0)), _np(model.generate(z)), rtol=1e-6)


def test_a_failed_fit_after_a_good_one_keeps_the_weights_set_in_between():
    # On JAX, Keras 3.15 puts back the state of the last step that returned, here one of the previous fit (whose
    # optimizers compile replaced): without kgen's restore the weights end up stale or without values.
    model = GAN(*_image_networks(), seed=3)
    _fit(model, np.random.default_rng(0).uniform(-1, 1, (64, 4, 4, 1)).astype("float32"))
    kernel = model.discriminator.layers[-1].kernel
    kernel.assign(np.full(kernel.shape, 0.5, "float32"))
    before = [_np(w).copy() for w in model.weights]
    with pytest.raises(ValueError, match="images"):
        _fit(model, _wrong_shape_batches(), batch_size=None, steps_per_epoch=2)
    for old, weight in zip(before, model.weights):
        np.testing.assert_array_equal(old, _np(weight))
