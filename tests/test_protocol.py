"""The one protocol of kgen.base, checked for every family on the current backend.

`sample(4, seed=s)` twice gives the same tensor, another seed differs, a seeded call leaves the model's own
generator untouched, unseeded calls differ, and every value lies in `value_range`.
"""

import keras
import numpy as np
import pytest

import kgen
from kgen.base import EnergyModel, GenerativeModel, LikelihoodModel
from kgen.diffusion import CosineSchedule, DiffusionModel
from kgen.diffusion.unet import LogSNREmbedding


def _flow():
    return kgen.flows.RealNVP((4,), num_couplings=2, hidden=(8,))  # logit preprocessing: samples in (0, 1)


def _unbounded_flow():
    return kgen.flows.RealNVP((4,), num_couplings=2, hidden=(8,), logit_alpha=None)


def _networks(data_dim=4, latent_dim=2):
    generator = keras.Sequential([keras.Input((latent_dim,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(data_dim, activation="tanh")])
    discriminator = keras.Sequential([keras.Input((data_dim,)), keras.layers.Dense(8, activation="relu"),
                                      keras.layers.Dense(1)])
    return generator, discriminator


def _gan():
    return kgen.gans.GAN(*_networks(), loss="hinge")


def _energy_gan():
    return kgen.gans.EnergyGAN(*_networks(), entropy=None)


def _diffusion():
    x, logsnr = keras.Input((4,)), keras.Input(())
    h = keras.layers.Concatenate()([x, LogSNREmbedding(8, max_frequency=4.0)(logsnr)])
    network = keras.Model([x, logsnr], keras.layers.Dense(4)(keras.layers.Dense(16, activation="silu")(h)))
    return DiffusionModel(network, CosineSchedule(), ema_decay=None)


FAMILIES = {"flow": _flow, "unbounded_flow": _unbounded_flow, "gan": _gan, "energy_gan": _energy_gan,
            "diffusion": _diffusion}
OPTIONS = {"diffusion": {"steps": 4}}  # a short chain: the protocol, not the quality, is under test


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _generator_state(model):
    return _np(model.seed_generator.state)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sample_follows_the_protocol(family):
    model, options = FAMILIES[family](), OPTIONS.get(family, {})
    assert isinstance(model, GenerativeModel)
    state = _generator_state(model)
    first = model.sample(4, seed=3, **options)
    assert keras.ops.is_tensor(first), type(first)
    assert tuple(first.shape) == (4,) + tuple(model.data_shape)
    np.testing.assert_array_equal(_np(first), _np(model.sample(4, seed=3, **options)))
    assert not np.allclose(_np(first), _np(model.sample(4, seed=4, **options)))
    np.testing.assert_array_equal(_generator_state(model), state)  # seeded calls leave the model's generator
    a, b = _np(model.sample(4, **options)), _np(model.sample(4, **options))
    assert not np.allclose(a, b)
    assert not np.array_equal(_generator_state(model), state)
    if model.value_range is not None:
        low, high = model.value_range
        values = np.concatenate([_np(first), a, b])
        assert values.min() >= low - 1e-5 and values.max() <= high + 1e-5, (values.min(), values.max())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_n_and_seed_are_checked_and_options_are_keywords(family):
    model, options = FAMILIES[family](), OPTIONS.get(family, {})
    with pytest.raises((TypeError, ValueError), match="`n`"):
        model.sample(0, **options)
    with pytest.raises(TypeError, match="`seed`"):
        model.sample(2, seed=1.5, **options)
    with pytest.raises(TypeError):
        model.sample(2, 3)  # everything after n is a keyword


def test_value_ranges_say_where_the_data_lives():
    assert _flow().value_range == (0.0, 1.0)
    assert _unbounded_flow().value_range is None
    assert _gan().value_range == (-1.0, 1.0) and _diffusion().value_range == (-1.0, 1.0)
    assert kgen.gans.GAN(*_networks(), value_range=None).value_range is None
    with pytest.raises(ValueError, match="value_range"):
        kgen.gans.GAN(*_networks(), value_range=(1.0, -1.0))


def test_scores_exist_only_where_the_family_has_them():
    assert isinstance(_flow(), LikelihoodModel)
    for model in (_gan(), _energy_gan()):
        assert isinstance(model, EnergyModel) and not hasattr(model, "log_prob")
    assert not isinstance(_diffusion(), LikelihoodModel) and not isinstance(_diffusion(), EnergyModel)


def test_value_range_survives_a_reload(tmp_path):
    model = kgen.gans.GAN(*_networks(), value_range=(0.0, 1.0))
    path = str(tmp_path / "gan.keras")
    model.save(path)
    assert keras.saving.load_model(path, safe_mode=True).value_range == (0.0, 1.0)
