"""Upsample Guidance: operators, the rescaled low-resolution input, reductions, exactness under independence,
and the research note's 1-D stationary toy (UG beats the baselines and every ablation)."""

import keras
import numpy as np
import pytest
from keras import ops

from kgen import backend as kb
from kgen.diffusion import (ClassifierFreeGuidance, CosineSchedule, DDIMSampler, DDPMSampler, LinearSchedule,
                            UpsampleGuidance)
from kgen.diffusion.guidance import average_pool, nearest_upsample
from kgen.diffusion.predictions import per_example
from kgen.diffusion.testing import (GaussianDenoiser, PeriodicWienerDenoiser, circulant, propagate_gaussian,
                                    w2_gaussian)


def _np(x):
    return ops.convert_to_numpy(x).astype(np.float64)


def _compiled(fn, *args):
    """Evaluate `fn(*args)` as one compiled function (JAX's eager op-by-op dispatch is slow) -> NumPy."""
    out = kb.compile_function(fn)(*[ops.convert_to_tensor(a) for a in args])
    return tuple(_np(o) for o in out) if isinstance(out, (tuple, list)) else _np(out)


def _operator_matrix(fn, shape):
    """The matrix of a linear map on tensors of `shape` (batch 1), read off on the standard basis."""
    size = int(np.prod(shape))
    basis = np.eye(size, dtype="float32").reshape((size,) + shape)
    return _np(fn(ops.convert_to_tensor(basis))).reshape(size, -1).T


def _smooth_model():
    """A small nonlinear conv 'network' usable at any resolution (the plain model in reduction tests)."""
    conv = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer=keras.initializers.RandomNormal(seed=0))
    conv.build((None, None, None, 1))

    def eps_fn(x, logsnr):
        return ops.tanh(conv(x)) * (1.0 + 0.1 * ops.reshape(logsnr, (-1, 1, 1, 1)))

    return eps_fn, conv


@pytest.mark.parametrize("shape,scale", [((2, 6, 4, 3), 2), ((1, 9, 6, 2), 3), ((2, 8, 1), 4), ((1, 4, 4, 4, 1), 2)])
def test_average_pool_of_nearest_upsample_is_identity(shape, scale):
    small = np.random.default_rng(0).normal(size=shape).astype("float32")
    np.testing.assert_allclose(_np(average_pool(nearest_upsample(small, scale), scale)), small, atol=1e-6)


def test_upsample_after_pool_is_an_orthogonal_projector():
    p = _operator_matrix(lambda x: nearest_upsample(average_pool(x, 2), 2), (4, 6, 1))
    np.testing.assert_allclose(p @ p, p, atol=1e-6)
    np.testing.assert_allclose(p, p.T, atol=1e-6)
    assert np.isclose(np.trace(p), 6.0)  # rank = number of 2×2 blocks


def test_pooled_white_noise_has_variance_one_over_k():
    noise = np.random.default_rng(1).normal(size=(100, 64, 64, 1)).astype("float32")
    np.testing.assert_allclose(np.var(_np(average_pool(noise, 2))), 1 / 4, rtol=0.01)
    np.testing.assert_allclose(np.var(_np(average_pool(noise[..., 0], 4))), 1 / 4, rtol=0.01)  # 1-D: k = s


@pytest.mark.parametrize("shape,k", [((3, 8, 8, 2), 4.0), ((3, 8, 2), 2.0)])
def test_rescaled_low_resolution_input_has_unit_power_and_k_times_the_snr(shape, k):
    ug = UpsampleGuidance(lambda x, l: x, CosineSchedule(), scale=2, clip_logsnr=False)
    logsnr = np.array([-4.0, 0.0, 3.0], "float32")
    alpha, sigma = np.sqrt(1 / (1 + np.exp(-logsnr))), np.sqrt(1 / (1 + np.exp(logsnr)))
    # D x / ρ is linear: feed the signal and the noise parts separately.
    inv_rho, logsnr_low = _compiled(ug.low_resolution_input, np.ones(shape, "float32"), logsnr)
    inv_rho = inv_rho.reshape(3, -1)[:, 0]
    alpha_low, sigma_low = alpha * inv_rho, sigma * inv_rho / np.sqrt(k)  # pooled noise has std 1/√k
    np.testing.assert_allclose(alpha_low**2 + sigma_low**2, 1.0, atol=1e-6)
    np.testing.assert_allclose(logsnr_low - logsnr, np.log(k), atol=1e-6)
    np.testing.assert_allclose(alpha_low, np.sqrt(1 / (1 + np.exp(-logsnr_low))), atol=1e-6)


