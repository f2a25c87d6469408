"""Runs survive faults: SIGKILL mid-training and a re-run resumes; a NaN loss stops and keeps the best weights."""

import csv
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from callback_threads import ThreadRecorder

import kgen
from kgen.app import runs
from kgen.callbacks import StopOnNaN

TRAIN = ["train", "flows", "--model", "nice", "--data", "digits", "--limit", "1024", "--batch-size", "16",
         "--epochs", "6"]


def _kgen(args, **kwargs):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "kgen.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def _logged_epochs(out):
    with open(os.path.join(out, "log.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.mark.jax  # the children run JAX (_kgen); ~60 s that balance make test's two lanes (tools/run_tests.py)
def test_sigkill_mid_training_then_the_same_command_resumes(tmp_path):
    out = str(tmp_path / "run")
    first = _kgen([*TRAIN, "--out", out])
    metadata = os.path.join(out, "backup", "training_metadata.json")
    deadline = time.time() + 240
    while not os.path.exists(metadata) and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "training ended before it could be killed:\n" + first.stdout.read()
    time.sleep(0.3)  # into the next epoch
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    assert not os.path.exists(os.path.join(out, "model.keras"))
    done_before = _logged_epochs(out)
    assert done_before and max(done_before) < 5

    second = _kgen([*TRAIN, "--out", out])
    text, _ = second.communicate(timeout=600)
    assert second.returncode == 0, text
    assert "resuming" in text
    epochs = _logged_epochs(out)
    resumed = epochs[len(done_before):]
    assert resumed[0] >= max(done_before), (done_before, resumed)  # at most the killed epoch is redone
    assert resumed[-1] == 5 and sorted(set(epochs)) == list(range(6))
    model = keras.saving.load_model(os.path.join(out, "model.keras"), safe_mode=True)
    with open(os.path.join(out, "log.csv")) as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    x = kgen.datasets.dequantize(kgen.datasets.load_digits("test")[0][:64], kgen.datasets.DIGIT_LEVELS, seed=1)
    assert np.isfinite(model.bits_per_dim(x, kgen.datasets.DIGIT_LEVELS))


def test_nan_loss_stops_training_and_keeps_the_best_weights(capsys):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [2.0], [3.0]], "float32")
    explode = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 if epoch < 2 else 1e30)
    seen = []
    snapshot = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append([keras.ops.convert_to_numpy(w).copy() for w in model.weights]))
    stop = StopOnNaN()
    history = model.fit(x, y, batch_size=8, epochs=6, verbose=0, callbacks=[explode, snapshot, stop])
    assert stop.stopped_on_nan
    assert len(history.history["loss"]) <= 3  # stopped in the epoch that blew up
    assert "training stopped" in capsys.readouterr().out
    best = int(np.argmin(history.history["loss"][:2]))
    for weight, kept in zip(model.weights, seen[best]):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), kept)
    # Negative control: without the callback the weights are left non-finite.
    bare = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    bare.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    bare.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[explode])
    assert not np.all(np.isfinite(keras.ops.convert_to_numpy(bare.weights[0])))


def test_nan_loss_before_any_epoch_finished_restores_the_starting_weights_and_says_so(capsys):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [2.0], [3.0]], "float32")
    x[20, 0] = np.nan  # batch 3 of the first epoch; batches 1 and 2 move the weights
    start = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    stop = StopOnNaN()
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[stop])
    message = capsys.readouterr().out
    assert stop.stopped_on_nan
    assert "at epoch 1, batch 3" in message and "no epoch has finished" in message
    assert "best finished epoch" not in message and "inf" not in message
    for weight, kept in zip(model.weights, start):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), kept)


def test_a_runs_epoch_backup_leaves_the_training_loop_free_and_still_resumes(tmp_path):
    """`kgen run` backs up at every epoch's end with `_EpochBackup`, which is async-safe: beside StopOnNaN's sparse
    check (an accelerator's default) Keras reads the logs in its callback thread on JAX and torch, not in the
    loop. Keras's own BackupAndRestore keeps them in the loop (negative control; TensorFlow's Keras always does)."""
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    asynchronous = keras.backend.backend() != "tensorflow"
    ours, theirs = str(tmp_path / "ours"), str(tmp_path / "theirs")
    for backup, directory, free in ((runs._EpochBackup(ours), ours, asynchronous),
                                    (keras.callbacks.BackupAndRestore(theirs, save_freq="epoch",
                                                                      delete_checkpoint=False), theirs, False)):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        threads = ThreadRecorder()
        model.fit(x, x[:, :1], batch_size=8, epochs=2, verbose=0,
                  callbacks=[backup, StopOnNaN(check_every=4), threads])
        assert threads.in_training_thread == {not free}, directory
        assert os.path.exists(os.path.join(directory, "training_metadata.json"))
    # The same backup resumes: asked for 3 epochs after 2, the fit runs the third only.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    history = model.fit(x, x[:, :1], batch_size=8, epochs=3, verbose=0, callbacks=[runs._EpochBackup(ours)])
    assert len(history.history["loss"]) == 1


