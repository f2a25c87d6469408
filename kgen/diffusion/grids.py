"""Timestep grids: which of a discrete schedule's T steps a sampler with n < T steps visits.

The three spacings of diffusers' `timestep_spacing` (0-based indices k = 0..T−1, index k carries DDPM's
ā_{k+1}, i.e. continuous time t = (k + 1)/T in kgen's schedules):
- "linspace": round(linspace(T − 1, 0, n)) (DDIM paper's "uniform" with both ends; n = 1 gives [T − 1]);
- "leading": arange(n) · (T // n), reversed (Stable Diffusion's default, without `steps_offset`);
- "trailing": round(T − j·T/n) − 1, j = 0..n−1 (Lin et al. 2023, arXiv:2305.08891: always starts at T − 1).

Every grid has exactly n distinct indices, strictly decreasing, inside [0, T − 1], for every 1 <= n <= T —
the bug classes of diffusers #10003 (index T), CompVis #111 (n = 3, 9, 27), keras-cv #2303 (more steps than
asked, from `range(1, T, T // n)`) and keras-cv #2373 (n = 1). Integer arithmetic only, so no float `arange`
can add a step.

Continuous schedules have no index grid: samplers there use n uniform times t_j = j / n, j = n..1.
"""

import numpy as np

from kgen._checks import check_choice, check_int

SPACINGS = ("linspace", "leading", "trailing")


def timesteps(num_train_steps, steps, spacing="linspace"):
    """The 0-based step indices a sampler visits, noisiest first.

    Args:
        num_train_steps: T, the schedule's number of discrete steps (int >= 1).
        steps: n, the number of sampling steps, 1 <= n <= T.
        spacing: "linspace", "leading" or "trailing" (see the module docstring).

    Returns:
        int64 array of shape (n,), strictly decreasing, in [0, T − 1].

    Example:
        >>> timesteps(1000, 4, "trailing")
        array([999, 749, 499, 249])
    """
    big_t = check_int("num_train_steps", num_train_steps, 1)
    n = check_int("steps", steps, 1)
    check_choice("spacing", spacing, SPACINGS)
    if n > big_t:
        raise ValueError(f"`steps` must be <= the schedule's num_steps ({big_t}), got {n}")
    j = np.arange(n, dtype=np.int64)
    if spacing == "linspace":
        if n == 1:
            return np.array([big_t - 1], dtype=np.int64)
        # round((T − 1)(n − 1 − j)/(n − 1)) with round-half-up, in integers.
        return (2 * (big_t - 1) * (n - 1 - j) + (n - 1)) // (2 * (n - 1))
    if spacing == "leading":
        return (j * (big_t // n))[::-1].copy()
    return (2 * big_t * (n - j) + n) // (2 * n) - 1


def times(num_train_steps, steps, spacing="linspace"):
    """Continuous times t ∈ (0, 1] of a sampler's grid, noisiest first, with one more entry 0 (clean) at the end.

    For a discrete schedule (`num_train_steps` = T) the times are (k + 1)/T for the indices k of `timesteps`;
    for a continuous one (`num_train_steps` None) they are j/n, j = n..1 (`spacing` is then not used).

    Returns:
        float64 array of shape (steps + 1,).
    """
    if num_train_steps is None:
        n = check_int("steps", steps, 1)
        check_choice("spacing", spacing, SPACINGS)
        return np.arange(n, -1, -1, dtype=np.float64) / n
    k = timesteps(num_train_steps, steps, spacing)
    return np.append((k + 1.0) / num_train_steps, 0.0)