def test_w_zero_returns_the_plain_model_and_scale_one_adds_nothing():
    eps_fn, _ = _smooth_model()
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 1)).astype("float32")
    logsnr = np.array([-1.0, 2.0], "float32")
    wrappers = [UpsampleGuidance(eps_fn, CosineSchedule(), scale, w=w) for scale, w in ((2, 0.0), (1, 1.5), (2, 1.0))]
    plain, w_zero, scale_one, guided = _compiled(lambda x, l: [eps_fn(x, l)] + [ug(x, l) for ug in wrappers],
                                                 x, logsnr)
    np.testing.assert_array_equal(w_zero, plain)
    np.testing.assert_allclose(scale_one, plain, atol=1e-6)
    # Negative control: with s = 2 and w = 1 the output does change.
    assert np.abs(guided - plain).max() > 1e-3


def test_time_gate_returns_the_plain_model_on_late_steps_only():
    eps_fn, _ = _smooth_model()
    schedule = CosineSchedule()
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 1)).astype("float32")
    ug = UpsampleGuidance(eps_fn, schedule, 2, w=1.2, eta=0.3)
    ungated = UpsampleGuidance(eps_fn, schedule, 2, w=1.2)
    late = schedule.logsnr_numpy([0.5, 0.6]).astype("float32")  # t < 1 − η: off
    mixed = schedule.logsnr_numpy([0.9, 0.5]).astype("float32")  # per example: on, off
    gated_late, plain_late, gated, ungated_out, plain = _compiled(
        lambda x, a, b: (ug(x, a), eps_fn(x, a), ug(x, b), ungated(x, b), eps_fn(x, b)), x, late, mixed)
    np.testing.assert_array_equal(gated_late, plain_late)
    np.testing.assert_allclose(gated[0], ungated_out[0], atol=1e-6)
    np.testing.assert_array_equal(gated[1], plain[1])
    assert np.abs(gated[0] - plain[0]).max() > 1e-3  # negative control: UG is on for the early example


def _independent_parts_law(correlated):
    """4×4 images whose coarse part D x₀ and detail (I − UD) x₀ are independent (or not, as a control)."""
    rng = np.random.default_rng(4)
    down = _operator_matrix(lambda x: average_pool(x, 2), (4, 4, 1))  # (4, 16)
    up = down.T * 4
    detail = np.eye(16) - up @ down
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(16, 16))
    cov_coarse, cov_detail = a @ a.T / 4 + 0.1 * np.eye(4), b @ b.T / 16
    cov = up @ cov_coarse @ up.T + detail @ cov_detail @ detail.T
    if correlated:
        c = rng.normal(size=(16, 16))
        cov = cov + 0.5 * c @ c.T / 16
    return cov, down @ cov @ down.T


@pytest.mark.parametrize("correlated", [False, True])
def test_ug_equals_exact_high_resolution_eps_when_coarse_and_detail_are_independent(correlated):
    cov, cov_low = _independent_parts_law(correlated)
    high, low = GaussianDenoiser(np.zeros(16), cov), GaussianDenoiser(np.zeros(4), cov_low)
    ug = UpsampleGuidance(high, CosineSchedule(), 2, w=1.0, low_resolution_eps_fn=low)
    x = np.random.default_rng(5).normal(size=(6, 4, 4, 1)).astype("float32")
    logsnr = np.linspace(-6, 6, 6).astype("float32")
    error = np.abs(_compiled(lambda x, l: ug(x, l) - high(x, l), x, logsnr)).max()
    if correlated:
        assert error > 1e-2  # negative control: the main term is only exact under independence
    else:
        assert error <= 1e-5


