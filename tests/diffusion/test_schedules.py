"""Schedules (log-SNR form) and timestep grids: identities, inverses, serialisation, grid properties."""

import decimal
import json

import numpy as np
import pytest
from keras import ops

from kgen import backend as kb
from kgen.diffusion import CosineSchedule, LinearSchedule, interpolated, schedules, shifted
from kgen.diffusion.grids import times, timesteps

T_GRID = np.linspace(0.0, 1.0, 101)


def _all_schedules():
    return {
        "linear": LinearSchedule(),
        "linear_short": LinearSchedule(num_steps=10, beta_start=1e-3, beta_end=0.2),
        "cosine": CosineSchedule(),
        "shifted_cosine": shifted(CosineSchedule(), 4),
        "shifted_linear": shifted(LinearSchedule(), 2),
        "interpolated": interpolated(CosineSchedule(), 2, 16),
    }


SCHEDULES = _all_schedules()


def _np(x):
    return ops.convert_to_numpy(x).astype(np.float64)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_alpha_squared_plus_sigma_squared_is_one(name):
    s = SCHEDULES[name]
    alpha, sigma = _np(s.alpha(T_GRID)), _np(s.sigma(T_GRID))
    np.testing.assert_allclose(alpha**2 + sigma**2, 1.0, atol=1e-6)
    np.testing.assert_allclose(np.log(alpha**2 / sigma**2), _np(s.logsnr(T_GRID)), atol=2e-3)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_logsnr_strictly_decreasing_and_agrees_with_numpy_twin(name):
    s = SCHEDULES[name]
    values = s.logsnr_numpy(T_GRID)
    assert np.all(np.diff(values) < 0)
    np.testing.assert_allclose(_np(s.logsnr(T_GRID)), values, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_t_from_logsnr_inverts_logsnr(name):
    s = SCHEDULES[name]
    np.testing.assert_allclose(s.t_from_logsnr_numpy(s.logsnr_numpy(T_GRID)), T_GRID, atol=1e-9)
    np.testing.assert_allclose(_np(s.t_from_logsnr(s.logsnr(T_GRID))), T_GRID, atol=1e-5)


def test_methods_keep_any_input_shape():
    s = LinearSchedule()
    t = np.random.default_rng(0).uniform(size=(2, 3, 4)).astype("float32")
    for method in (s.logsnr, s.alpha, s.sigma):
        assert tuple(method(t).shape) == (2, 3, 4)
    assert tuple(s.t_from_logsnr(s.logsnr(t)).shape) == (2, 3, 4)


def test_shift_identity_lambda_hi_plus_two_log_s_is_lambda_lo():
    for base in (CosineSchedule(), LinearSchedule()):
        for scale in (2, 4, 8):
            hi = shifted(base, scale)
            np.testing.assert_allclose(_np(hi.logsnr(T_GRID)) + 2 * np.log(scale), _np(base.logsnr(T_GRID)),
                                       atol=1e-5)
            # SNR of the high-res schedule is the low-res one divided by s² (Su part 22's alignment rule).
            snr_ratio = np.exp(base.logsnr_numpy(T_GRID) - hi.logsnr_numpy(T_GRID))
            np.testing.assert_allclose(snr_ratio, scale**2, rtol=1e-12)


def test_linear_schedule_reproduces_ddpm_alphas_cumprod():
    s = LinearSchedule()
    betas = [1e-4 + (0.02 - 1e-4) * j / 999 for j in range(1000)]
    cumprod, product = [], 1.0
    for beta in betas:  # Ho et al.: ā_i = Π_{j<=i} (1 − β_j), a plain loop as the reference
        product *= 1.0 - beta
        cumprod.append(product)
    grid = np.arange(1, 1001) / 1000
    np.testing.assert_allclose(s.alpha_numpy(grid) ** 2, cumprod, rtol=1e-12)
    np.testing.assert_allclose(_np(s.alpha(grid)) ** 2, cumprod, rtol=2e-6, atol=1e-7)
    # Between grid points λ is linear in t.
    mid = s.logsnr_numpy((np.arange(1, 1000) + 0.5) / 1000)
    np.testing.assert_allclose(mid, 0.5 * (s.logsnr_numpy(grid[:-1]) + s.logsnr_numpy(grid[1:])), atol=1e-9)


def test_cosine_schedule_clips_at_its_bounds_and_matches_cos_in_between():
    s = CosineSchedule()
    np.testing.assert_allclose(s.logsnr_numpy([0.0, 1.0]), [15.0, -15.0], atol=1e-9)
    # Inside the clip the schedule is α = cos(π t'/2) for the affinely remapped t'.
    t = np.linspace(0.05, 0.95, 7)
    t_prime = (s._t_min + t * (s._t_max - s._t_min)) * 2 / np.pi
    np.testing.assert_allclose(s.alpha_numpy(t), np.cos(np.pi * t_prime / 2), rtol=1e-12)


def test_closed_form_inverse_equals_bisection_root():
    """SCH3: the cosine τ with λ(τ) = λ(t) + log k, closed form vs the generic bisection of the base class."""
    s = CosineSchedule()
    target = s.logsnr_numpy(T_GRID[5:-5]) + np.log(4.0)
    closed = s.t_from_logsnr_numpy(target)
    bisection = schedules.Schedule._t_from_logsnr(s, target, schedules._NumpyOps)
    np.testing.assert_allclose(closed, bisection, atol=1e-9)
    assert np.all(closed <= T_GRID[5:-5])


def test_interpolated_schedule_goes_from_clean_shift_to_noisy_shift():
    base = CosineSchedule()
    s = interpolated(base, 2, 16)
    np.testing.assert_allclose(s.logsnr_numpy(0.0), base.logsnr_numpy(0.0) - 2 * np.log(2), atol=1e-12)
    np.testing.assert_allclose(s.logsnr_numpy(1.0), base.logsnr_numpy(1.0) - 2 * np.log(16), atol=1e-12)
    middle = s.logsnr_numpy(0.5)
    assert base.logsnr_numpy(0.5) - 2 * np.log(16) < middle < base.logsnr_numpy(0.5) - 2 * np.log(2)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_serialize_round_trip_through_json(name):
    s = SCHEDULES[name]
    config = json.loads(json.dumps(schedules.serialize(s)))
    again = schedules.deserialize(config)
    assert type(again) is type(s) and again.num_steps == s.num_steps
    np.testing.assert_array_equal(again.logsnr_numpy(T_GRID), s.logsnr_numpy(T_GRID))


def test_schedule_works_inside_a_compiled_function():
    s = shifted(LinearSchedule(), 2)
    run = kb.compile_function(lambda t: s.t_from_logsnr(s.logsnr(t)) + 0.0 * s.alpha(t))
    t = np.linspace(0.01, 0.99, 8).astype("float32")
    np.testing.assert_allclose(_np(run(ops.convert_to_tensor(t))), t, atol=1e-5)


TAIL_LOGSNRS = (-30.0, -15.0, -5.0, 0.0, 5.0, 15.0, 30.0)


def _sigmoid_decimal(x):
    """sigmoid(x) = eˣ/(1 + eˣ) in 50-digit decimal arithmetic."""
    with decimal.localcontext() as context:
        context.prec = 50
        e = decimal.Decimal(x).exp()
        return e / (1 + e)


def _max_relative_error(sigmoid):
    values = sigmoid(np.array(TAIL_LOGSNRS))
    return max(abs((decimal.Decimal(float(v)) - _sigmoid_decimal(x)) / _sigmoid_decimal(x))
               for v, x in zip(values, TAIL_LOGSNRS))


def test_float64_sigmoid_is_relatively_exact_in_both_tails():
    assert _max_relative_error(schedules._sigmoid_numpy) < 1e-15


def test_tanh_form_sigmoid_loses_the_lower_tail_negative_control():
    def tanh_form(x):
        return 0.5 * (1.0 + np.tanh(0.5 * x))

    assert _max_relative_error(tanh_form) > 1e-12
    assert abs(float(tanh_form(-15.0)) / float(_sigmoid_decimal(-15.0)) - 1.0) > 1e-12


def test_num_steps_is_t_for_discrete_and_none_for_continuous():
    assert LinearSchedule(num_steps=50).num_steps == 50
    assert shifted(LinearSchedule(num_steps=50), 2).num_steps == 50
    assert CosineSchedule().num_steps is None


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
def test_every_grid_has_exactly_n_unique_steps_in_range(spacing):
    for big_t in (1, 2, 3, 7, 1000):
        for n in range(1, big_t + 1):
            k = timesteps(big_t, n, spacing)
            assert len(k) == n, (big_t, n)
            assert np.all(np.diff(k) < 0), (big_t, n)  # strictly decreasing, hence unique
            assert k.min() >= 0 and k.max() <= big_t - 1, (big_t, n)
    assert timesteps(1000, 1, "linspace")[0] == 999 and timesteps(1000, 7, "trailing")[0] == 999


def test_float_arange_trailing_grid_miscounts_negative_control():
    """The float `arange(T, 0, -T/n)` form of the trailing grid gives n + 1 steps for some n; ours never does."""
    big_t = 1000
    wrong = [n for n in range(1, big_t + 1) if len(np.round(np.arange(big_t, 0, -big_t / n)) - 1) != n]
    assert len(wrong) > 0
    for n in wrong:
        reference = np.round(np.arange(big_t, 0, -big_t / n))[:n] - 1  # its first n steps
        np.testing.assert_array_equal(timesteps(big_t, n, "trailing"), reference)


def test_times_map_indices_to_continuous_time_and_end_clean():
    np.testing.assert_allclose(times(1000, 4, "trailing"), [1.0, 0.75, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(times(None, 4), [1.0, 0.75, 0.5, 0.25, 0.0])


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="steps"):
        timesteps(1000, 0)
    with pytest.raises(ValueError, match="steps"):
        timesteps(1000, 1001)
    with pytest.raises(ValueError, match="spacing"):
        timesteps(1000, 10, "uniform")
    with pytest.raises(ValueError, match="beta_start"):
        LinearSchedule(beta_start=0.1, beta_end=0.01)
    with pytest.raises(ValueError, match="logsnr_min"):
        CosineSchedule(logsnr_min=5.0, logsnr_max=-5.0)
    with pytest.raises(ValueError, match="scale"):
        shifted(CosineSchedule(), 0)
    with pytest.raises(ValueError, match="unknown schedule"):
        schedules.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(TypeError, match="num_steps"):
        LinearSchedule(num_steps=10.5)
