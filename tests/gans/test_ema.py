"""kgen.gans.EMA: one update is exactly θ̄ ← d·θ̄ + (1−d)·θ (by hand and inside `fit` on every backend),
non-trainable state is copied, `start_step` copies, and sampling uses the averaged generator."""

import keras
import numpy as np
import pytest
from keras import ops

from kgen import backend as kb
from kgen.gans import networks
from kgen.gans.ema import EMA


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _weights(model):
    return [_np(w) for w in model.weights]


def _generator_with_batchnorm():
    z = keras.Input((3,))
    h = keras.layers.BatchNormalization()(keras.layers.Dense(4)(z))
    return keras.Model(z, keras.layers.Dense(2)(h))


def test_one_ema_update_is_exact_and_copies_non_trainable_state():
    g = _generator_with_batchnorm()
    ema = EMA(g, decay=0.9)
    before = _weights(g)
    g(keras.random.normal((8, 3)), training=True)  # moves the BatchNorm moving statistics
    rng = np.random.default_rng(0)
    for w in g.trainable_weights:
        w.assign(_np(w) + rng.normal(size=w.shape))
    after = _weights(g)
    ema.update()
    trainable = {id(w) for w in g.trainable_weights}
    for w, w0, w1, average in zip(g.weights, before, after, _weights(ema.averaged_generator)):
        expected = 0.9 * w0 + 0.1 * w1 if id(w) in trainable else w1
        np.testing.assert_allclose(average, expected, rtol=1e-6, atol=1e-6)
    assert not np.allclose(_weights(ema.averaged_generator)[0], after[0])  # the average is not the live copy


def test_ema_callback_averages_after_every_fit_step():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    ema = EMA(model, decay=0.5)
    seen = [_weights(model)]
    # Runs after EMA in the same batch: EMA has already brought the weights back onto the variables (JAX).
    recorder = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(_weights(model)))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[ema, recorder])
    assert len(seen) == 3 and not np.allclose(seen[1][0], seen[2][0])
    for k in range(len(seen[0])):
        expected = 0.5 * (0.5 * seen[0][k] + 0.5 * seen[1][k]) + 0.5 * seen[2][k]
        np.testing.assert_allclose(_weights(ema.averaged_generator)[k], expected, rtol=1e-5, atol=1e-6)
    assert ema.updates == 2


def test_ema_copies_during_start_steps():
    g = networks.mlp_generator(latent_dim=2, hidden=(4,))
    ema = EMA(g, decay=0.9, start_step=1)
    for w in g.trainable_weights:
        w.assign(_np(w) + 1.0)
    ema.update()  # within start_step: a copy
    np.testing.assert_allclose(_weights(ema.averaged_generator)[0], _weights(g)[0], rtol=1e-6)
    previous = _weights(ema.averaged_generator)
    for w in g.trainable_weights:
        w.assign(_np(w) + 1.0)
    ema.update()
    np.testing.assert_allclose(_weights(ema.averaged_generator)[0], 0.9 * previous[0] + 0.1 * _weights(g)[0],
                               rtol=1e-6)


def test_sampling_uses_the_averaged_generator():
    g = networks.mlp_generator(latent_dim=2, hidden=(4,))
    ema = EMA(g, decay=0.5, seed=3)
    for w in g.trainable_weights:
        w.assign(_np(w) * 3.0 + 1.0)
    ema.update()
    samples = _np(ema.sample(5))
    z = keras.random.normal((5, 2), seed=keras.random.SeedGenerator(3))  # the same stream as EMA(seed=3)
    np.testing.assert_allclose(samples, _np(ema.averaged_generator(z)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(samples, _np(g(z)), atol=1e-3)  # negative control: not the live generator
    with pytest.raises(ValueError, match="labels"):
        ema.sample(2, labels=[0, 1])


def test_sample_follows_the_protocol_int_seed_repeats_and_leaves_the_callback_seed_alone():
    g = networks.mlp_generator(latent_dim=2, hidden=(4,))
    ema = EMA(g, decay=0.5, seed=3)
    state = _np(ema.seed_generator.state)
    first = _np(ema.sample(4, seed=11))
    np.testing.assert_array_equal(first, _np(ema.sample(4, seed=11)))
    assert not np.allclose(first, _np(ema.sample(4, seed=12)))
    np.testing.assert_array_equal(_np(ema.seed_generator.state), state)
    assert not np.allclose(_np(ema.sample(4)), _np(ema.sample(4)))  # seed=None: the callback's generator


def test_positional_labels_warn_and_still_work():
    g = networks.generator((8, 8, 1), latent_dim=3, norm="cbn", num_classes=3, width=2)
    ema = EMA(g, decay=0.99)
    with pytest.warns(DeprecationWarning, match="labels"):
        old = _np(ema.sample(2, [0, 1], seed=4))
    np.testing.assert_allclose(old, _np(ema.sample(2, seed=4, labels=[0, 1])), rtol=1e-6)


def test_sync_state_returns_the_model_and_refuses_other_objects():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert kb.sync_state(model) is model  # outside fit: nothing to write back, on every backend
    with pytest.raises(TypeError, match="model"):
        kb.sync_state("model")


def test_conditional_sampling_and_bad_arguments():
    g = networks.generator((8, 8, 1), latent_dim=3, norm="cbn", num_classes=3, width=2)
    ema = EMA(g, decay=0.99)
    assert _np(ema.sample(2, labels=[0, 1])).shape == (2, 8, 8, 1)
    with pytest.raises(ValueError, match="labels"):
        ema.sample(2)
    with pytest.raises(ValueError, match="decay"):
        EMA(g, decay=1.0)
    with pytest.raises(TypeError, match="generator"):
        EMA("generator")


@pytest.mark.jax
def test_ema_finds_the_gan_generator_and_tracks_it_during_fit():
    from kgen.gans.gan import GAN

    gan = GAN(networks.mlp_generator(hidden=(8,)), networks.mlp_discriminator(hidden=(8,)), loss="hinge")
    gan.compile(optimizers={"generator": keras.optimizers.Adam(1e-2), "discriminator": keras.optimizers.Adam(1e-2)})
    ema = EMA(decay=0.9)
    start = _weights(gan.generator)
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    gan.fit(x, batch_size=16, epochs=1, verbose=0, callbacks=[ema])
    assert ema.generator is gan.generator and ema.updates == 4
    live, average = _weights(gan.generator), _weights(ema.averaged_generator)
    # 4 steps of decay 0.9 keep 0.9⁴ ≈ 0.66 of the start: the average lies strictly between start and live.
    assert not np.allclose(average[0], live[0]) and not np.allclose(average[0], start[0])
    assert _np(ema.sample(3)).shape == (3, 2)
