"""What `fit` does with bad data, the same for GAN, EnergyGAN and DiffusionModel (kgen._checks.check_data).

NumPy data is checked once, before any step: NaN/inf -> ValueError naming `x` and the first bad index; integer
dtypes -> TypeError naming kgen.datasets.to_signed. Other inputs (here a Python generator) are not read on the
host: a NaN among them shows up as a NaN loss, and TerminateOnNaN / StopOnNaN stop at that batch.

The networks' data path is linear (Dense layers, no activation) and the losses reach the data through sums and
products only, which carry a NaN on every CPU. relu/max/min of a NaN depend on the SIMD path (on TF's CPU
kernels, AVX-512 and AVX2 disagree), so no test here relies on them.
"""

import keras
import numpy as np
import pytest
from callback_threads import ThreadRecorder
from keras import ops

from kgen.callbacks import StopOnNaN
from kgen.diffusion import CosineSchedule
from kgen.diffusion.model import DiffusionModel
from kgen.gans import GAN, EnergyGAN
from kgen.gans.networks import mlp

KINDS = ("gan", "energy_gan", "diffusion")
BATCH, BATCHES = 16, 8


def _linear(name):
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)], name=name)


def _denoiser():
    x, logsnr = keras.Input((2,)), keras.Input(())
    h = keras.layers.Concatenate()([x, keras.layers.Reshape((1,))(logsnr)])
    return keras.Model([x, logsnr], keras.layers.Dense(2)(h))


def _model(kind):
    """A compiled model on 2-D data whose loss is a sum of products of the data (see the module docstring)."""
    if kind == "diffusion":
        model = DiffusionModel(_denoiser(), CosineSchedule(), seed=1)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model
    generator = mlp(3, 2, hidden=(8,), seed=1, name="generator")
    if kind == "gan":
        model = GAN(generator, _linear("discriminator"), loss="wgan_gp", seed=3)  # L_D = E D(x_f) − E D(x_r) + GP
    else:
        model = EnergyGAN(generator, _linear("discriminator"), entropy=None, seed=3)  # E U(x_r) − E U(x_f) + GP
    model.compile(optimizers={"generator": keras.optimizers.Adam(1e-3), "discriminator": keras.optimizers.Adam(1e-3)})
    return model


def _data(n=BATCH * BATCHES):
    return np.random.default_rng(0).normal(size=(n, 2)).astype("float32")


def _recorder():
    events = []
    callback = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append("train_begin"),
        on_train_batch_end=lambda batch, logs: events.append(batch))
    return events, callback


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_numpy_data_is_refused_before_any_step(kind, bad):
    model, x = _model(kind), _data()
    x[37, 1] = bad
    events, recorder = _recorder()
    with pytest.raises(ValueError, match=r"`x` contains NaN or infinite values \(1 of 256\); the first is x\[37, 1\]"):
        model.fit(x, batch_size=BATCH, epochs=1, verbose=0, callbacks=[recorder])
    assert events == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["uint8", "int32"])
def test_integer_data_is_refused_with_the_scaling_it_needs(kind, dtype):
    model = _model(kind)
    x = np.random.default_rng(0).integers(0, 256, size=(64, 2)).astype(dtype)
    events, recorder = _recorder()
    with pytest.raises(TypeError, match=r"`x` holds .* \[-1, 1\].*kgen\.datasets\.to_signed\(x, levels\)"):
        model.fit(x, batch_size=BATCH, epochs=1, verbose=0, callbacks=[recorder])
    assert events == []


@pytest.mark.parametrize("kind", KINDS)
def test_numpy_data_of_the_wrong_shape_is_refused_naming_the_expected_shape(kind):
    model = _model(kind)
    events, recorder = _recorder()
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch,\) \+ \(2,\).*got \(64, 3\)"):
        model.fit(np.zeros((64, 3), "float32"), batch_size=BATCH, epochs=1, verbose=0, callbacks=[recorder])
    assert events == []


def _batches(nan_batch=None):
    """A generator of BATCHES batches (not checked by fit); one NaN entry in batch `nan_batch`."""
    x = _data()
    for k in range(BATCHES):
        batch = x[k * BATCH:(k + 1) * BATCH].copy()
        if k == nan_batch:
            batch[5, 0] = np.nan
        yield (batch,)


def _weights(model):
    return [ops.convert_to_numpy(w).copy() for w in model.weights]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stopper", ["terminate_on_nan", "stop_on_nan"])
def test_a_nan_batch_from_a_generator_stops_training_at_that_batch(kind, stopper):
    model = _model(kind)
    before = _weights(model)
    events, recorder = _recorder()
    stop = keras.callbacks.TerminateOnNaN() if stopper == "terminate_on_nan" else StopOnNaN()
    history = model.fit(_batches(nan_batch=3), steps_per_epoch=BATCHES, shuffle=False, verbose=0,
                        callbacks=[stop, recorder])
    assert events == ["train_begin", 0, 1, 2, 3]
    assert model.stop_training and np.isnan(history.history["loss"][-1])
    if stopper == "stop_on_nan":  # no epoch finished: the starting weights are put back
        assert stop.stopped_on_nan
        for old, new in zip(before, _weights(model)):
            np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("kind", KINDS)