def test_compiled_sampler_with_gated_ug_and_cfg_matches_a_loop_of_single_steps():
    eps_fn, conv = _smooth_model()
    schedule = CosineSchedule()
    guided = ClassifierFreeGuidance(UpsampleGuidance(eps_fn, schedule, 2, w=1.2, eta=0.6),
                                    UpsampleGuidance(lambda x, l: 0.5 * eps_fn(x, l), schedule, 2, w=1.2, eta=0.6),
                                    guidance_scale=3.0)
    sampler = DDPMSampler(schedule, 6)  # stochastic; UG's gate switches off halfway (ops.cond in the loop)
    rng = np.random.default_rng(6)
    x_t, noise = rng.normal(size=(2, 8, 8, 1)).astype("float32"), rng.normal(size=(6, 2, 8, 8, 1)).astype("float32")
    compiled = _np(sampler.sample(guided, x_t, noise=noise))
    one_step = kb.compile_function(
        lambda x, i, z: sampler.step(guided(x, per_example(sampler.take("logsnr", i, x), x)), i, x, z), state=[conv])
    x = ops.convert_to_tensor(x_t)
    for i in range(6):  # the same update, one call per step from Python
        x = one_step(x, ops.convert_to_tensor(i, dtype="int32"), ops.convert_to_tensor(noise[i]))
    np.testing.assert_allclose(compiled, _np(x), rtol=1e-4, atol=1e-4)


def _toy():
    """Research note UG5: 64-px periodic field, squared-exponential covariance (length 6 px), s = 2."""
    lag = np.arange(64)
    cov_high = circulant(sum(np.exp(-((lag + 64 * m) ** 2) / (2 * 6.0**2)) for m in range(-3, 4)))
    down = np.kron(np.eye(32), [[0.5, 0.5]])
    return cov_high, down @ cov_high @ down.T, down


@pytest.mark.jax
def test_ug_beats_naive_and_upsampled_baselines_and_every_ablation_on_the_stationary_toy():
    cov_high, cov_low, down = _toy()
    cnn = PeriodicWienerDenoiser(cov_low[0])  # exact at 32 px, the same taps at 64 px
    schedule, sampler = LinearSchedule(), DDIMSampler(LinearSchedule(), 100)
    basis = np.eye(64, dtype="float32")[:, :, None]

    def w2(eps_fn):  # deterministic DDIM of a linear model is linear: read it off, push N(0, I) through
        matrix = _np(sampler.sample(eps_fn, basis))[:, :, 0].T
        return w2_gaussian(np.zeros(64), matrix @ matrix.T, np.zeros(64), cov_high)

    oracle = GaussianDenoiser(np.zeros(64), cov_high)
    up = down.T * 2
    scores = {
        "naive": w2(cnn),
        "upsampled": w2_gaussian(np.zeros(64), up @ cov_low @ up.T, np.zeros(64), cov_high),
        "oracle": w2_gaussian(*propagate_gaussian(sampler, oracle), np.zeros(64), cov_high),
        "ug": w2(UpsampleGuidance(cnn, schedule, 2, w=1.0)),
    }
    for ablation in ("time_shift", "rescale", "noise_scale"):
        scores[ablation] = w2(UpsampleGuidance(cnn, schedule, 2, w=1.0, ablate=(ablation,)))
    assert scores["ug"] < scores["upsampled"] < scores["naive"], scores
    assert scores["ug"] - scores["oracle"] < 0.05, scores
    assert all(scores[a] > scores["upsampled"] for a in ("time_shift", "rescale", "noise_scale")), scores


def test_bad_input_raises_value_error():
    eps_fn, _ = _smooth_model()
    ug = UpsampleGuidance(eps_fn, CosineSchedule(), 2)
    with pytest.raises(ValueError, match="divisible"):
        ug(np.zeros((1, 5, 4, 1), "float32"), np.zeros((1,), "float32"))
    for scale in (0, -2, 0.5, 1.5):
        with pytest.raises(ValueError, match="scale"):
            UpsampleGuidance(eps_fn, CosineSchedule(), scale)
    with pytest.raises(ValueError, match="ablate"):
        UpsampleGuidance(eps_fn, CosineSchedule(), 2, ablate=("rho",))
    with pytest.raises(ValueError, match="eta"):
        UpsampleGuidance(eps_fn, CosineSchedule(), 2, eta=0.0)
    with pytest.raises(TypeError, match="schedule"):
        UpsampleGuidance(eps_fn, None, 2)
