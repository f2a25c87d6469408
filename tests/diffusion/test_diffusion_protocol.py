"""DiffusionModel follows kgen's one protocol (kgen.base): seeds, value_range, keyword-only options, no `state=`,
the dtype policy and old schedule configs on reload, and the deprecated names of issue 19 still working."""

import functools
import os
import warnings

import keras
import numpy as np
import pytest
from keras import ops

import kgen
from kgen import diffusion
from kgen.base import GenerativeModel
from kgen.diffusion import (ClassifierFreeGuidance, CosineSchedule, DDIMSampler, DDPMSampler, DiffusionModel,
                            DiffusionSampler, EpsFunction, LinearSchedule, UpsampleGuidance, schedules, shifted)
from kgen.diffusion.predictions import state_of
from kgen.diffusion.unet_layers import LogSNREmbedding

SAVED_MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "saved_models")


def _np(x):
    return ops.convert_to_numpy(ops.stop_gradient(x))


def _mlp(dim=2):
    x, logsnr = keras.Input((dim,)), keras.Input(())
    h = keras.layers.Concatenate()([x, LogSNREmbedding(8, max_frequency=4.0)(logsnr)])
    h = keras.layers.Dense(16, activation="silu")(h)
    return keras.Model([x, logsnr], keras.layers.Dense(dim)(h))


