"""DiffusionModel: loss oracles, min-SNR weights, multi-scale loss, fit, EMA, reload, sampling gate."""

import keras
import numpy as np
import pytest
from keras import ops

import kgen
from kgen.diffusion import CosineSchedule, LinearSchedule
from kgen.diffusion.losses import min_snr_weight
from kgen.diffusion.model import DiffusionModel
from kgen.diffusion.predictions import alpha_sigma, eps_from_prediction
from kgen.diffusion.testing import GaussianDenoiser, GaussianMixtureDenoiser
from kgen.diffusion.unet import UNet
from kgen.diffusion.unet_layers import LogSNREmbedding

TINY = dict(channels=8, channel_mults=(1, 1), num_res_blocks=1, attention_resolutions=(), norm_groups=4)


def _np(x):
    return ops.convert_to_numpy(ops.stop_gradient(x))  # torch: losses and raw outputs carry gradients


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class OracleNetwork(keras.Model):
    """The exact denoiser of Gaussian data, as a network predicting ε, x₀ or v from [z, λ]."""

    def __init__(self, denoiser, prediction):
        super().__init__()
        self.denoiser, self.prediction = denoiser, prediction
        self.built = True

    def call(self, inputs):
        z, logsnr = inputs
        return getattr(self.denoiser, self.prediction)(z, logsnr)


class ZeroNetwork(keras.Model):
    """Predicts 0 whatever the input (so the loss residual is minus the target)."""

    def __init__(self):
        super().__init__()
        self.built = True

    def call(self, inputs):
        return ops.zeros_like(inputs[0])


def mlp_network(dim=2, width=64, depth=3, num_classes=None):
    """Any Keras network on [x, λ] (+ labels) works: here an MLP on x, the λ features and a label embedding."""
    x, logsnr = keras.Input((dim,)), keras.Input(())
    inputs, features = [x, logsnr], [x, LogSNREmbedding(32, max_frequency=4.0)(logsnr)]
    if num_classes is not None:  # label `num_classes` is the null label
        labels = keras.Input((), dtype="int32")
        inputs.append(labels)
        features.append(keras.layers.Embedding(num_classes + 1, 8)(labels))
    h = keras.layers.Concatenate()(features)
    for _ in range(depth):
        h = keras.layers.Dense(width, activation="silu")(h)
    return keras.Model(inputs, keras.layers.Dense(dim)(h))


def digits_in_unit_range(n):
    images, _ = kgen.datasets.load_digits("train")
    return (images[:n].astype("float32") / 8.0 - 1.0)


# ---------------------------------------------------------------------------------------------- weights, targets
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_min_snr_weight_matches_the_formula(prediction):
    logsnr = np.linspace(-12.0, 12.0, 25).astype("float32")
    snr, gamma = np.exp(logsnr.astype(np.float64)), 5.0
    expected = {"eps": np.minimum(snr, gamma) / snr, "x0": np.minimum(snr, gamma),
                "v": np.minimum(snr, gamma) / (snr + 1.0)}[prediction]
    np.testing.assert_allclose(_np(min_snr_weight(logsnr, prediction, gamma)), expected, rtol=1e-5)


def test_min_snr_weights_are_one_weighting_in_x_space():
    # ‖ε̂−ε‖² = SNR ‖x̂−x‖², ‖v̂−v‖² = (SNR+1) ‖x̂−x‖²: all three weight min(SNR, γ) ‖x̂−x‖².
    logsnr = np.linspace(-8.0, 8.0, 17).astype("float32")
    snr = np.exp(logsnr.astype(np.float64))
    w = {p: _np(min_snr_weight(logsnr, p, 5.0)).astype(np.float64) for p in ("eps", "x0", "v")}
    np.testing.assert_allclose(w["eps"] * snr, w["x0"], rtol=1e-5)
    np.testing.assert_allclose(w["v"] * (snr + 1.0), w["x0"], rtol=1e-5)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_target_converts_back_to_the_noise_exactly(prediction):
    model = DiffusionModel(mlp_network(3), CosineSchedule(), prediction=prediction, ema_decay=None)
    rng = np.random.default_rng(0)
    x, noise = rng.uniform(-1, 1, (6, 3)).astype("float32"), rng.standard_normal((6, 3)).astype("float32")
    logsnr = np.linspace(-6.0, 6.0, 6).astype("float32")
    alpha, sigma = alpha_sigma(ops.convert_to_tensor(logsnr), ops.convert_to_tensor(x))
    z = alpha * x + sigma * noise
    target = model.target(ops.convert_to_tensor(x), ops.convert_to_tensor(noise), alpha, sigma)
    np.testing.assert_allclose(_np(eps_from_prediction(prediction, target, z, logsnr)), noise, atol=2e-4)


