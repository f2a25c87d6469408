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
PUBLIC_ADAM = {"module": "keras.optimizers", "class_name": "Adam", "registered_name": None}
# What another backend writes into a file: torch its own Adam class and jit_compile=False ("auto" resolved on
# torch), JAX the public Adam and jit_compile=True.
WRITERS = {"torch": (TORCH_ADAM, False), "jax": (PUBLIC_ADAM, True)}


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


def _with_adams_as(config, adam):
    """`config` with every Adam entry replaced by `adam`'s module and names; returns (config, count of Adams)."""
    if isinstance(config, list):
        pairs = [_with_adams_as(item, adam) for item in config]
        return [c for c, _ in pairs], sum(n for _, n in pairs)
    if not isinstance(config, dict):
        return config, 0
    pairs = {key: _with_adams_as(value, adam) for key, value in config.items()}
    out, count = {key: c for key, (c, _) in pairs.items()}, sum(n for _, n in pairs.values())
    if out.get("class_name") == "Adam" and out.get("module") in (PUBLIC_ADAM["module"], TORCH_ADAM["module"]):
        out.update(adam)
        count += 1
    return out, count


def _rewrite_as_written_by(path, writer):
    adam, jit_compile = WRITERS[writer]
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config, count = _with_adams_as(json.loads(entries["config.json"]), adam)
    assert count > 0, "the file names no Adam: nothing to rewrite"
    if "jit_compile" in config["compile_config"]:  # a GAN's compile config holds only its optimizers
        config["compile_config"]["jit_compile"] = jit_compile
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_file_from_another_backend_reloads_compiled_as_this_backend_compiles(family, writer, tmp_path):
    model, x = FAMILIES[family]()
    model.fit(x, batch_size=32, epochs=1, verbose=0)
    path = str(tmp_path / f"{family}.keras")
    model.save(path)
    _rewrite_as_written_by(path, writer)

    loaded = keras.saving.load_model(path)
    assert loaded.jit_compile == model.jit_compile  # this backend's "auto", not the writer's
    own = type(keras.optimizers.Adam())  # this backend's Adam class
    for optimizer in _optimizers(loaded):
        assert type(optimizer) is own, (type(optimizer).__module__, own.__module__)
        assert int(optimizer.iterations) == 2  # the saved optimizer state came back
    history = loaded.fit(x, batch_size=32, epochs=1, verbose=0)
    assert all(np.isfinite(values[-1]) for values in history.history.values()), history.history
    assert all(int(optimizer.iterations) == 4 for optimizer in _optimizers(loaded))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_compile_configs_name_only_public_optimizers(family):
    """What every backend writes (on torch this is the part that used to name torch's classes), and the
    compile decision left to the backend that loads it."""
    model, _ = FAMILIES[family]()
    config = model.get_compile_config()
    text = json.dumps(config)
    assert "keras.src.backend" not in text, text
    assert '"keras.optimizers"' in text
    assert config.get("jit_compile", "auto") == "auto"


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="imports torch beside this backend: one lane is enough")
def test_keras_alone_builds_torchs_optimizer_from_a_torch_config():
    """Negative control: the torch-written entry, deserialized by Keras as it is, gives torch's class on JAX."""
    raw = dict(TORCH_ADAM, config=keras.optimizers.Adam(1e-3).get_config())
    assert type(keras.saving.deserialize_keras_object(raw)).__module__.startswith("keras.src.backend.torch.")
    fixed = keras.saving.deserialize_keras_object(portable_config(raw))
    assert type(fixed) is type(keras.optimizers.Adam())


def test_portable_config_rewrites_nested_optimizers_and_jit_compile_and_nothing_else():
    inner = dict(TORCH_ADAM, config={"learning_rate": 1e-3})
    scaled = {"module": "keras.optimizers", "class_name": "LossScaleOptimizer", "registered_name": None,
              "config": {"inner_optimizer": inner, "initial_scale": 2.0}}
    other = {"module": "keras.src.backend.torch.optimizers.torch_adam", "class_name": "NotAnOptimizer",
             "registered_name": "NotAnOptimizer"}
    layer = {"module": "keras.src.backend.torch.core", "class_name": "Variable", "registered_name": None}
    config = {"optimizer": scaled, "others": [other, layer], "loss": None, "jit_compile": False,
              "run_eagerly": True}
    before = json.dumps(config, sort_keys=True)

    out = portable_config(config)
    assert out["optimizer"]["config"]["inner_optimizer"] == {"module": "keras.optimizers", "class_name": "Adam",
                                                             "registered_name": None,
                                                             "config": {"learning_rate": 1e-3}}
    assert out["optimizer"]["config"]["initial_scale"] == 2.0
    assert out["others"] == [other, layer]  # not a Keras optimizer name, not an optimizer module: kept
    assert out["loss"] is None
    assert out["jit_compile"] == "auto" and out["run_eagerly"] is True  # the user's debugging choice is kept
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