def test_a_generator_without_nan_trains_every_batch(kind):
    # The negative control of the test above: same model, data and callbacks, no NaN batch.
    model = _model(kind)
    events, recorder = _recorder()
    history = model.fit(_batches(), steps_per_epoch=BATCHES, shuffle=False, verbose=0,
                        callbacks=[keras.callbacks.TerminateOnNaN(), recorder])
    assert events == ["train_begin"] + list(range(BATCHES))
    assert not model.stop_training and np.isfinite(history.history["loss"][-1])


def test_stop_on_nan_reading_the_loss_every_k_batches_still_stops():
    """check_every=3 (what a GPU run uses, with 50): the running-mean loss stays NaN, so the NaN of batch index 3
    is caught at the check after it (index 5), and a NaN after the last check of an epoch at its end."""
    events, recorder = _recorder()
    stop = StopOnNaN(check_every=3)
    model = _model(KINDS[0])
    model.fit(_batches(nan_batch=3), steps_per_epoch=BATCHES, shuffle=False, verbose=0, callbacks=[stop, recorder])
    assert events == ["train_begin", 0, 1, 2, 3, 4, 5] and stop.stopped_on_nan
    late = StopOnNaN(check_every=BATCHES + 1)  # never checks a batch: only the epoch's end sees the NaN
    model = _model(KINDS[0])
    model.fit(_batches(nan_batch=3), steps_per_epoch=BATCHES, epochs=2, shuffle=False, verbose=0, callbacks=[late])
    assert late.stopped_on_nan and model.stop_training
    with pytest.raises(ValueError, match="check_every"):
        StopOnNaN(check_every=0)
    assert StopOnNaN(check_every=7).get_config() == {"monitor": "loss", "check_every": 7}


def test_stop_on_nan_reading_sparsely_leaves_the_training_thread_free(capsys):
    """With a batch-end callback that is not async-safe, Keras converts every batch's logs to Python floats in the
    training thread: on a GPU a wait for every step, whatever `check_every` says. StopOnNaN reading every k > 1
    batches is async-safe, so on JAX and torch Keras converts the logs in its callback thread; checking every
    batch (a CPU's default) it stays in the training thread and stops at the very batch. TensorFlow's Keras never
    dispatches callbacks to a thread."""
    asynchronous = keras.backend.backend() != "tensorflow"
    threads = ThreadRecorder()
    model = _model(KINDS[0])
    model.fit(_batches(), steps_per_epoch=BATCHES, shuffle=False, verbose=0,
              callbacks=[StopOnNaN(check_every=4), threads])
    assert threads.in_training_thread == {not asynchronous} and len(threads.batches) == BATCHES
    every_batch = ThreadRecorder()
    model.fit(_batches(), steps_per_epoch=BATCHES, shuffle=False, verbose=0, callbacks=[StopOnNaN(), every_batch])
    assert every_batch.in_training_thread == {True}  # the negative control: a check per batch is in the loop

    # A NaN is still caught and the starting weights put back, once, a few batches late at most (the epoch's end).
    # Four times: flagging the stop through `self.model` (on JAX a state sync from Keras's callback thread) failed
    # 4 runs in 6 here with "Array has been deleted" as the training loop donated the buffers being synced.
    for _ in range(4):
        model = _model(KINDS[0])
        before = _weights(model)
        stop, threads = StopOnNaN(check_every=2), ThreadRecorder()
        capsys.readouterr()
        model.fit(_batches(nan_batch=3), steps_per_epoch=BATCHES, epochs=3, shuffle=False, verbose=0,
                  callbacks=[stop, threads])
        assert stop.stopped_on_nan and model.stop_training
        assert 3 <= max(threads.batches) and len(threads.batches) <= BATCHES  # never into a second epoch
        assert capsys.readouterr().out.count("training stopped") == 1
        for old, new in zip(before, _weights(model)):
            np.testing.assert_array_equal(old, new)


def test_stop_on_nan_reused_for_a_second_fit_starts_afresh():
    """A second fit with the same callback: no stale NaN flag, and a NaN puts back that fit's starting weights."""
    stop = StopOnNaN()
    model = _model(KINDS[0])
    model.fit(_batches(nan_batch=3), steps_per_epoch=BATCHES, shuffle=False, verbose=0, callbacks=[stop])
    assert stop.stopped_on_nan
    model.fit(_batches(), steps_per_epoch=BATCHES, shuffle=False, verbose=0, callbacks=[stop])
    assert not stop.stopped_on_nan and not model.stop_training
    trained = _weights(model)
    model.fit(_batches(nan_batch=1), steps_per_epoch=BATCHES, shuffle=False, verbose=0, callbacks=[stop])
    assert stop.stopped_on_nan
    for old, new in zip(trained, _weights(model)):  # this fit's start, not the first fit's
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_numpy_data_is_refused_saying_so(kind):
    model = _model(kind)
    events, recorder = _recorder()
    with pytest.raises(ValueError, match=r"`x` is empty \(shape \(0, 2\)\)"):
        model.fit(np.zeros((0, 2), "float32"), batch_size=BATCH, epochs=1, verbose=0, callbacks=[recorder])
    assert events == []
