"""The shipped animal GANs load with safe_mode and reproduce the FDs recorded in saved_models/gans_animals.json
(JAX: each file's seed state gives the same latents): selfmod_animals.keras (the article's SELF-MOD, trained on an
H200, 12 375 steps) and selfmod_sndcgan_animals.keras (SELF-MOD's generator with the SNDCGAN critic, 12 000 CPU
steps, saved without optimizer state)."""

import json
import os

import keras
import numpy as np
import pytest

from kgen.datasets import load_animals
from kgen.metrics import feature_model, frechet_distance, gaussian_statistics
from kgen.metrics.classifiers import saved_models_dir


with open(os.path.join(saved_models_dir(), "gans_animals.json")) as f:
    SHIPPED = json.load(f)["shipped"]


def test_every_shipped_animal_gan_is_recorded_and_small():
    files = sorted(name for name in os.listdir(saved_models_dir()) if name.startswith("selfmod")
                   and name.endswith("_animals.keras"))
    assert files == sorted(entry["file"] for entry in SHIPPED)
    assert all(os.path.getsize(os.path.join(saved_models_dir(), name)) < 8e6 for name in files)


@pytest.mark.jax
@pytest.mark.parametrize("recorded", SHIPPED, ids=[entry["file"] for entry in SHIPPED])
def test_shipped_gan_reproduces_its_fd(recorded):
    model = keras.saving.load_model(os.path.join(saved_models_dir(), recorded["file"]), safe_mode=True)
    features = feature_model("animals")
    test = load_animals("test")[0].astype("float32") / 255.0
    reference = gaussian_statistics(features.predict(test, verbose=0))
    fake = np.concatenate([keras.ops.convert_to_numpy(model.generate(500)) for _ in range(4)])
    assert fake.min() >= -1.0 and fake.max() <= 1.0
    fd = frechet_distance(*reference, *gaussian_statistics(features.predict(fake * 0.5 + 0.5, verbose=0)))
    assert abs(fd - recorded["fd"]) < 0.05 * recorded["fd"], (fd, recorded["fd"])
    # Negative control: the untrained generator of the same architecture is far away.
    untrained = keras.models.clone_model(model.generator)
    noise = np.random.default_rng(0).normal(size=(2000,) + model.latent_shape).astype("float32")
    bad = untrained.predict(noise, batch_size=500, verbose=0)
    assert frechet_distance(*reference, *gaussian_statistics(features.predict(bad * 0.5 + 0.5, verbose=0))) > 5 * fd
