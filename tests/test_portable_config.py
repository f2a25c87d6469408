"""A `.keras` file saved on one backend loads and trains on the others (`kgen.backend.portable_config`).

On torch, `keras.optimizers.Adam(...)` is torch's own subclass, and Keras 3.15 writes that subclass's module
into the compile config (`keras.src.backend.torch.optimizers.torch_adam`). Loaded on JAX or TF, such a file
used to get torch's optimizer, whose first `fit` step failed inside torch; the shipped Upsample Guidance pair
(trained on torch) could not be trained further on JAX. The files here are written on the current backend and
then given the compile config torch writes, so every backend's lane checks the loading side.
"""

import json
import zipfile

import keras
import numpy as np
import pytest

import kgen
from kgen.backend import portable_config
from kgen.diffusion import CosineSchedule, DiffusionModel
from kgen.diffusion.unet import LogSNREmbedding
from kgen.metrics.classifiers import saved_models_dir

TORCH_ADAM = {"module": "keras.src.backend.torch.optimizers.torch_adam", "class_name": "Adam",
              "registered_name": "Adam"}


def _flow():
    model = kgen.flows.RealNVP((4,), num_couplings=2, hidden=(8,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, np.random.default_rng(0).uniform(0.1, 0.9, (64, 4)).astype("float32")


def _diffusion():
    x, logsnr = keras.Input((4,)), keras.Input(())
    h = keras.layers.Concatenate()([x, LogSNREmbedding(8, max_frequency=4.0)(logsnr)])
    network = keras.Model([x, logsnr], keras.layers.Dense(4)(keras.layers.Dense(16, activation="silu")(h)))
    model = DiffusionModel(network, CosineSchedule(), ema_decay=0.9)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, np.random.default_rng(0).normal(size=(64, 4)).astype("float32")


def _gan():
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(4, activation="tanh")])
    discriminator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                                      keras.layers.Dense(1)])
    model = kgen.gans.GAN(generator, discriminator, loss="hinge", seed=0)
    model.compile(optimizers={"generator": keras.optimizers.Adam(1e-3),
                              "discriminator": keras.optimizers.Adam(1e-3)})
    return model, np.random.default_rng(0).uniform(-0.9, 0.9, (64, 4)).astype("float32")


FAMILIES = {"flow": _flow, "diffusion": _diffusion, "gan": _gan}


def _optimizers(model):
    """The optimizers whose state a reload must restore: a GAN's per network, else `model.optimizer`."""
    return list(getattr(model, "network_optimizers", {}).values()) or [model.optimizer]


def _as_torch_writes_it(config):
    """`config` with every Adam written as the torch backend writes it; returns (config, count of Adams)."""
    if isinstance(config, list):
        pairs = [_as_torch_writes_it(item) for item in config]
        return [c for c, _ in pairs], sum(n for _, n in pairs)
    if not isinstance(config, dict):
        return config, 0
    pairs = {key: _as_torch_writes_it(value) for key, value in config.items()}
    out, count = {key: c for key, (c, _) in pairs.items()}, sum(n for _, n in pairs.values())
    if out.get("class_name") == "Adam" and out.get("module") in ("keras.optimizers", TORCH_ADAM["module"]):
        out.update(TORCH_ADAM)
        count += 1
    return out, count


def _rewrite_as_torch_saved(path):
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config, count = _as_torch_writes_it(json.loads(entries["config.json"]))
    assert count > 0, "the file names no Adam: nothing to make torch-like"
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_torch_saved_file_reloads_with_this_backends_optimizer_and_trains(family, tmp_path):
    model, x = FAMILIES[family]()
    model.fit(x, batch_size=32, epochs=1, verbose=0)
    path = str(tmp_path / f"{family}.keras")
    model.save(path)
    _rewrite_as_torch_saved(path)

    loaded = keras.saving.load_model(path)
    own = type(keras.optimizers.Adam())  # this backend's Adam class
    for optimizer in _optimizers(loaded):
        assert type(optimizer) is own, (type(optimizer).__module__, own.__module__)
        assert int(optimizer.iterations) == 2  # the saved optimizer state came back
    history = loaded.fit(x, batch_size=32, epochs=1, verbose=0)
    assert all(np.isfinite(values[-1]) for values in history.history.values()), history.history
    assert all(int(optimizer.iterations) == 4 for optimizer in _optimizers(loaded))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_compile_configs_name_only_public_optimizers(family):
    """What every backend writes (on torch this is the part that used to name torch's classes)."""
    model, _ = FAMILIES[family]()
    text = json.dumps(model.get_compile_config())
    assert "keras.src.backend" not in text, text
    assert '"keras.optimizers"' in text


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="imports torch beside this backend: one lane is enough")
def test_keras_alone_builds_torchs_optimizer_from_a_torch_config():
    """Negative control: the torch-written entry, deserialized by Keras as it is, gives torch's class on JAX."""
    raw = dict(TORCH_ADAM, config=keras.optimizers.Adam(1e-3).get_config())
    assert type(keras.saving.deserialize_keras_object(raw)).__module__.startswith("keras.src.backend.torch.")
    fixed = keras.saving.deserialize_keras_object(portable_config(raw))
    assert type(fixed) is type(keras.optimizers.Adam())


def test_portable_config_rewrites_nested_optimizers_and_nothing_else():
    inner = dict(TORCH_ADAM, config={"learning_rate": 1e-3})
    scaled = {"module": "keras.optimizers", "class_name": "LossScaleOptimizer", "registered_name": None,
              "config": {"inner_optimizer": inner, "initial_scale": 2.0}}
    other = {"module": "keras.src.backend.torch.optimizers.torch_adam", "class_name": "NotAnOptimizer",
             "registered_name": "NotAnOptimizer"}
    layer = {"module": "keras.src.backend.torch.core", "class_name": "Variable", "registered_name": None}
    config = {"optimizer": scaled, "others": [other, layer], "loss": None}
    before = json.dumps(config, sort_keys=True)

    out = portable_config(config)
    assert out["optimizer"]["config"]["inner_optimizer"] == {"module": "keras.optimizers", "class_name": "Adam",
                                                             "registered_name": None,
                                                             "config": {"learning_rate": 1e-3}}
    assert out["optimizer"]["config"]["initial_scale"] == 2.0
    assert out["others"] == [other, layer]  # not a Keras optimizer name, not an optimizer module: kept
    assert out["loss"] is None
    assert json.dumps(config, sort_keys=True) == before  # the input is not modified
    assert portable_config(None) is None


@pytest.mark.parametrize("path", sorted(saved_models_dir().glob("*.keras")), ids=lambda path: path.name)
def test_shipped_files_name_no_backend_class(path):
    """Every shipped model loads and trains on every backend: its config names no backend-specific class.
    (The Upsample Guidance pair, trained on torch, had `torch_adam` here until its config went through
    `portable_config`; its weights are byte for byte the torch-trained ones.)"""
    with zipfile.ZipFile(path) as archive:
        text = archive.read("config.json").decode()
    assert "keras.src.backend" not in text
