"""NICE, RealNVP and Glow as whole models: invertibility, exact log-likelihood, sampling, saving, bad input."""

import warnings

import numpy as np
import pytest
import keras
from keras import ops

import kgen
from kgen import backend as kb
from kgen.flows import NICE, Glow, RealNVP


def _np(x):
    return ops.convert_to_numpy(x)


def _randomise(model, scale=0.05, seed=0):
    """Perturb every trainable weight: zero-initialised couplings would make invertibility tests vacuous."""
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        value = _np(weight)
        weight.assign((value + scale * rng.normal(size=value.shape)).astype(value.dtype))


def _tiny_models():
    return {
        "nice_su": lambda: NICE((8,), hidden=(16, 16)),
        "nice_paper": lambda: NICE((8,), preset="paper", hidden=(16,)),
        "nice_image": lambda: NICE((2, 2, 2), hidden=(16,), scale_init="data"),
        "realnvp_vector": lambda: RealNVP((8,), num_couplings=4, hidden=(16,)),
        "realnvp_su_random": lambda: RealNVP((8,), num_couplings=3, hidden=(16,), permutation="random"),
        "realnvp_image": lambda: RealNVP((4, 4, 1), scales=2, filters=8),
        "glow_openai": lambda: Glow((4, 4, 1), levels=2, depth=2, filters=8),
        "glow_su": lambda: Glow((4, 4, 1), levels=2, depth=2, filters=8, preset="su"),
        "glow_full_w": lambda: Glow((4, 4, 2), levels=1, depth=2, filters=8, permutation="full"),
    }


MODELS = _tiny_models()


def _data(model, n=6, seed=0):
    shape = (n,) + model.data_shape
    return np.random.default_rng(seed).uniform(0.05, 0.95, size=shape).astype("float32")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_decode_encode_is_identity_with_randomised_weights(name):
    model = MODELS[name]()
    x = _data(model)
    model.initialize(x)
    _randomise(model)
    latents = model.encode(x)
    assert [tuple(z.shape[1:]) for z in latents] == [tuple(s) for s in model.latent_shapes]
    assert sum(int(np.prod(s)) for s in model.latent_shapes) == model.num_dims
    back = _np(model.decode(latents))
    np.testing.assert_allclose(back, x, atol=1e-5)
    # Negative control: resampling a factored-out latent must change the reconstruction.
    if len(latents) > 1:
        other = [latents[0] + 1.0] + list(latents[1:])
        assert np.abs(_np(model.decode(other)) - x).max() > 1e-3


@pytest.mark.parametrize("name", sorted(MODELS))
def test_log_prob_is_prior_plus_log_det_of_the_whole_map(name):
    model = MODELS[name]()
    x = _data(model, n=3)
    model.initialize(x)
    _randomise(model, scale=0.1)

    def flat_latents(t):
        return ops.concatenate([ops.reshape(z, (ops.shape(t)[0], -1)) for z in model._encode(t, training=False)[0]],
                               axis=-1)

    jac = _np(kb.jacobian(flat_latents, ops.convert_to_tensor(x)))
    _, logdet = np.linalg.slogdet(jac.reshape(3, model.num_dims, model.num_dims).astype("float64"))
    latents = model.encode(x)
    prior = sum(_np(model.prior.log_prob(z)) for z in latents)
    np.testing.assert_allclose(_np(model.log_prob(x)), prior + logdet, rtol=1e-4, atol=2e-3)


def test_temperature_zero_is_deterministic_and_spread_grows_with_temperature():
    model = RealNVP((8,), num_couplings=4, hidden=(16,))
    model.initialize(_data(model, n=64))
    _randomise(model, scale=0.05)
    np.testing.assert_array_equal(_np(model.sample(5, temperature=0.0)), _np(model.sample(5, temperature=0.0)))
    # Spread across samples, per dimension (the mode path is one point, not one value).
    spreads = [float(np.std(_np(model.sample(400, temperature=t)), axis=0).mean()) for t in (0.0, 0.5, 1.0)]
    assert spreads[0] < 1e-5 < spreads[1] < spreads[2]


@pytest.mark.parametrize("name", ["nice_su", "nice_image", "glow_openai"])
def test_save_load_keeps_log_prob_and_data_initialisation(name, tmp_path):
    model = MODELS[name]()
    x = _data(model)
    model.initialize(x)
    _randomise(model)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(loaded.log_prob(x)), _np(model.log_prob(x)), rtol=1e-5, atol=1e-4)
    assert not loaded.needs_initialization()
    before = [_np(w).copy() for w in loaded.weights]
    loaded.initialize(_data(model, seed=1) * 0.5)   # another batch must not re-initialise anything
    for old, new in zip(before, loaded.weights):
        np.testing.assert_array_equal(old, _np(new))


