"""Timestep grids against diffusers' `set_timesteps` rounding, at exact .5 ties and at float near-ties."""

from fractions import Fraction

import numpy as np
import pytest

from kgen.diffusion.grids import timesteps

# diffusers' grids (DDIMScheduler / DDPMScheduler, timestep_spacing=...), written out.
DIFFUSERS_GRIDS = {
    # Exact ties (832.5, 166.5), rounded half to even.
    (1000, 7, "linspace"): [999, 832, 666, 500, 333, 166, 0],
    (1000, 19, "linspace"): [999, 944, 888, 832, 777, 722, 666, 610, 555, 500, 444, 388, 333, 278, 222, 166, 111,
                             56, 0],
    # Exact ties (812.5 − 1 → 811, ...).
    (1000, 16, "trailing"): [999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61],
    # Float near-ties: the float linspace / arange lands just off the exact .5 (937.5 is 937.4999… here).
    (1000, 27, "linspace"): [999, 961, 922, 884, 845, 807, 768, 730, 692, 653, 615, 576, 538, 499, 461, 423, 384,
                             346, 307, 269, 231, 192, 154, 115, 77, 38, 0],
    (1000, 48, "trailing"): [999, 978, 957, 936, 916, 895, 874, 853, 832, 811, 791, 770, 749, 728, 707, 686, 666,
                             645, 624, 603, 582, 561, 541, 520, 499, 478, 457, 436, 416, 395, 374, 353, 332, 311,
                             291, 270, 249, 228, 207, 186, 166, 145, 124, 103, 82, 61, 41, 20],
    (7, 6, "trailing"): [6, 5, 4, 2, 1, 0],
}
FLOAT_NEAR_TIES = [(1000, 27, "linspace"), (1000, 48, "trailing"), (7, 6, "trailing")]


def _diffusers_formula(big_t, n, spacing):
    """diffusers' `set_timesteps` arithmetic in plain numpy (no steps_offset)."""
    if spacing == "linspace":
        return np.linspace(0, big_t - 1, n).round()[::-1].astype(np.int64)
    return np.round(np.arange(big_t, 0, -big_t / n)).astype(np.int64) - 1


def _half_up_integer_grid(big_t, n, spacing):
    """kgen's former grid: exact rationals rounded half up."""
    j = np.arange(n)
    if spacing == "linspace":
        return (2 * (big_t - 1) * (n - 1 - j) + (n - 1)) // (2 * (n - 1))
    return (2 * big_t * (n - j) + n) // (2 * n) - 1


def _half_even_exact_grid(big_t, n, spacing):
    """Exact rationals rounded half to even (Python's `round` on a Fraction)."""
    if spacing == "linspace":
        return np.array([round(Fraction((big_t - 1) * (n - 1 - j), n - 1)) for j in range(n)])
    return np.array([round(Fraction(big_t * (n - j), n)) - 1 for j in range(n)])


@pytest.mark.parametrize("case", sorted(DIFFUSERS_GRIDS))
def test_grid_equals_diffusers_at_ties(case):
    expected = np.array(DIFFUSERS_GRIDS[case])
    np.testing.assert_array_equal(_diffusers_formula(*case), expected)  # the table is the formula's
    np.testing.assert_array_equal(timesteps(*case), expected)


@pytest.mark.parametrize("case", sorted(DIFFUSERS_GRIDS))
def test_half_up_rounding_misses_diffusers_ties_negative_control(case):
    assert not np.array_equal(_half_up_integer_grid(*case), DIFFUSERS_GRIDS[case])


@pytest.mark.parametrize("case", FLOAT_NEAR_TIES)
def test_exact_half_even_rounding_misses_float_near_ties_negative_control(case):
    assert not np.array_equal(_half_even_exact_grid(*case), DIFFUSERS_GRIDS[case])


def test_grid_equals_diffusers_for_every_n_but_its_two_bugs():
    """Every n <= T = 1000: equal, except linspace n = 1 (diffusers [0]) and trailing's extra −1 entry."""
    big_t = 1000
    assert _diffusers_formula(big_t, 1, "linspace").tolist() == [0]
    assert timesteps(big_t, 1, "linspace").tolist() == [big_t - 1]
    extra = 0
    for n in range(2, big_t + 1):
        np.testing.assert_array_equal(timesteps(big_t, n, "linspace"), _diffusers_formula(big_t, n, "linspace"))
    for n in range(1, big_t + 1):
        reference = _diffusers_formula(big_t, n, "trailing")
        if len(reference) == n + 1:
            assert reference[-1] == -1
            reference, extra = reference[:n], extra + 1
        np.testing.assert_array_equal(timesteps(big_t, n, "trailing"), reference)
    assert extra > 0
