"""Standing BatchNorm statistics for a GAN's averaged generator (BigGAN's): after `fit` the averaged weights are
normalised with the mean of their own batch statistics, not with the live weights' moving statistics.

Oracle: the same latents pushed through the averaged weights in NumPy (batch means and biased variances of the
pre-BatchNorm activations, averaged over the batches), and the generator's inference formula in NumPy."""

import keras
import numpy as np
import pytest
from keras import ops

from kgen import backend as kb
from kgen.ema import ExponentialMovingAverage
from kgen.gans import GAN
from kgen.gans.networks import mlp


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _generator(conditional=False):
    z = keras.Input((3,), name="z")
    inputs, h = [z], z
    if conditional:
        y = keras.Input((), dtype="int32", name="y")
        inputs.append(y)
        h = keras.layers.Concatenate()([z, keras.layers.Embedding(4, 2, name="embed")(y)])
    h = keras.layers.Dense(4, name="dense_in")(h)
    h = keras.layers.BatchNormalization(momentum=0.9, name="bn")(h)
    out = keras.layers.Dense(2, name="dense_out")(keras.layers.ReLU()(h))
    return keras.Model(inputs if conditional else z, out)


def _discriminator(conditional=False):
    if not conditional:
        return mlp(2, 1, hidden=(8,), seed=2)
    x, y = keras.Input((2,)), keras.Input((), dtype="int32")
    h = keras.layers.Concatenate()([x, keras.layers.Embedding(4, 2)(y)])
    return keras.Model([x, y], keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(h)))


def _gan(conditional=False, **kwargs):
    model = GAN(_generator(conditional), _discriminator(conditional), value_range=None, **kwargs)
    model.compile(optimizers={"generator": keras.optimizers.Adam(3e-2), "discriminator": keras.optimizers.Adam(3e-2)})
    return model


def _data(n=64):
    return np.random.default_rng(0).normal(loc=2.0, size=(n, 2)).astype("float32")


def _averaged(model):
    """name -> averaged trainable value (NumPy)."""
    variables = model.generator.trainable_variables
    return {"/".join(v.path.split("/")[-2:]): _np(a) for v, a in zip(variables, model.ema.averages)}


def _pre_bn(w, z):
    return z @ w["dense_in/kernel"] + w["dense_in/bias"]


def _forward(w, z, mean, var, epsilon=1e-3):
    h = (_pre_bn(w, z) - mean) / np.sqrt(var + epsilon) * w["bn/gamma"] + w["bn/beta"]
    return np.maximum(h, 0.0) @ w["dense_out/kernel"] + w["dense_out/bias"]


def _latents(batches=16, batch_size=256, seed=0):
    return [_np(keras.random.normal((batch_size, 3), seed=seed * 1_000_003 + k)) for k in range(batches)]


def _live_statistics(model):
    bn = model.generator.get_layer("bn")
    return _np(bn.moving_mean), _np(bn.moving_variance)


