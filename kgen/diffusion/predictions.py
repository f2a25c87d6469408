"""Prediction parameterisations ε, x₀ and v, and the eps-function convention shared by samplers and guidance.

With z = α x₀ + σ ε, α² + σ² = 1 and λ = log(α²/σ²) (so α² = sigmoid(λ), σ² = sigmoid(−λ)):
- ε-prediction (DDPM, Ho et al. 2020): the network outputs ε̂;
- x₀-prediction: x̂₀, and ε̂ = (z − α x̂₀)/σ;
- v-prediction (Salimans & Ho 2022, arXiv:2202.00512; simple diffusion): v = α ε − σ x₀, so
  x̂₀ = α z − σ v and ε̂ = σ z + α v.
Every sampler in kgen.diffusion consumes an eps function `eps_fn(x, logsnr) -> eps`, `logsnr` of shape
`(batch,)`; `as_eps_fn` wraps an x₀- or v-predicting function into one.

State: on JAX a compiled sampler must be handed the Keras variables the eps function reads. `state_of(fn)`
finds them: a Layer/Model itself, the Layer behind a bound method (`model.predict_eps`), or the `state` list
of kgen's wrappers (this module's `EpsFunction`, `ClassifierFreeGuidance`, `UpsampleGuidance`).
"""

import keras
from keras import ops

from kgen._checks import check_choice

PREDICTIONS = ("eps", "x0", "v")


def expand_to(values, x):
    """Reshape per-example `values` of shape (batch,) to (batch, 1, ..., 1) so they broadcast against `x`."""
    return ops.reshape(values, (-1,) + (1,) * (len(ops.shape(x)) - 1))


def alpha_sigma(logsnr, x):
    """(α, σ) from λ, shaped to broadcast against `x`: α = sqrt(sigmoid(λ)), σ = sqrt(sigmoid(−λ))."""
    logsnr = expand_to(ops.cast(logsnr, x.dtype), x)
    return ops.sqrt(ops.sigmoid(logsnr)), ops.sqrt(ops.sigmoid(-logsnr))


def per_example(value, x):
    """A scalar broadcast to shape (batch,) with `x`'s batch size and dtype (works under any tracer)."""
    first = x[(slice(None),) + (0,) * (len(ops.shape(x)) - 1)]
    return ops.zeros_like(first) + ops.cast(value, x.dtype)


def eps_from_prediction(prediction, output, x, logsnr):
    """ε̂ from a network output of type `prediction` ("eps", "x0" or "v") at noisy input `x` and log-SNR λ."""
    check_choice("prediction", prediction, PREDICTIONS)
    if prediction == "eps":
        return output
    alpha, sigma = alpha_sigma(logsnr, x)
    if prediction == "x0":
        return (x - alpha * output) / sigma
    return sigma * x + alpha * output


def prediction_from_eps(prediction, eps, x, logsnr):
    """The inverse of `eps_from_prediction`: a target of type `prediction` from ε̂ (ε, x̂₀ or v̂)."""
    check_choice("prediction", prediction, PREDICTIONS)
    if prediction == "eps":
        return eps
    alpha, sigma = alpha_sigma(logsnr, x)
    x0 = (x - sigma * eps) / alpha
    if prediction == "x0":
        return x0
    return alpha * eps - sigma * x0


def state_of(fn):
    """The Layers / SeedGenerators / Variables an eps function reads (see the module docstring)."""
    if isinstance(fn, (keras.layers.Layer, keras.random.SeedGenerator, keras.Variable)):
        return [fn]
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, keras.layers.Layer):
        return [owner]
    state = getattr(fn, "state", None)
    return list(state) if isinstance(state, (list, tuple)) else []


class EpsFunction:
    """An x₀- or v-predicting function `fn(x, logsnr)` seen as an eps function.

    Args:
        fn: callable `(x, logsnr) -> prediction`, `logsnr` of shape (batch,).
        prediction: "eps", "x0" or "v".
        state: extra Layers/SeedGenerators `fn` reads (found automatically for Layers and bound methods).

    Example:
        >>> eps_fn = EpsFunction(lambda x, logsnr: 0.0 * x, prediction="x0")  # "the data is 0"
        >>> eps_fn(keras.ops.ones((2, 3)), keras.ops.zeros((2,)))          # ε̂ = z / σ = sqrt(2)
    """

    def __init__(self, fn, prediction="eps", state=None):
        if not callable(fn):
            raise TypeError(f"`fn` must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.prediction = check_choice("prediction", prediction, PREDICTIONS)
        self.state = state_of(fn) + list(state or [])

    def __call__(self, x, logsnr):
        return eps_from_prediction(self.prediction, self.fn(x, logsnr), x, logsnr)


def as_eps_fn(fn, prediction="eps", state=None):
    """`fn` unchanged when it already predicts ε (and no extra state is given), else an `EpsFunction`."""
    check_choice("prediction", prediction, PREDICTIONS)
    if prediction == "eps" and not state:
        if not callable(fn):
            raise TypeError(f"`fn` must be callable, got {type(fn).__name__}")
        return fn
    return EpsFunction(fn, prediction, state)
