"""The protocol every kgen model follows, whatever its family.

A user who learned one family can guess the others:

| verb | flows (`Flow`) | GANs (`GAN`, `EnergyGAN`) | diffusion (`DiffusionModel`) | text (`UniLM`) |
|---|---|---|---|---|
| train | `fit(x)` | `fit(x)` / `fit(x, y)` | `fit(x)` / `fit(x, y)` | `fit(inputs)` |
| draw | `sample(n, *, seed, temperature)` | `sample(n, *, seed, labels, temperature)` | `sample(n, *, seed, steps, sampler, …)` | `generate(source_ids, …, seed=)` |
| data range | `value_range` = (0, 1) | `value_range` = (−1, 1) | `value_range` = (−1, 1) | token ids |
| score | `log_prob(x)` (exact) | `energy(x)` (unnormalised) | `per_example_loss(x)` (a bound) | logits (`model(inputs)`) |
| save / export | `.keras`, `kgen.export` | `.keras`, `kgen.export` | `.keras`, `kgen.export` | `.keras`, `kgen.export` |

The rules, checked for every family by `tests/test_protocol.py` on all three backends:

- `sample(n, *, seed=None, **family_options)` returns a backend tensor of shape `(n,) + data_shape` with values
  in `value_range` (up to float rounding; `None` means unbounded, e.g. a toy GAN with a linear output).
- `seed=None` draws from the model's own `keras.random.SeedGenerator` (every call differs); an int `seed` gives
  the same samples on every call on the same backend, and leaves the model's generator untouched.
- `value_range` is an attribute the tools read instead of being told: `kgen.callbacks.SampleGrid`, the run
  recipes, the demo and the exported artifacts.
- `log_prob(x)` exists only where it is exact (flows); `energy(x)` is an unnormalised score, lower = more
  likely (GAN: −D(x); energy GAN: U(x)); models without either offer `per_example_loss`.
- Text models keep `generate` (autoregressive decoding, as keras-hub's `CausalLM.generate`): it returns backend
  tensors and takes the same `seed=` rule.
"""

from typing import Protocol, runtime_checkable

import keras

from kgen._checks import check_int
from kgen.backend.seeds import SeedGenerator

__all__ = ["GenerativeModel", "LikelihoodModel", "EnergyModel", "check_value_range", "seed_generator_for"]


@runtime_checkable
class GenerativeModel(Protocol):
    """A model that draws images or vectors: `sample(n, *, seed=None, **options)` in `value_range`.

    Example:
        >>> model = kgen.flows.RealNVP((4,), num_couplings=2, hidden=(8,))
        >>> isinstance(model, GenerativeModel)                  # True: every kgen image/vector model is one
        >>> a, b = model.sample(3, seed=1), model.sample(3, seed=1)
        >>> bool(keras.ops.all(a == b))                          # True: same seed, same samples
        >>> model.value_range                                    # (0.0, 1.0)
    """

    value_range: tuple
    data_shape: tuple

    def sample(self, n, *, seed=None, **options):
        ...


@runtime_checkable
class LikelihoodModel(GenerativeModel, Protocol):
    """A generative model with an exact density: `log_prob(x)` in nats per example.

    Example:
        >>> model = kgen.flows.RealNVP((4,), num_couplings=2, hidden=(8,))
        >>> isinstance(model, LikelihoodModel)                  # True (flows)
        >>> model.log_prob(np.full((2, 4), 0.5, "float32")).shape   # (2,)
    """

    def log_prob(self, x):
        ...


@runtime_checkable
class EnergyModel(GenerativeModel, Protocol):
    """A generative model with an unnormalised score: `energy(x)` per example, lower = more likely.

    Example:
        >>> g = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="tanh")])
        >>> d = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> gan = kgen.gans.GAN(g, d)
        >>> isinstance(gan, EnergyModel)                        # True (GANs: energy = −D)
        >>> gan.energy(np.zeros((3, 2), "float32")).shape       # (3,)
    """

    def energy(self, x):
        ...


def check_value_range(value_range, name="value_range"):
    """`(low, high)` as two floats with low < high, or None (unbounded); ValueError otherwise."""
    if value_range is None:
        return None
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be (low, high) or None, got {value_range!r}") from None
    if not low < high:
        raise ValueError(f"`{name}` must be (low, high) with low < high, got {value_range!r}")
    return (low, high)


def seed_generator_for(model, seed):
    """The generator a `sample(..., seed=seed)` call draws from.

    `seed=None`: the model's own `seed_generator` (state advances, every call differs). An int: a fresh
    `kgen.backend.SeedGenerator(seed)`, so the same seed gives the same draws and the model's state is untouched.
    """
    if seed is None:
        return model.seed_generator
    if isinstance(seed, keras.random.SeedGenerator):
        return seed
    return SeedGenerator(check_int("seed", seed, 0))
