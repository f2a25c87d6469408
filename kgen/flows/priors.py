"""Fixed base densities p_Z of kgen flows: standard Gaussian (Su 5776 eq. 6) and standard logistic (NICE).

Every latent of a kgen flow is standardised by the flow's own layers (`Split`, `TopPrior`), so one fixed,
factorised density serves them all:

- Gaussian (Su, article 5776 eq. 6; RealNVP; Glow): log p(z) = Σ_i [−½ z_i² − ½ log 2π]. Su's Keras loss
  drops the constant; here it is kept, so `log_prob` is a normalised density and bits/dim are comparable.
- Logistic (NICE, Dinh, Krueger & Bengio 2014, §3.4, said to give "a better behaved gradient"):
  log p(z) = Σ_i [−softplus(z_i) − softplus(−z_i)]; sampled as z = log u − log(1 − u), u ~ U(0, 1).

Temperature T (Glow §5 / openai `eps_std`; Su samples NICE with 0.75, Glow with 0.9): samples are T·ε,
ε from the standard density, so T = 0 gives the mode path (all zeros).
"""

import math

import keras
import numpy as np
from keras import ops

from kgen._checks import check_choice
from kgen.flows.layers.base import sum_except_batch


def _check_temperature(temperature):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise TypeError(f"`temperature` must be a real number >= 0, got {temperature!r}")
    if not math.isfinite(float(temperature)) or temperature < 0:
        raise ValueError(f"`temperature` must be a finite number >= 0, got {temperature}")
    return float(temperature)


class Prior:
    """A fixed factorised density: `log_prob(z) -> (batch,)`, `sample(shape, seed, temperature) -> z`.

    Example:
        >>> prior = kgen.flows.priors.get_prior("logistic")
        >>> z = prior.sample((4, 3), seed=keras.random.SeedGenerator(0), temperature=1.0)
        >>> prior.log_prob(z).shape             # (4,): summed over every non-batch axis
    """

    name = None

    def log_prob(self, z):
        raise NotImplementedError

    def sample(self, shape, seed=None, temperature=1.0):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}()"


@keras.saving.register_keras_serializable(package="kgen")
class GaussianPrior(Prior):
    """Standard normal N(0, I), summed over every non-batch axis (Su 5776 eq. 6).

    Example:
        >>> prior = GaussianPrior()
        >>> prior.log_prob(keras.ops.zeros((2, 3)))            # [-2.757, -2.757] = -3/2·log 2π
        >>> z = prior.sample((4, 3), seed=keras.random.SeedGenerator(0), temperature=0.7)
    """

    name = "gaussian"

    def log_prob(self, z):
        z = ops.convert_to_tensor(z)
        return sum_except_batch(-0.5 * ops.square(z) - 0.5 * math.log(2.0 * math.pi))

    def sample(self, shape, seed=None, temperature=1.0):
        """T·ε with ε ~ N(0, I) of `shape` (batch first); `seed`: a keras.random.SeedGenerator or int."""
        temperature = _check_temperature(temperature)
        return temperature * keras.random.normal(tuple(shape), seed=seed)


@keras.saving.register_keras_serializable(package="kgen")
class LogisticPrior(Prior):
    """Standard logistic, log p(z) = −softplus(z) − softplus(−z) per entry (NICE §3.4).

    Example:
        >>> prior = LogisticPrior()
        >>> prior.log_prob(keras.ops.zeros((2, 3)))            # [-4.159, -4.159] = 3·log(1/4)
        >>> z = prior.sample((4, 3), seed=keras.random.SeedGenerator(0))
    """

    name = "logistic"

    def log_prob(self, z):
        z = ops.convert_to_tensor(z)
        return sum_except_batch(-ops.softplus(z) - ops.softplus(-z))

    def sample(self, shape, seed=None, temperature=1.0):
        """T·(log u − log(1 − u)) with u ~ U(0, 1) of `shape`, by inverting the logistic CDF."""
        temperature = _check_temperature(temperature)
        dtype = keras.config.floatx()
        # u = 0 would give −inf; the smallest normal float keeps the draw finite (|z| ≤ 88 in float32).
        u = keras.random.uniform(tuple(shape), minval=float(np.finfo(dtype).tiny), maxval=1.0, dtype=dtype,
                                 seed=seed)
        return temperature * (ops.log(u) - ops.log1p(-u))


PRIORS = {"gaussian": GaussianPrior, "logistic": LogisticPrior}


def get_prior(prior):
    """Resolve "gaussian" / "logistic" (or a `Prior` instance, returned as is) to a prior object."""
    if isinstance(prior, Prior):
        return prior
    return PRIORS[check_choice("prior", prior, tuple(PRIORS))]()
