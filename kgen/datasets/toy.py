"""Two-dimensional toy distributions for mode-coverage and density tests (generated, nothing is downloaded).

* ``ring8``: 8 equally weighted Gaussians, centres on a circle of radius 2 (angles 2*pi*k/8), std 0.02 per axis.
* ``grid25``: 25 equally weighted Gaussians centred on the grid {-4, -2, 0, 2, 4}^2 (spacing 2), std 0.05.
  These two follow the VEEGAN (Srivastava et al. 2017) / MEG (Kumar et al. 2019) mode-collapse benchmarks.
* ``moons``: `sklearn.datasets.make_moons` with noise 0.05 (two interleaved half circles, x in ~[-1, 2]).
* ``swissroll``: `sklearn.datasets.make_swiss_roll` with noise 0.25, keeping its x and z coordinates and
  dividing by 5 (so the roll lies within about [-2.5, 3]^2 and the noise std is 0.05).

Mixtures draw each sample's mode uniformly, then its Gaussian offset, both from `numpy.random.default_rng(seed)`;
moons and swissroll seed scikit-learn from the same generator. The same seed always gives the same array.
"""

import numpy as np

from kgen._checks import check_choice, check_int, check_positive_float

TOY2D_NAMES = ("ring8", "grid25", "moons", "swissroll")
_MIXTURE_STD = {"ring8": 0.02, "grid25": 0.05}


def _centres(name):
    if name == "ring8":
        angles = 2 * np.pi * np.arange(8) / 8
        return 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)


def toy2d_modes(name):
    """Centres and per-axis standard deviation of a Gaussian-mixture toy dataset.

    Args:
        name: "ring8" or "grid25".

    Returns:
        centres: float32, shape (k, 2) with k = 8 or 25.
        std: float, the per-axis standard deviation shared by all components.

    Raises:
        ValueError: unknown `name`, or "moons"/"swissroll", which are continuous and have no discrete modes.

    Example:
        >>> centres, std = toy2d_modes("ring8")
        >>> print(centres.shape, centres.dtype, std)
        (8, 2) float32 0.02
    """
    check_choice("name", name, TOY2D_NAMES)
    if name not in _MIXTURE_STD:
        raise ValueError(f"`name`={name!r} has no discrete modes; toy2d_modes supports {list(_MIXTURE_STD)}")
    return _centres(name).astype(np.float32), _MIXTURE_STD[name]


def toy2d(name, n, seed=0, std=None):
    """Samples from a 2-D toy distribution (see the module docstring for each).

    Args:
        name: one of "ring8", "grid25", "moons", "swissroll".
        n: number of samples, a positive int.
        seed: non-negative int for `numpy.random.default_rng`.
        std: mixtures only: a per-axis std other than the benchmark's (density tests use ring8 with 0.2,
            whose true entropy is log 8 + 1 + log(2π·0.04) = 1.698 nats when the modes barely overlap).

    Returns:
        float32 array of shape (n, 2).

    Example:
        >>> x = toy2d("grid25", 1000, seed=0)
        >>> print(x.shape, x.dtype, bool((x == toy2d("grid25", 1000, seed=0)).all()))
        (1000, 2) float32 True
    """
    check_choice("name", name, TOY2D_NAMES)
    n = check_int("n", n, 1)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    if std is not None and name not in _MIXTURE_STD:
        raise ValueError(f"`std` applies to the mixtures {list(_MIXTURE_STD)} only, not {name!r}")
    if name in _MIXTURE_STD:
        std = _MIXTURE_STD[name] if std is None else check_positive_float("std", std)
        centres = _centres(name)
        modes = rng.integers(0, len(centres), size=n)
        return (centres[modes] + std * rng.standard_normal((n, 2))).astype(np.float32)
    # Deferred import: sklearn.datasets pulls in scipy, and `import kgen` should stay cheap.
    from sklearn.datasets import make_moons, make_swiss_roll

    random_state = int(rng.integers(2**31))
    if name == "moons":
        return make_moons(n_samples=n, noise=0.05, random_state=random_state)[0].astype(np.float32)
    points = make_swiss_roll(n_samples=n, noise=0.25, random_state=random_state)[0]
    return (points[:, [0, 2]] / 5.0).astype(np.float32)