def test_fit_trains_and_initialises_actnorm_first():
    x = kgen.datasets.dequantize(kgen.datasets.load_digits("train")[0][:128], kgen.datasets.DIGIT_LEVELS, seed=0)
    model = Glow((8, 8, 1), levels=1, depth=2, filters=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert model.needs_initialization()
    history = model.fit(x, batch_size=32, epochs=2, verbose=0)
    assert not model.needs_initialization()
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_the_shape_argument_is_data_shape_and_the_old_name_warns(tmp_path):
    """`data_shape` (the name every model uses) is the argument and the config key; `input_shape=` still builds the
    same model with a DeprecationWarning, and a config saved under the old key loads without one."""
    model = RealNVP(data_shape=(4,), num_couplings=2, hidden=(4,))
    assert model.data_shape == (4,) and model.get_config()["data_shape"] == [4]
    with pytest.warns(DeprecationWarning, match="data_shape"):
        old = RealNVP(input_shape=(4,), num_couplings=2, hidden=(4,))
    assert old.data_shape == (4,)
    with pytest.raises(TypeError, match="data_shape"):
        RealNVP((4,), input_shape=(4,))
    with pytest.raises(TypeError, match="data_shape"):
        NICE(hidden=(4,))
    config = model.get_config()
    config["input_shape"] = config.pop("data_shape")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert RealNVP.from_config(config).data_shape == (4,)


def test_bad_input_is_rejected_with_the_argument_named():
    with pytest.raises(ValueError, match="data_shape"):
        Glow((6, 6, 1), levels=2, depth=1, filters=4)
    with pytest.raises(ValueError, match="x"):
        NICE((7,), hidden=(4,))
    model = RealNVP((4,), num_couplings=2, hidden=(4,))
    with pytest.raises(ValueError, match="NaN"):
        model.log_prob(np.array([[0.1, np.nan, 0.2, 0.3]], "float32"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.log_prob(np.array([[0.1, 1.5, 0.2, 0.3]], "float32"))
    with pytest.raises(TypeError, match=r"kgen\.datasets\.dequantize\(x, levels\)"):
        model.fit(np.zeros((8, 4), "uint8"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"x\[2, 3\]"):
        model.fit(np.where(np.arange(32).reshape(8, 4) == 11, np.inf, 0.5).astype("float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="preset"):
        NICE((4,), preset="mine")
    with pytest.raises(ValueError, match="n"):
        model.sample(0)


@pytest.mark.parametrize("preset", ["su", "paper"])
def test_every_coupling_network_gets_a_gradient_at_initialisation(preset):
    # Regression: a zero-initialised last layer behind Su's ReLU output never moves (relu'(0) = 0).
    model = NICE((8,), preset=preset, hidden=(16,))
    x = ops.convert_to_tensor(_data(model, n=16))
    last_kernels = [layer.net.layers[-1].kernel for layer in model.flow_layers if hasattr(layer, "net")]
    _, grads = kb.gradients(lambda: ops.mean(model(x)), last_kernels)
    assert len(grads) == 4 and all(np.abs(_np(g)).max() > 0 for g in grads)


@pytest.mark.parametrize("name", ["nice_paper", "realnvp_vector"])
def test_every_dimension_is_transformed_by_some_coupling(name):
    # A latent coordinate that depends on a single input coordinate was never updated by a coupling:
    # e.g. reversal plus alternating parity in NICE updates the same half every time. (Not for Su's preset,
    # whose ReLU output units can be off for every input, nor his random permutations, which can leave a
    # dimension untouched by chance with few couplings.)
    model = MODELS[name]()
    x = _data(model, n=16)
    model.initialize(x)
    _randomise(model, scale=0.3)
    jac = _np(kb.jacobian(lambda t: model._encode(t)[0][-1], ops.convert_to_tensor(x)))
    # Over a batch, so that a ReLU unit that happens to be off for one example does not hide a dependency.
    dependencies = (np.abs(jac).max(axis=0) > 1e-6).sum(axis=1)
    assert dependencies.min() > 1, dependencies


def test_tensor_inputs_are_shape_checked_without_a_host_copy(monkeypatch):
    """log_prob / encode check NumPy inputs on the host (range, NaN) but never copy a tensor off the device."""
    model = RealNVP((4,), num_couplings=2, hidden=(8,))
    x = keras.ops.convert_to_tensor(np.full((2, 4), 0.5, "float32"))
    model.log_prob(x)  # builds; then any device-to-host copy in the check would go through convert_to_numpy
    import kgen.flows.model as flow_model

    calls = []
    real = flow_model.ops.convert_to_numpy
    monkeypatch.setattr(flow_model.ops, "convert_to_numpy", lambda v: calls.append(1) or real(v))
    model.log_prob(x)
    model.encode(x)
    assert calls == []
    with pytest.raises(ValueError, match="shape"):
        model.log_prob(keras.ops.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):  # NumPy input: still checked
        model.log_prob(np.array([[0.1, np.nan, 0.2, 0.3]], "float32"))