def test_fit_computes_the_averaged_generators_own_statistics():
    model = _gan(ema_decay=0.5)
    model.fit(_data(), batch_size=16, epochs=3, verbose=0)
    assert float(_np(model.ema.ready.value)) == 1.0
    w = _averaged(model)
    batches = [_pre_bn(w, z) for z in _latents()]
    mean = np.mean([h.mean(axis=0) for h in batches], axis=0)
    var = np.mean([h.var(axis=0) for h in batches], axis=0)  # biased, as BatchNorm's batch variance
    standing_mean, standing_var = (_np(s) for s in model.ema.standing)
    np.testing.assert_allclose(standing_mean, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(standing_var, var, rtol=1e-4, atol=1e-5)
    live_mean, live_var = _live_statistics(model)
    assert not np.allclose(live_mean, mean, rtol=1e-2, atol=1e-3)  # negative control: the live ones differ
    assert model.generator.get_layer("bn").momentum == 0.9  # the layer's momentum is given back


def test_sampling_uses_the_standing_statistics_once_ready_and_the_live_ones_before():
    model = _gan(ema_decay=0.5)
    model.fit(_data(), batch_size=16, epochs=3, verbose=0)
    w, z = _averaged(model), _latents(1, 8, seed=5)[0]
    standing = [_np(s) for s in model.ema.standing]
    expected = _forward(w, z, *standing)
    np.testing.assert_allclose(_np(model.generate(z)), expected, rtol=1e-4, atol=1e-5)
    with_live = _forward(w, z, *_live_statistics(model))
    assert not np.allclose(expected, with_live, rtol=1e-2, atol=1e-3)  # the test bites
    np.testing.assert_allclose(_np(model.averaged_generator()(z, training=False)), expected, rtol=1e-4, atol=1e-5)
    model.ema.reset_statistics()
    np.testing.assert_allclose(_np(model.generate(z)), with_live, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(model.averaged_generator()(z, training=False)), with_live, rtol=1e-4, atol=1e-5)
    # the live generator is untouched by all this
    live = {"/".join(v.path.split("/")[-2:]): _np(v) for v in model.generator.trainable_variables}
    np.testing.assert_allclose(_np(model.generate(z, use_ema=False)), _forward(live, z, *_live_statistics(model)),
                               rtol=1e-4, atol=1e-5)


def test_statistics_are_saved_and_older_files_load_without_them(tmp_path):
    model = _gan(ema_decay=0.5)
    model.fit(_data(), batch_size=16, epochs=2, verbose=0)
    z = _latents(1, 8, seed=5)[0]
    path = str(tmp_path / "gan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(loaded.generate(z)), _np(model.generate(z)), rtol=1e-6, atol=1e-6)
    assert float(_np(loaded.ema.ready.value)) == 1.0

    config = model.get_config()
    assert config["ema_statistics"] is True
    del config["ema_statistics"]  # a file written before the option
    older = GAN.from_config(config)
    assert older.ema_statistics is False and older.ema.standing == []
    assert "statistics" not in older.ema.get_config()


def test_a_generator_without_batch_norm_keeps_no_statistics():
    model = GAN(mlp(3, 2, hidden=(8,), seed=1), mlp(2, 1, hidden=(8,), seed=2), value_range=None, ema_decay=0.5)
    assert model.ema.statistics is False and model.ema.standing == []
    with pytest.raises(ValueError, match="no standing statistics"):
        model.update_ema_statistics()


def test_conditional_models_draw_from_the_given_labels():
    model = _gan(conditional=True, ema_decay=0.5)
    x, y = _data(), np.repeat(np.arange(4, dtype="int32"), 16)
    with pytest.raises(ValueError, match="labels"):
        model.update_ema_statistics()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert float(_np(model.ema.ready.value)) == 1.0
    first = [_np(s) for s in model.ema.standing]
    model.update_ema_statistics(labels=np.zeros(10, "int32"))  # only class 0: other statistics
    assert not np.allclose(first[0], _np(model.ema.standing[0]), atol=1e-4)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="ema_statistics"):
        _gan(ema_decay=0.5, ema_statistics="yes")
    model = _gan(ema_decay=0.5)
    with pytest.raises(ValueError, match="batches"):
        model.update_ema_statistics(batches=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.update_ema_statistics(batch_size=1)
    with pytest.raises(ValueError, match="needs the tracked `network`"):
        ExponentialMovingAverage(0.9, statistics=True).track(model.generator.trainable_variables)
    with pytest.raises(ValueError, match="keeps no statistics"):
        ExponentialMovingAverage(0.9).standing_statistics(model.generator, [])


def test_call_network_with_given_state_is_a_stateless_call():
    """`non_trainable_values` replace the network's state for one call (also in torch's traced replay)."""
    net = _generator()
    net(np.zeros((2, 3), "float32"))
    z = _latents(1, 8, seed=3)[0].astype("float32")
    weights = [v.value for v in net.trainable_variables]
    state = [ops.ones_like(v.value) * 0.5 for v in net.non_trainable_variables]
    before = [_np(v) for v in net.non_trainable_variables]
    for _ in range(2):  # the second call is the replay on torch
        out = kb.call_network(net, z, training=False, trainable_values=weights, non_trainable_values=state)
        expected, _ = net.stateless_call(weights, state, z, training=False)
        np.testing.assert_allclose(_np(out), _np(expected), rtol=1e-5, atol=1e-6)
    live = kb.call_network(net, z, training=False, trainable_values=weights)
    assert not np.allclose(_np(out), _np(live), atol=1e-4)
    for v, b in zip(net.non_trainable_variables, before):
        np.testing.assert_array_equal(_np(v), b)
    with pytest.raises(ValueError, match="needs `trainable_values`"):
        kb.call_network(net, z, non_trainable_values=state)


@pytest.mark.jax
@pytest.mark.tensorflow
def test_the_exported_generator_uses_the_standing_statistics(tmp_path):
    import tensorflow as tf

    import kgen

    model = _gan(ema_decay=0.5)
    model.fit(_data(), batch_size=16, epochs=3, verbose=0)
    z = _latents(1, 8, seed=5)[0].astype("float32")
    path = str(tmp_path / "gan")
    kgen.export.export_saved_model(model, path)
    loaded = tf.saved_model.load(path)  # kept: its variables live as long as it does
    served = loaded.sample(tf.constant(z)).numpy()
    np.testing.assert_allclose(served, _np(model.generate(z)), rtol=1e-4, atol=1e-5)
    model.ema.reset_statistics()  # negative control: the live statistics give other images
    assert not np.allclose(served, _np(model.generate(z)), rtol=1e-2, atol=1e-3)


# ---------------------------------------------------------------- spectral norms in the averaged generator
def _sn_generator():
    from kgen.gans.layers import SpectralNormalization

    z = keras.Input((3,), name="z")
    h = SpectralNormalization(keras.layers.Dense(4, name="dense_in"), name="sn")(z)
    h = keras.layers.BatchNormalization(momentum=0.9, name="bn")(h)
    return keras.Model(z, keras.layers.Dense(2, name="dense_out")(keras.layers.ReLU()(h)))


def _sn_gan(**kwargs):
    model = GAN(_sn_generator(), _discriminator(), value_range=None, **kwargs)
    model.compile(optimizers={"generator": keras.optimizers.Adam(3e-2), "discriminator": keras.optimizers.Adam(3e-2)})
    return model


def _normalized(w, u):
    """The averaged weights with dense_in's kernel divided by σ̂ = ‖M û‖ (the layer's formula, NumPy)."""
    w = dict(w)
    u = u / np.linalg.norm(u)
    w["dense_in/kernel"] = w["dense_in/kernel"] / np.sqrt(np.sum((w["dense_in/kernel"] @ u) ** 2) + 1e-12)
    return w


def test_spectral_norm_vectors_are_those_of_the_averaged_kernels(tmp_path):
    model = _sn_gan(ema_decay=0.9)
    model.fit(_data(), batch_size=16, epochs=3, verbose=0)
    assert float(_np(model.ema.vectors_ready.value)) == 1.0 and len(model.ema.standing_vectors) == 1
    w = _averaged(model)
    top = np.linalg.svd(w["dense_in/kernel"])[2][0]  # the averaged kernel's top right singular vector
    u = _np(model.ema.standing_vectors[0])
    assert 1.0 - abs(u @ top) / np.linalg.norm(u) < 1e-6
    live_u = _np(model.generator.get_layer("sn").u)
    assert 1.0 - abs(live_u @ top) / np.linalg.norm(live_u) > 1e-4  # negative control: the live u is another
    # The standing BatchNorm statistics are those of the averaged network normalised with that u.
    wn = _normalized(w, top)
    batches = [_pre_bn(wn, z) for z in _latents()]
    mean = np.mean([h.mean(axis=0) for h in batches], axis=0)
    var = np.mean([h.var(axis=0) for h in batches], axis=0)
    standing_mean, standing_var = (_np(s) for s in model.ema.standing)
    np.testing.assert_allclose(standing_mean, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(standing_var, var, rtol=1e-4, atol=1e-5)
    z = _latents(1, 8, seed=5)[0]
    expected = _forward(wn, z, mean, var)
    np.testing.assert_allclose(_np(model.generate(z)), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(model.averaged_generator()(z, training=False)), expected, rtol=1e-4, atol=1e-5)
    with_live_u = _forward(_normalized(w, live_u), z, mean, var)
    assert not np.allclose(expected, with_live_u, rtol=1e-3, atol=1e-4)  # the comparison above can tell
    path = str(tmp_path / "gan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(_np(loaded.generate(z)), _np(model.generate(z)))
    model.ema.reset_statistics()  # the live vectors and statistics again, as before they were computed
    np.testing.assert_allclose(_np(model.generate(z)), _forward(_normalized(w, live_u), z, *_live_statistics(model)),
                               rtol=1e-4, atol=1e-5)


def test_a_file_written_before_standing_vectors_loads_and_samples_as_it_did():
    """tests/gans/data/gan_sn_ema_ab59b35.keras (make_gan_sn_ema_ab59b35.py, kgen at ab59b35): its averaged
    generator gives the outputs it gave then (live u); `update_ema_statistics` then computes the vectors."""
    import os

    path = os.path.join(os.path.dirname(__file__), "data", "gan_sn_ema_ab59b35.keras")
    recorded = np.load(path + ".npz")
    model = keras.saving.load_model(path, safe_mode=True)
    assert float(_np(model.ema.ready.value)) == 1.0 and float(_np(model.ema.vectors_ready.value)) == 0.0
    np.testing.assert_allclose(_np(model.generate(recorded["z"])), recorded["averaged"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(model.generate(recorded["z"], use_ema=False)), recorded["live"], rtol=1e-5,
                               atol=1e-6)
    model.update_ema_statistics()
    assert float(_np(model.ema.vectors_ready.value)) == 1.0
    top = np.linalg.svd(_averaged(model)["dense_in/kernel"])[2][0]
    u = _np(model.ema.standing_vectors[0])
    assert 1.0 - abs(u @ top) / np.linalg.norm(u) < 1e-6


def test_converged_vector_is_the_top_singular_vector_of_the_given_kernel():
    from kgen.gans.layers import SpectralNormalization

    sn = SpectralNormalization(keras.layers.Conv2D(5, 3))
    sn.build((None, 8, 8, 2))
    other = np.random.default_rng(0).normal(size=(3, 3, 2, 5)).astype("float32")
    top = np.linalg.svd(other.reshape(-1, 5).astype(np.float64))[2][0]
    u = sn.converged_vector(other)
    assert u.shape == (5,) and 1.0 - abs(u @ top) / np.linalg.norm(u) < 1e-6
    assert 1.0 - abs(_np(sn.u) @ top) / np.linalg.norm(_np(sn.u)) > 1e-3  # the stored u is another kernel's
    with pytest.raises(ValueError, match="`kernel` must have the kernel's shape"):
        sn.converged_vector(other[..., :4])
    with pytest.raises(ValueError, match="iterations"):
        sn.converged_vector(other, iterations=0)


def test_conditional_fit_reads_labels_given_as_a_tensor():
    model = _gan(conditional=True, ema_decay=0.5)
    x, y = _data(), np.repeat(np.arange(4, dtype="int32"), 16)
    model.fit(x, ops.convert_to_tensor(y), batch_size=16, epochs=1, verbose=0)
    assert float(_np(model.ema.ready.value)) == 1.0
    after_fit = [_np(s) for s in model.ema.standing]
    model.update_ema_statistics(labels=y)  # what fit does with a NumPy y (same default seed)
    for a, b in zip(after_fit, model.ema.standing):
        np.testing.assert_allclose(a, _np(b), rtol=1e-6, atol=1e-7)


def test_conditional_fit_from_a_generator_warns_that_the_statistics_stay_live():
    """Labels inside a generator (or a tf.data dataset) cannot be read without a second pass: `fit` says so."""
    model = _gan(conditional=True, ema_decay=0.5)
    x, y = _data(), np.repeat(np.arange(4, dtype="int32"), 16)

    def batches():
        for _ in range(2):
            for k in range(0, 64, 16):
                yield x[k:k + 16], y[k:k + 16]

    with pytest.warns(UserWarning, match="update_ema_statistics"):
        model.fit(batches(), steps_per_epoch=4, epochs=2, verbose=0)
    assert float(_np(model.ema.ready.value)) == 0.0  # live statistics until asked
    model.update_ema_statistics(labels=y)
    assert float(_np(model.ema.ready.value)) == 1.0