class LoudNetwork(keras.Model):
    """Predicts ε̂ = −3 z_t: x̂₀ = (z_t + 3σ z_t)/α runs far outside [−1, 1] unless clipped."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def call(self, inputs):
        return -3.0 * inputs[0]


def _model(**kwargs):
    return DiffusionModel(_mlp(), CosineSchedule(), ema_decay=None, **kwargs)


def _state(model):
    return _np(model.seed_generator.state.value).copy()


# ---------------------------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_int_seed_gives_the_same_samples_and_another_seed_differs(sampler):
    model = _model()
    first = _np(model.sample(4, seed=3, steps=4, sampler=sampler))
    again = _np(model.sample(4, seed=3, steps=4, sampler=sampler))
    other = _np(model.sample(4, seed=4, steps=4, sampler=sampler))
    assert isinstance(model, GenerativeModel) and first.shape == (4, 2)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3  # negative control


def test_int_seed_leaves_the_models_seed_generator_untouched():
    model = _model()
    before = _state(model)
    model.sample(4, seed=3, steps=3, sampler="ddpm")
    np.testing.assert_array_equal(_state(model), before)
    model.sample(4, steps=3, sampler="ddpm")  # negative control: seed=None draws from the model's generator
    assert not np.array_equal(_state(model), before)


def test_int_seed_keeps_the_values_of_the_previous_release():
    # x_T from `seed`, the per-step noise from `seed + 1`: shipped-model numbers stay what they were.
    model = _model()
    chain = model.make_sampler("ddpm", 3, clip_denoised=1.0)
    x_T = keras.random.normal((4, 2), seed=5)
    noise = keras.random.normal((3, 4, 2), seed=6)
    expected = _np(chain.sample(model.eps_fn, x_T, noise=noise))
    np.testing.assert_allclose(_np(model.sample(4, seed=5, steps=3, sampler="ddpm")), expected, atol=1e-6)


def test_options_after_n_are_keyword_only():
    model = _model()
    with pytest.raises(TypeError):
        model.sample(4, 10)  # steps positionally: refused


# ---------------------------------------------------------------------------------------------- value_range
def test_default_clipping_keeps_samples_in_value_range_and_none_does_not():
    model = DiffusionModel(LoudNetwork(), CosineSchedule(), ema_decay=None, data_shape=(2,))
    assert model.value_range == (-1.0, 1.0)
    clipped = _np(model.sample(64, seed=0, steps=5))
    assert clipped.min() >= -1.0 - 1e-6 and clipped.max() <= 1.0 + 1e-6
    np.testing.assert_array_equal(clipped, _np(model.sample(64, seed=0, steps=5, clip_denoised=1.0)))  # as before
    unclipped = _np(model.sample(64, seed=0, steps=5, clip_denoised=None))
    assert np.abs(unclipped).max() > 2.0  # negative control


def test_value_range_none_means_unbounded_and_no_clipping_by_default():
    model = DiffusionModel(LoudNetwork(), CosineSchedule(), ema_decay=None, data_shape=(2,), value_range=None)
    free = _np(model.sample(64, seed=0, steps=5))
    np.testing.assert_array_equal(free, _np(model.sample(64, seed=0, steps=5, clip_denoised=None)))
    assert np.abs(free).max() > 2.0


def test_other_value_range_clips_to_it():
    model = DiffusionModel(LoudNetwork(), CosineSchedule(), ema_decay=None, data_shape=(2,), value_range=(0, 2))
    images = _np(model.sample(64, seed=0, steps=5))
    assert images.min() >= -1e-6 and images.max() <= 2.0 + 1e-6


@pytest.mark.parametrize("bad", [(1.0, -1.0), "wide", (0.0,)])
def test_bad_value_range_raises(bad):
    with pytest.raises(ValueError, match="value_range"):
        _model(value_range=bad)


# ---------------------------------------------------------------------------------------------- samplers, state
def test_make_sampler_clips_to_the_value_range_like_sample_and_none_is_the_exact_chain():
    model = _model()
    assert model.make_sampler("ddim", 5).clip_denoised == (-1.0, 1.0)
    assert model.make_sampler("ddim", 5, clip_denoised=None).clip_denoised is None
    assert _model(value_range=None).make_sampler("ddim", 5).clip_denoised is None
    assert DDIMSampler(model.schedule, 5).clip_denoised is None  # a bare schedule knows no data range


def test_readme_sampler_line_needs_no_state_and_sees_new_weights():
    model = _model()
    x_T = keras.random.normal((4, 2), seed=0)
    chain = model.make_sampler("ddim", 5)
    before = _np(chain.sample(model.eps_fn, x_T))  # compiled (jax.jit on JAX); the model's state is found
    np.testing.assert_allclose(before, _np(model.sample(4, seed=0, steps=5)), atol=1e-5)  # same default clipping
    model.network.set_weights([0.5 * w for w in model.network.get_weights()])
    after = _np(chain.sample(model.eps_fn, x_T))
    assert np.abs(after - before).max() > 1e-4  # the compiled loop reads the current weights
    np.testing.assert_allclose(after, _np(model.make_sampler("ddim", 5).sample(model.eps_fn, x_T)), atol=1e-5)


def test_state_is_found_from_bound_methods_partials_closures_and_wrappers():
    model, net = _model(), _mlp()
    partial = functools.partial(model.eps_fn, use_ema=False)
    closure = lambda x_t, logsnr: net([x_t, logsnr])  # noqa: E731
    assert state_of(model.eps_fn) == [model] and state_of(partial) == [model] and state_of(closure) == [net]
    assert state_of(ClassifierFreeGuidance(partial, closure, 2.0)) == [model, net]
    assert state_of(UpsampleGuidance(EpsFunction(closure, "v"), CosineSchedule(), 1)) == [net]
    assert state_of(lambda x_t, logsnr: 0.0 * x_t) == []


def test_step_can_return_the_denoised_estimate():
    sampler = DDPMSampler(LinearSchedule(), 4)
    x_t = keras.random.normal((3, 2), seed=1)
    eps, noise = keras.random.normal((3, 2), seed=2), keras.random.normal((3, 2), seed=3)
    x_next, x0 = sampler.step(eps, 1, x_t, noise, return_x0=True)
    np.testing.assert_allclose(_np(x_next), _np(sampler.step(eps, 1, x_t, noise)), atol=1e-6)
    np.testing.assert_allclose(_np(x0), _np(sampler.denoise(eps, 1, x_t)), atol=1e-6)
    last, last_x0 = sampler.step(eps, 3, x_t, noise, return_x0=True)
    np.testing.assert_allclose(_np(last), _np(last_x0), atol=1e-5)  # the last step lands on x̂₀


# ---------------------------------------------------------------------------------------------- saving
def test_dtype_policy_and_value_range_survive_reload(tmp_path):
    model = _model(dtype="float64", value_range=None)
    assert model.dtype_policy.name == "float64"
    path = str(tmp_path / "diffusion.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.dtype_policy.name == "float64" and loaded.value_range is None
    mine = {k: v for k, v in model.get_config().items() if k != "network"}  # a functional net renames its layers
    assert {k: v for k, v in loaded.get_config().items() if k != "network"} == mine


def test_old_format_schedule_config_loads():
    old = {"class_name": "ShiftedSchedule",
           "config": {"schedule": {"class_name": "CosineSchedule", "config": {"logsnr_min": -15.0, "logsnr_max": 15.0}},
                      "scale": 2.0}}
    config = _model().get_config()
    config["schedule"] = old
    model = DiffusionModel.from_config(config)
    np.testing.assert_allclose(model.schedule.logsnr_numpy([0.3]), shifted(CosineSchedule(), 2).logsnr_numpy([0.3]))
    assert model.get_config()["schedule"]["registered_name"] == "kgen>ShiftedSchedule"  # saved in Keras's format


def test_shipped_model_with_the_old_schedule_format_loads():
    path = os.path.join(SAVED_MODELS, "diffusion14_animals.keras")
    if not os.path.exists(path):
        pytest.skip("saved_models/diffusion14_animals.keras is not in this checkout")
    model = keras.saving.load_model(path)
    assert isinstance(model.schedule, CosineSchedule) and model.value_range == (-1.0, 1.0)
    assert model.get_config()["schedule"] == schedules.serialize(CosineSchedule())  # saved again in Keras's format
    eps = _np(model.eps_fn(np.zeros((1, 14, 14, 1), "float32"), np.zeros((1,), "float32")))
    assert eps.shape == (1, 14, 14, 1) and np.all(np.isfinite(eps))


# ---------------------------------------------------------------------------------------------- deprecated names
def _warns(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    assert any(issubclass(w.category, DeprecationWarning) for w in caught), [str(w.message) for w in caught]
    return result


def test_deprecated_aliases_warn_and_work():
    model = _model()
    chain = _warns(lambda: model.sampler("ddpm", 5))
    assert isinstance(chain, DDPMSampler) and chain.steps == 5
    assert _warns(lambda: diffusion.Sampler) is DiffusionSampler
    assert _warns(lambda: kgen.diffusion.samplers.Sampler) is DiffusionSampler
    x_t, eps, noise = (keras.random.normal((3, 2), seed=s) for s in (1, 2, 3))
    np.testing.assert_array_equal(_np(_warns(lambda: chain.step(eps, 0, x_t, z=noise))),
                                  _np(chain.step(eps, 0, x_t, noise=noise)))
    np.testing.assert_array_equal(_warns(lambda: chain.coefficients()["c_z"]), chain.coefficients()["c_noise"])
    np.testing.assert_array_equal(_np(_warns(lambda: model.eps_fn(x=x_t, logsnr=ops.zeros((3,))))),
                                  _np(model.eps_fn(x_t, ops.zeros((3,)))))
    ddim = DDIMSampler(CosineSchedule(), 4)
    x_T = keras.random.normal((3, 2), seed=4)
    expected = _np(ddim.sample(model.eps_fn, x_T))
    np.testing.assert_allclose(_np(_warns(lambda: ddim.sample(model.eps_fn, x_T, state=[model]))), expected)
    _warns(lambda: ddim.invert(model.eps_fn, x_T, state=[model]))
    for make in (lambda: ClassifierFreeGuidance(model.eps_fn, model.eps_fn, 2.0, state=[model]),
                 lambda: UpsampleGuidance(model.eps_fn, CosineSchedule(), 1, state=[model]),
                 lambda: EpsFunction(model.eps_fn, "v", state=[model])):
        assert state_of(_warns(make))[0] is model


def test_old_import_paths_still_work():
    from kgen.diffusion import losses, model, unet, unet_layers

    assert model.min_snr_weight is losses.min_snr_weight and diffusion.min_snr_weight is losses.min_snr_weight
    assert unet.GroupNorm is unet_layers.GroupNorm and unet.ResBlock is unet_layers.ResBlock
    assert unet.LogSNREmbedding is unet_layers.LogSNREmbedding and unet.SelfAttention2D is unet_layers.SelfAttention2D


def test_schedules_serialize_with_keras_and_register_is_deprecated():
    config = schedules.serialize(shifted(LinearSchedule(100), 3))
    assert config == keras.saving.serialize_keras_object(shifted(LinearSchedule(100), 3))
    again = keras.saving.deserialize_keras_object(config)
    np.testing.assert_allclose(again.logsnr_numpy([0.1, 0.9]), shifted(LinearSchedule(100), 3).logsnr_numpy([0.1, 0.9]))

    class Doubled(CosineSchedule):
        pass

    assert _warns(lambda: schedules.register(Doubled)) is Doubled
    assert isinstance(schedules.deserialize({"class_name": "Doubled", "config": {}}), Doubled)
