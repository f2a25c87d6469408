"""Timestep grids: which of a discrete schedule's T steps a sampler with n < T steps visits.

The three spacings of diffusers' `timestep_spacing` (0-based indices k = 0..T−1, index k carries DDPM's
ā_{k+1}, i.e. continuous time t = (k + 1)/T in kgen's schedules):
- "linspace": round(linspace(T − 1, 0, n)) (DDIM paper's "uniform" with both ends);
- "leading": arange(n) · (T // n), reversed (Stable Diffusion's default, without `steps_offset`);
- "trailing": round(T − j·T/n) − 1, j = 0..n−1 (Lin et al. 2023, arXiv:2305.08891: always starts at T − 1).

The grids are diffusers' (DDIMScheduler / DDPMScheduler `set_timesteps`) index for index, rounding included:
"linspace" and "trailing" are computed as diffusers computes them, with numpy's float64 `linspace` and
`arange` and numpy's round-half-to-even, so ties and near-ties land where diffusers puts them (T = 1000:
linspace n = 7 has 832 and 166; trailing n = 16 has 811; trailing n = 48 has 936, because the float `arange`
gives 937.4999… for the exact 937.5). Exact rational arithmetic would differ from diffusers in such cases.
Two deliberate differences, both diffusers bugs:
- "linspace" with n = 1: diffusers' `linspace(0, T − 1, 1)` is [0], a single step from the cleanest index;
  kgen gives [T − 1] (the bug class of keras-cv #2373).
- "trailing": the float `arange(T, 0, −T/n)` has n + 1 entries for some n (T = 1000: n = 61, 103, …), the
  last one giving index −1 (the class of diffusers #10003, an index outside [0, T − 1]); kgen keeps the
  first n, which are diffusers' first n.

So every grid has exactly n distinct indices, strictly decreasing, inside [0, T − 1], for every 1 <= n <= T —
also the bug classes of CompVis #111 (n = 3, 9, 27) and keras-cv #2303 (more steps than asked, from
`range(1, T, T // n)`).

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
    if spacing == "linspace":
        if n == 1:
            return np.array([big_t - 1], dtype=np.int64)  # diffusers: [0]
        return np.round(np.linspace(0.0, big_t - 1.0, n))[::-1].astype(np.int64)
    if spacing == "leading":
        return (np.arange(n, dtype=np.int64) * (big_t // n))[::-1].copy()
    # The float arange may have an (n + 1)-th entry ≈ 0: the grid is its first n.
    return np.round(np.arange(big_t, 0.0, -big_t / n)[:n]).astype(np.int64) - 1


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
