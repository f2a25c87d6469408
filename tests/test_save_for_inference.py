"""kgen.export.save_for_inference: the `.keras` file without optimizer state samples exactly as the model."""

import os
import zipfile

import h5py
import keras
import numpy as np
import pytest

import kgen
from kgen.flows import RealNVP
from kgen.gans import GAN, networks


def _weight_groups(path):
    """Top-level entries of the weights file inside a `.keras` zip ("optimizer", "generator", ...)."""
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as f, h5py.File(f, "r") as h5:
        def names(group, prefix=""):
            out = []
            for key, item in group.items():
                out.append(prefix + key)
                if isinstance(item, h5py.Group):
                    out += names(item, prefix + key + "/")
            return out
        return names(h5)


@pytest.fixture(scope="module")
def trained_gan():
    """A tiny BatchNorm GAN with an EMA of G, compiled with two Adams and fitted for two steps."""
    g = networks.generator((8, 8, 1), latent_dim=3, width=2)
    d = networks.discriminator((8, 8, 1), width=2)
    model = GAN(g, d, loss="hinge", ema_decay=0.5, seed=3)
    model.compile(optimizers={"generator": keras.optimizers.Adam(1e-2, 0.5),
                              "discriminator": keras.optimizers.Adam(1e-2, 0.5)})
    x = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 1)).astype("float32")
    model.fit(x, batch_size=4, epochs=1, verbose=0)
    return model, x


def test_gan_file_drops_the_optimizers_and_samples_the_same(trained_gan, tmp_path):
    model, x = trained_gan
    full, bare = str(tmp_path / "full.keras"), str(tmp_path / "bare.keras")
    model.save(full)
    assert kgen.export.save_for_inference(model, bare) == bare
    # Negative control: Keras's own file carries the optimizer state, and this one does not.
    assert any("optimizer" in name for name in _weight_groups(full))
    assert not any("optimizer" in name for name in _weight_groups(bare))
    assert os.path.getsize(bare) < os.path.getsize(full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.keras", "full.keras"]  # no temporary left
    a = keras.saving.load_model(full, safe_mode=True)
    b = keras.saving.load_model(bare, safe_mode=True)
    assert a.compiled and not b.compiled
    z = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    for use_ema in (True, False):  # the average and the live generator both survive
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(b.generate(z, use_ema=use_ema)),
                                      keras.ops.convert_to_numpy(a.generate(z, use_ema=use_ema)))
    # The live and averaged generators differ, so the comparison above can tell them apart.
    assert np.abs(keras.ops.convert_to_numpy(b.generate(z, use_ema=True) - b.generate(z, use_ema=False))).max() > 1e-4
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(b.critic(x, training=False)),
                                  keras.ops.convert_to_numpy(a.critic(x, training=False)))
    # The seed state is kept: both files continue the model's random stream with the same draws.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(b.sample(4)), keras.ops.convert_to_numpy(a.sample(4)))
    # Compiled again, the reloaded model trains on.
    b.compile(optimizers={"generator": keras.optimizers.Adam(1e-3), "discriminator": keras.optimizers.Adam(1e-3)})
    history = b.fit(x, batch_size=4, epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())


def test_flow_file_keeps_the_density(tmp_path):
    model = RealNVP((4,), num_couplings=2, hidden=(8,), logit_alpha=None, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    path = kgen.export.save_for_inference(model, tmp_path / "flow.keras")
    assert not any("optimizer" in name for name in _weight_groups(path))
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.log_prob(x)),
                               keras.ops.convert_to_numpy(model.log_prob(x)), rtol=1e-6, atol=1e-6)


def test_bad_requests_fail_before_writing(trained_gan, tmp_path):
    model, _ = trained_gan
    with pytest.raises(TypeError, match="`model`"):
        kgen.export.save_for_inference("not a model", tmp_path / "a.keras")
    with pytest.raises(TypeError, match="`path`"):
        kgen.export.save_for_inference(model, 3)
    with pytest.raises(ValueError, match="'.keras'"):
        kgen.export.save_for_inference(model, tmp_path / "a.h5")
    with pytest.raises(ValueError, match="not built"):  # no shapes yet, so no weights to write
        kgen.export.save_for_inference(keras.Sequential([keras.layers.Dense(2)]), tmp_path / "unbuilt.keras")
    existing = tmp_path / "existing.keras"
    existing.write_bytes(b"keep me")
    with pytest.raises(ValueError, match="overwrite=True"):
        kgen.export.save_for_inference(model, existing)
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.keras"]  # nothing else left behind
    kgen.export.save_for_inference(model, existing, overwrite=True)
    assert zipfile.is_zipfile(existing)