@pytest.mark.jax
def test_train_sample_export_round_trip(tmp_path):
    out = str(tmp_path / "run")
    path = runs.train("flows", data="digits", epochs=1, out=out, model="realnvp", limit=128, verbose=0)
    assert os.path.exists(path) and os.listdir(os.path.join(out, "samples"))
    png = runs.sample(out, n=16)
    assert os.path.getsize(png) > 0
    named = str(tmp_path / "grid.png")
    assert runs.sample(out, n=4, path=named) == named and os.path.getsize(named) > 0
    exported = runs.export(out, format="onnx")
    assert os.path.getsize(exported) > 0
    with pytest.raises(ValueError, match="different run"):
        runs.train("flows", data="digits", epochs=1, out=out, model="nice", limit=128, verbose=0)


def test_bad_run_arguments_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="`family` must be one of"):
        runs.train("nope", data="digits", epochs=1, out=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="`data` must be one of"):
        runs.train("flows", data="nope", epochs=1, out=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="`epochs`"):
        runs.train("flows", data="digits", epochs=0, out=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="not a finished kgen run"):
        runs.sample(str(tmp_path / "missing"))
    assert not os.path.exists(tmp_path / "a")


@pytest.mark.tensorflow  # the TF lane of make test has room; the JAX lane carries the statistical gates
@pytest.mark.parametrize("family, data, model", [("diffusion", "digits", "unet"), ("gans", "animals", "dcgan")])
def test_diffusion_and_gan_runs_train_sample_and_export(family, data, model, tmp_path):
    out = str(tmp_path / family)
    path = runs.train(family, data=data, epochs=1, out=out, model=model, limit=64, verbose=0)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded).__name__ in ("DiffusionModel", "GAN")
    grids = os.listdir(os.path.join(out, "samples"))
    assert len(grids) == 1
    png = runs.sample(out, n=4)
    assert os.path.getsize(png) > 0
    assert os.path.getsize(runs.export(out, format="onnx")) > 0
    light = runs.export(out, format="keras")  # without the optimizers: smaller, uncompiled, the same samples
    assert light == os.path.join(out, "inference.keras") and os.path.getsize(light) < os.path.getsize(path)
    inference = keras.saving.load_model(light, safe_mode=True)
    assert reloaded.compiled and not inference.compiled
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(inference.sample(2, seed=1)),
                                  keras.ops.convert_to_numpy(reloaded.sample(2, seed=1)))


@pytest.mark.tensorflow
def test_unilm_run_decodes_held_out_text_and_exports_its_generate_endpoint(tmp_path):
    import tensorflow as tf

    from kgen.datasets.text import SEP_ID, toy_seq2seq

    out = str(tmp_path / "unilm")
    path = runs.train("unilm", data="reverse", epochs=1, out=out, limit=256, verbose=0)
    model = keras.saving.load_model(path, safe_mode=True)
    assert os.listdir(os.path.join(out, "samples")) == ["samples_epoch001.txt"]
    written = runs.sample(out, n=5)
    assert written.endswith(".txt")
    with open(written, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("reverse: exact match on 5 held-out sources:") and len(lines) == 6
    assert all("[CLS]" in line and "→" in line for line in lines[1:])
    served = tf.saved_model.load(runs.export(out, format="saved_model"))
    test = toy_seq2seq("reverse", 6, split="test", seed=1)
    expected = keras.ops.convert_to_numpy(model.generate(test["source_ids"], test["target_ids"].shape[1], end_id=SEP_ID))
    np.testing.assert_array_equal(served.generate(tf.constant(test["source_ids"])).numpy(), expected)


@pytest.mark.jax
@pytest.mark.parametrize("old, new, name", [("kgen.runs", "kgen.app.runs", "train"),
                                            ("kgen.runs", "kgen.app.presets", "diffusion_model"),
                                            ("kgen.demo", "kgen.app.demo", "write_demo")])
def test_the_old_module_paths_still_work_and_warn(old, new, name):
    import importlib

    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=new.rpartition(".")[0]):
        module = importlib.reload(module)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