def test_unknown_prediction_and_weighting_raise_listing_the_choices():
    with pytest.raises(ValueError, match=r"\['eps', 'x0', 'v'\]"):
        DiffusionModel(mlp_network(2), CosineSchedule(), prediction="score")
    with pytest.raises(ValueError, match="min_snr"):
        DiffusionModel(mlp_network(2), CosineSchedule(), loss_weighting="snr")
    with pytest.raises(ValueError, match="image data"):
        DiffusionModel(mlp_network(2), CosineSchedule(), multiscale=True)


# ---------------------------------------------------------------------------------------------- loss oracles
COV = np.diag([0.2, 1.0, 3.0])


def _posterior_variance_x0(logsnr):
    """E‖x̂* − x‖²/D for x ~ N(0, COV): mean over d of c σ²/(α² c + σ²)."""
    a2, s2, c = _sigmoid(logsnr)[..., None], _sigmoid(-logsnr)[..., None], np.diag(COV)
    return np.mean(c * s2 / (a2 * c + s2), axis=-1)


def _expected_loss(logsnr, prediction, weighting=None):
    snr = np.exp(logsnr)
    factor = {"eps": snr, "x0": 1.0, "v": snr + 1.0}[prediction]
    loss = factor * _posterior_variance_x0(logsnr)
    if weighting == "min_snr":
        loss = loss * _np(min_snr_weight(logsnr.astype("float32"), prediction, 5.0))
    return loss


def _gaussian_model(prediction, schedule, weighting=None, cov=COV):
    network = OracleNetwork(GaussianDenoiser(np.zeros(3), cov), prediction)
    return DiffusionModel(network, schedule, prediction=prediction, loss_weighting=weighting, ema_decay=None,
                          data_shape=(3,))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_loss_of_the_optimal_denoiser_is_the_posterior_error(prediction):
    rng = np.random.default_rng(1)
    n = 20000
    x = (rng.standard_normal((n, 3)) @ np.sqrt(COV)).astype("float32")
    noise = rng.standard_normal((n, 3)).astype("float32")
    schedule = CosineSchedule()
    model = _gaussian_model(prediction, schedule)
    # Negative control: the optimal denoiser of the wrong data law N(0, I) (9% to 27% worse here).
    worse = _gaussian_model(prediction, schedule, cov=np.eye(3))
    for t in (0.2, 0.5, 0.8):
        times = np.full((n,), t, "float32")
        expected = _expected_loss(schedule.logsnr_numpy(t), prediction)
        measured = float(np.mean(_np(model.per_example_loss(x, times, noise))))
        assert abs(measured / expected - 1.0) < 0.04, (t, measured, expected)
        assert float(np.mean(_np(worse.per_example_loss(x, times, noise)))) > 1.05 * expected


@pytest.mark.parametrize("prediction, weighting, schedule", [
    ("eps", None, CosineSchedule()), ("v", "min_snr", CosineSchedule()), ("x0", "min_snr", LinearSchedule()),
    ("eps", "min_snr", LinearSchedule())])
def test_training_loss_is_the_time_average_of_the_posterior_error(prediction, weighting, schedule):
    # compute_loss draws t ~ U[0, 1] (t = i/T on discrete schedules): its mean is the integral over t.
    rng = np.random.default_rng(2)
    n = 20000
    x = (rng.standard_normal((n, 3)) @ np.sqrt(COV)).astype("float32")
    model = _gaussian_model(prediction, schedule, weighting)
    if schedule.num_steps is None:
        grid = np.linspace(0.0, 1.0, 4001)
        expected = np.trapezoid(_expected_loss(schedule.logsnr_numpy(grid), prediction, weighting), grid)
    else:
        grid = np.arange(1, schedule.num_steps + 1) / schedule.num_steps
        expected = np.mean(_expected_loss(schedule.logsnr_numpy(grid), prediction, weighting))
    measured = float(_np(model.compute_loss(x=ops.convert_to_tensor(x), training=False)))
    assert abs(measured / expected - 1.0) < 0.05, (measured, expected)


