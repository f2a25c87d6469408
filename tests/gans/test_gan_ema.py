"""The GANs' weight average is `kgen.ema` (the diffusion models' mechanism): folded inside the compiled step after
every generator update, exactly ema_k = d·ema_{k−1} + (1−d)·w_k on every backend; `ema_start` copies; sampling,
`generate`, export and `averaged_generator()` use it; it is saved with the model; the old callback warns."""

import keras
import numpy as np
import pytest
from keras import ops

import kgen
from kgen.ema import ExponentialMovingAverage
from kgen.gans import GAN, EnergyGAN
from kgen.gans.networks import mlp


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _gan(cls=GAN, **kwargs):
    model = cls(mlp(3, 2, hidden=(8,), seed=1), mlp(2, 1, hidden=(8,), seed=2), value_range=None, **kwargs)
    names = ["generator", "discriminator"] + (["statistics_network"] if getattr(model, "statistics_network", None)
                                              else [])
    model.compile(optimizers={name: keras.optimizers.Adam(1e-2) for name in names})
    return model


def _train_steps(model, steps):
    """`steps` generator updates, one `fit` call each, and the generator's trainable weights after each."""
    x = np.random.default_rng(0).normal(size=(16, 2)).astype("float32")
    seen = [[_np(w) for w in model.generator.trainable_weights]]
    for _ in range(steps):
        model.fit(x, batch_size=16, epochs=1, shuffle=False, verbose=0)
        seen.append([_np(w) for w in model.generator.trainable_weights])
    return seen


@pytest.mark.parametrize("cls", [GAN, EnergyGAN])
def test_every_generator_update_is_folded_in_exactly(cls):
    model = _gan(cls, ema_decay=0.5)
    seen = _train_steps(model, 3)
    assert not np.allclose(seen[1][0], seen[2][0])
    for k in range(len(seen[0])):
        expected = seen[0][k]
        for step in (1, 2, 3):
            expected = 0.5 * expected + 0.5 * seen[step][k]
        np.testing.assert_allclose(_np(model.ema.averages[k]), expected, rtol=1e-5, atol=1e-6)
        # negative control: one fold fewer is a different number
        assert not np.allclose(_np(model.ema.averages[k]), 0.5 * seen[0][k] + 0.5 * seen[3][k], atol=1e-4)


def test_ema_start_copies_the_weights_for_that_many_updates():
    model = _gan(ema_decay=0.9, ema_start=2)
    seen = _train_steps(model, 3)
    assert float(_np(model.ema.folds.value)) == 3.0
    for k in range(len(seen[0])):
        np.testing.assert_allclose(_np(model.ema.averages[k]), 0.9 * seen[2][k] + 0.1 * seen[3][k], rtol=1e-5,
                                   atol=1e-6)


def test_sampling_generation_and_the_averaged_generator_use_the_average():
    model = _gan(ema_decay=0.5)
    _train_steps(model, 2)
    z = keras.random.normal((5, 3), seed=keras.random.SeedGenerator(7))
    copy = model.averaged_generator()
    np.testing.assert_allclose(_np(model.generate(z)), _np(copy(z)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(model.generate(z, use_ema=False)), _np(model.generator(z)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(_np(model.generate(z)), _np(model.generate(z, use_ema=False)), atol=1e-4)
    np.testing.assert_allclose(_np(model.sample(5, seed=3)), _np(model.sample(5, seed=3)), rtol=0, atol=0)
    assert not np.allclose(_np(model.sample(5, seed=3)), _np(model.sample(5, seed=3, use_ema=False)), atol=1e-4)
    plain = _gan()
    with pytest.raises(ValueError, match="ema_decay"):
        plain.averaged_generator()


def test_the_average_is_saved_with_the_model(tmp_path):
    model = _gan(ema_decay=0.5, ema_start=1)
    _train_steps(model, 2)
    path = str(tmp_path / "gan.keras")
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert again.ema_decay == 0.5 and again.ema_start == 1
    for a, b in zip(model.ema.averages, again.ema.averages):
        np.testing.assert_allclose(_np(a), _np(b), rtol=0, atol=0)
    np.testing.assert_allclose(_np(model.sample(4, seed=1)), _np(again.sample(4, seed=1)), rtol=1e-6, atol=1e-6)


def test_bad_ema_arguments_are_named():
    with pytest.raises(ValueError, match="ema_decay"):
        _gan(ema_decay=0.0)
    with pytest.raises(ValueError, match="decay"):
        _gan(ema_decay=1.5)
    with pytest.raises(ValueError, match="ema_start"):
        _gan(ema_decay=0.9, ema_start=-1)


def test_the_layer_folds_warms_up_and_runs_a_network_with_the_averages():
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    w0 = [_np(v) for v in dense.trainable_variables]
    ema = ExponentialMovingAverage(0.9, start_step=1)
    ema.track(dense.trainable_variables)
    dense.kernel.assign(dense.kernel + 1.0)
    ema.fold(dense.trainable_variables)  # the warm-up fold: a copy
    np.testing.assert_allclose(_np(ema.averages[0]), w0[0] + 1.0, rtol=1e-6)
    dense.kernel.assign(dense.kernel + 1.0)
    ema.fold(dense.trainable_variables)
    np.testing.assert_allclose(_np(ema.averages[0]), 0.9 * (w0[0] + 1.0) + 0.1 * (w0[0] + 2.0), rtol=1e-6)
    x = np.ones((4, 3), "float32")
    expected = x @ _np(ema.averages[0]) + _np(ema.averages[1])
    np.testing.assert_allclose(_np(ema.call_with_averages(dense, x)), expected, rtol=1e-5)
    np.testing.assert_allclose(_np(dense.kernel), w0[0] + 2.0, rtol=1e-6)  # the live weights are untouched
    with pytest.raises(ValueError, match="tracked"):
        ema.fold(dense.trainable_variables[:1])


def test_the_old_callback_warns_and_still_averages():
    model = _gan()
    with pytest.warns(DeprecationWarning, match="ema_decay"):
        callback = kgen.gans.EMA(decay=0.5)
    model.fit(np.zeros((16, 2), "float32"), batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    assert callback.updates == 1
