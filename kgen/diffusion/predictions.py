"""Prediction parameterisations ε, x₀ and v, and the eps-function convention shared by samplers and guidance.

With the noisy sample z_t = α x₀ + σ ε, α² + σ² = 1 and λ = log(α²/σ²) (so α² = sigmoid(λ), σ² = sigmoid(−λ)):
- ε-prediction (DDPM, Ho et al. 2020): the network outputs ε̂;
- x₀-prediction: x̂₀, and ε̂ = (z_t − α x̂₀)/σ;
- v-prediction (Salimans & Ho 2022, arXiv:2202.00512; simple diffusion): v = α ε − σ x₀, so
  x̂₀ = α z_t − σ v and ε̂ = σ z_t + α v.
Every sampler in kgen.diffusion consumes an eps function `eps_fn(x_t, logsnr) -> eps` (x_t: the noisy sample
z_t, `logsnr` of shape `(batch,)`); `as_eps_fn` wraps an x₀- or v-predicting function into one.

State: a compiled sampler must know the Keras variables the eps function reads (on JAX they are threaded
through the compiled loop; otherwise it would see the weights of its first call only). `kgen.backend.state_of(fn)` finds
them, so no one passes them by hand: a Layer/Model itself; the owner of a bound method (`model.eps_fn`); the
function of a `functools.partial`; the Layers, SeedGenerators and eps functions a closure (a lambda or nested
function) reads from its enclosing scope; and the `state` of kgen's wrappers (this module's `EpsFunction`,
`ClassifierFreeGuidance`, `UpsampleGuidance`), which is the state of the functions they wrap. A plain function
that reads a model through a global variable is the one case not found: wrap the model in a Layer, or use a
closure.
"""

from keras import ops

from kgen._checks import check_choice
from kgen._deprecation import deprecated_state
from kgen.backend import state_of  # noqa: F401  (re-exported: `predictions.state_of`)

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


def eps_from_prediction(prediction, output, x_t, logsnr):
    """ε̂ from a network output of type `prediction` ("eps", "x0" or "v") at the noisy sample `x_t` and λ."""
    check_choice("prediction", prediction, PREDICTIONS)
    if prediction == "eps":
        return output
    alpha, sigma = alpha_sigma(logsnr, x_t)
    if prediction == "x0":
        return (x_t - alpha * output) / sigma
    return sigma * x_t + alpha * output


def prediction_from_eps(prediction, eps, x_t, logsnr):
    """The inverse of `eps_from_prediction`: a target of type `prediction` from ε̂ (ε, x̂₀ or v̂)."""
    check_choice("prediction", prediction, PREDICTIONS)
    if prediction == "eps":
        return eps
    alpha, sigma = alpha_sigma(logsnr, x_t)
    x0 = (x_t - sigma * eps) / alpha
    if prediction == "x0":
        return x0
    return alpha * eps - sigma * x0


class EpsFunction:
    """An x₀- or v-predicting function `fn(x_t, logsnr)` seen as an eps function.

    Args:
        fn: callable `(x_t, logsnr) -> prediction`, `logsnr` of shape (batch,).
        prediction: "eps", "x0" or "v".
        state: deprecated: the Keras state `fn` reads is found from `fn` (`state_of`).

    Example:

    ```python
    import keras
    from kgen.diffusion import DDIMSampler, CosineSchedule, EpsFunction

    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])   # an x₀-predicting "model"
    eps_fn = EpsFunction(lambda x_t, logsnr: network(x_t), prediction="x0")
    eps_fn(keras.ops.ones((2, 2)), keras.ops.zeros((2,)))                    # ε̂ = (z_t − α x̂₀)/σ
    x_0 = DDIMSampler(CosineSchedule(), 10).sample(eps_fn, keras.random.normal((4, 2)))  # finds `network`
    ```
    """

    def __init__(self, fn, prediction="eps", state=None):
        if not callable(fn):
            raise TypeError(f"`fn` must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.prediction = check_choice("prediction", prediction, PREDICTIONS)
        self._extra_state = deprecated_state(state, "EpsFunction")

    @property
    def state(self):
        """The Keras state `fn` reads (`state_of(fn)`), what a compiled sampler threads through its loop."""
        return state_of(self.fn) + self._extra_state

    def __call__(self, x_t, logsnr):
        return eps_from_prediction(self.prediction, self.fn(x_t, logsnr), x_t, logsnr)


def as_eps_fn(fn, prediction="eps", state=None):
    """`fn` unchanged when it already predicts ε, else an `EpsFunction` (`state`: deprecated, as there)."""
    check_choice("prediction", prediction, PREDICTIONS)
    if prediction == "eps" and state is None:
        if not callable(fn):
            raise TypeError(f"`fn` must be callable, got {type(fn).__name__}")
        return fn
    return EpsFunction(fn, prediction, state)