def test_multiscale_loss_averages_pooled_squared_residuals():
    net = ZeroNetwork()  # the residual is −ε
    model = DiffusionModel(net, CosineSchedule(), multiscale=True, ema_decay=None, data_shape=(8, 8, 1))
    plain = DiffusionModel(net, CosineSchedule(), multiscale=False, ema_decay=None, data_shape=(8, 8, 1))
    assert model.multiscale_factors == (1, 2)  # 8×8 and 4×4 (pooled images stay >= 4×4)
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (5, 8, 8, 1)).astype("float32")
    noise = rng.standard_normal((5, 8, 8, 1)).astype("float32")
    t = np.full((5,), 0.5, "float32")
    pooled = noise.reshape(5, 4, 2, 4, 2, 1).mean(axis=(2, 4))
    expected = 0.5 * ((noise ** 2).mean(axis=(1, 2, 3)) + (pooled ** 2).mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(_np(model.per_example_loss(x, t, noise)), expected, rtol=1e-5)
    np.testing.assert_allclose(_np(plain.per_example_loss(x, t, noise)), (noise ** 2).mean(axis=(1, 2, 3)),
                               rtol=1e-5)


# ---------------------------------------------------------------------------------------------- fit, EMA, reload
@pytest.fixture(scope="module")
def trained():
    """A tiny UNet ε-model on 8×8 digits: one exact step, then a few epochs (one compiled train step)."""
    kgen.utils.set_seed(0)
    x = digits_in_unit_range(64)
    model = DiffusionModel(UNet((8, 8, 1), **TINY), CosineSchedule(), ema_decay=0.9, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    rng = np.random.default_rng(4)
    t_eval = np.linspace(0.05, 0.95, 64).astype("float32")
    noise_eval = rng.standard_normal(x.shape).astype("float32")

    def eval_loss():
        return float(np.mean(_np(model.per_example_loss(x, t_eval, noise_eval))))

    weights = model.network.trainable_variables
    record = {"loss_before": eval_loss(), "w0": [_np(v.value) for v in weights]}
    model.fit(x[:32], batch_size=32, epochs=1, verbose=0)  # exactly one optimizer step
    record["w1"] = [_np(v.value) for v in weights]
    record["ema1"] = [_np(v.value) for v in model.ema.averages]
    model.fit(x, batch_size=32, epochs=8, shuffle=False, verbose=0)
    record["loss_after"] = eval_loss()
    return model, x, record


def test_fit_decreases_the_loss(trained):
    _, _, record = trained
    assert record["loss_after"] < 0.8 * record["loss_before"], record["loss_after"]


def test_ema_after_one_step_is_the_documented_average(trained):
    model, _, record = trained
    d = model.ema_decay
    moved = max(np.abs(a - b).max() for a, b in zip(record["w0"], record["w1"]))
    assert moved > 1e-4  # the step changed the weights, so the check below can fail
    for ema, w0, w1 in zip(record["ema1"], record["w0"], record["w1"]):
        np.testing.assert_allclose(ema, d * w0 + (1.0 - d) * w1, atol=1e-6)


def test_ema_folds_each_step_once_inside_the_compiled_step():
    model = DiffusionModel(mlp_network(2, width=16), CosineSchedule(), ema_decay=0.8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = np.random.default_rng(7).uniform(-1, 1, (64, 2)).astype("float32")
    weights, d = model.network.trainable_variables, model.ema_decay
    start = [_np(v.value) for v in model.ema.averages]
    model.train_on_batch(x[:32])  # folds nothing yet (no step has been taken)
    w1 = [_np(v.value) for v in weights]
    model.train_on_batch(x[32:])  # folds w1 at the start of the step
    w2 = [_np(v.value) for v in weights]
    mid = [_np(v.value) for v in model.ema.averages]
    model.finish_ema()  # folds w2
    end = [_np(v.value) for v in model.ema.averages]
    for s, m, e, a, b in zip(start, mid, end, w1, w2):
        np.testing.assert_allclose(m, d * s + (1 - d) * a, atol=1e-6)
        np.testing.assert_allclose(e, d * m + (1 - d) * b, atol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(end, w2)) > 1e-4  # the average is not the weights
    model.finish_ema()  # nothing pending: no change
    for e, v in zip(end, model.ema.averages):
        np.testing.assert_array_equal(e, _np(v.value))


def test_eps_fn_uses_the_ema_weights(trained):
    model, _, _ = trained
    z = np.random.default_rng(5).standard_normal((3, 8, 8, 1)).astype("float32")
    logsnr = np.array([-2.0, 0.0, 2.0], "float32")
    with_ema, raw = _np(model.eps_fn(z, logsnr)), _np(model.eps_fn(z, logsnr, use_ema=False))
    assert np.abs(with_ema - raw).max() > 1e-5
    np.testing.assert_allclose(raw, _np(model.network([z, logsnr])), atol=1e-6)


def test_reload_with_safe_mode_gives_identical_eps_fn(trained, tmp_path):
    model, _, _ = trained
    path = str(tmp_path / "diffusion.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    z = np.random.default_rng(6).standard_normal((3, 8, 8, 1)).astype("float32")
    logsnr = np.array([-4.0, 1.0, 5.0], "float32")
    for use_ema in (True, False):
        np.testing.assert_array_equal(_np(loaded.eps_fn(z, logsnr, use_ema=use_ema)),
                                      _np(model.eps_fn(z, logsnr, use_ema=use_ema)))
    assert loaded.get_config() == model.get_config()


def test_sample_returns_images_of_the_data_shape(trained):
    model, _, _ = trained
    images = _np(model.sample(3, steps=2, seed=0))
    assert images.shape == (3, 8, 8, 1) and np.all(np.isfinite(images))


def test_conditional_model_trains_on_labels_and_samples_with_guidance():
    model = DiffusionModel(mlp_network(2, width=16, num_classes=3), CosineSchedule(), prediction="x0",
                           ema_decay=None, num_classes=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x, labels = np.random.default_rng(8).uniform(-1, 1, (32, 2)).astype("float32"), np.arange(32) % 3
    with pytest.raises(ValueError, match="labels"):
        model.fit(x, epochs=1, verbose=0)
    model.fit(x, labels, batch_size=16, epochs=1, verbose=0)
    z, logsnr = np.ones((2, 2), "float32"), np.zeros((2,), "float32")
    eps = [_np(model.eps_fn(z, logsnr, labels=k)) for k in (0, 1, None)]  # None: the null label
    assert np.abs(eps[0] - eps[1]).max() > 1e-6 and np.abs(eps[0] - eps[2]).max() > 1e-6
    images = _np(model.sample(2, steps=2, seed=0, labels=[0, 2], guidance_scale=2.0))
    assert images.shape == (2, 2) and np.all(np.isfinite(images))


# ---------------------------------------------------------------------------------------------- JAX gate
class MixtureOracleNetwork(keras.Model):
    """The exact ε of a Gaussian mixture, as a network (the best any trained network can do)."""

    def __init__(self, oracle):
        super().__init__()
        self.oracle = oracle
        self.built = True

    def call(self, inputs):
        return self.oracle.eps(inputs[0], inputs[1])


@pytest.mark.jax
def test_mlp_diffusion_recovers_a_gaussian_mixture():
    """An MLP v-model trained briefly on an 8-mode ring, sampled with 50 DDIM steps.

    Stated tolerances: every mode weight within 0.03 of 1/8 (binomial 3σ for 4000 samples is 0.016), > 95% of
    samples within 4 std of a centre, within-mode spread within 50% of the true 0.08 (measured 0.106; the exact
    mixture denoiser with the same sampler gets 0.076, so the gap is the short training, not the sampler).
    """
    std, scale = 0.08, 0.35  # ring of radius 0.7 (data within [-1, 1]), component std 0.08
    centres = scale * kgen.datasets.toy2d_modes("ring8")[0]
    x = scale * kgen.datasets.toy2d("ring8", 8192, seed=0, std=std / scale)

    def statistics(points):
        distance = np.linalg.norm(points[:, None, :] - centres[None], axis=-1)
        weights = np.bincount(distance.argmin(axis=1), minlength=8) / len(points)
        on_mode = distance.min(axis=1) < 4 * std
        spread = np.sqrt(np.mean(distance.min(axis=1)[on_mode] ** 2) / 2)
        return np.abs(weights - 1 / 8).max(), on_mode.mean(), spread

    # A schedule shifted towards low noise (λ + 2 log 4): the fine scale of this data lives at high SNR.
    schedule = kgen.diffusion.shifted(CosineSchedule(), 0.25)
    model = DiffusionModel(mlp_network(2, width=128), schedule, prediction="v", ema_decay=None, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, 60 * 32)))
    model.fit(x, batch_size=256, epochs=60, verbose=0)
    weight_error, on_mode, spread = statistics(_np(model.sample(4000, steps=50, seed=0)))
    assert weight_error < 0.03 and on_mode > 0.95 and abs(spread / std - 1.0) < 0.5, (weight_error, on_mode, spread)
    # Reference: the exact denoiser through the same DiffusionModel.sample path.
    oracle = GaussianMixtureDenoiser(np.ones(8), centres, std ** 2 * np.eye(2))
    exact = DiffusionModel(MixtureOracleNetwork(oracle), schedule, ema_decay=None, data_shape=(2,))
    _, exact_on_mode, exact_spread = statistics(_np(exact.sample(4000, steps=50, seed=0)))
    assert exact_on_mode > 0.99 and abs(exact_spread / std - 1.0) < 0.1, exact_spread
    # Negative control: samples of the prior N(0, I) fail the gate.
    _, prior_on_mode, _ = statistics(np.random.default_rng(0).standard_normal((4000, 2)))
    assert prior_on_mode < 0.5
