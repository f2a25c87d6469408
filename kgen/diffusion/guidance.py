"""Guidance as wrappers of eps functions: classifier-free guidance and Upsample Guidance (UG).

Both return a new eps function `(x_t, logsnr) -> eps`, so they work with every sampler and with each other.
Their `state` is the Keras state of the functions they wrap (`kgen.backend.state_of`), which is how a compiled
sampler finds the weights behind them: nobody passes variables by hand.

Classifier-free guidance (Ho & Salimans 2022, arXiv:2207.12598; Su part 9, https://kexue.fm/archives/9257):
ε̃ = ε_u + g (ε_c − ε_u); g = 1 + w in the paper's (1 + w) ε_c − w ε_u.

Upsample Guidance (Su, "生成扩散模型漫谈（二十三）：信噪比与大图生成（下）", https://kexue.fm/archives/10055;
Hwang, Park & Jo 2024, arXiv:2404.01709): sample at a resolution `scale`× larger than the model was trained at,
with the low-resolution model alone. With D = s×s average pooling, U = nearest repeat (D U = I, U D an
orthogonal projector), k = s^(number of spatial axes) (s² for images):

    ε̃(x, λ) = ε(x, λ) + w_t · U[ ε(D x / ρ, λ + log k) / √k − D ε(x, λ) ],    ρ² = α² + σ²/k.

- D x = α D x₀ + (σ/√k) ε_low: pooling keeps the signal and shrinks the noise, so its SNR is k·SNR(t).
  Dividing by ρ restores α_τ² + σ_τ² = 1, and the model is asked at τ with SNR(τ) = k·SNR(t), i.e. at
  log-SNR λ + log k (Su's τ; no search needed since kgen models are conditioned on λ).
- The low-resolution term estimates D ε (variance 1/k per pixel, hence 1/√k); the high-resolution pass
  ε(x, λ) keeps the detail (I − U D) ε. The main term is exact when D x₀ and (I − U D) x₀ are independent.
- Weights: the paper's w_t multiplies the bracket (w_t = 0: the plain model; w_t = 1: the plain
  decomposition U[ε_low/√k] + (ε − U D ε)). Su writes w_t = 1 + w ("CFG-like", w = 0 the decomposition,
  w ≈ 0.2 best in the paper's experiments, i.e. w_t ≈ 1.2). kgen's `w` is the paper's w_t and defaults to 1:
  the one value at which UG is exact under the independence assumption, and the best one on the research
  note's stationary toy (W2 0.144 vs 0.437 at w_t = 1.2); 1.2 is the paper's tuned value for real images.
- Time gate for latent models (paper via Su): w_t = w for t >= (1 − η) (noisy steps) and 0 afterwards;
  `eta=None` (default, pixel models) keeps UG on at every step. Public pipelines use η = 0.6, w_t = 1.2.
Images are channels-last (batch, H, W, C); 1-D signals (batch, L, C) and volumes work the same way.
"""

import numbers

import numpy as np
from keras import ops

from kgen._deprecation import deprecated_state
from kgen.backend import state_of
from kgen.diffusion.predictions import expand_to

__all__ = ["ClassifierFreeGuidance", "UpsampleGuidance", "average_pool", "nearest_upsample"]
from kgen.diffusion.schedules import Schedule

ABLATIONS = ("time_shift", "rescale", "noise_scale")


def _check_scale(scale):
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or scale < 1 or int(scale) != scale:
        raise ValueError(f"`scale` must be an integer >= 1, got {scale!r}")
    return int(scale)


def average_pool(x, scale):
    """D: mean over non-overlapping `scale`-wide blocks along every spatial axis of (batch, *spatial, C)."""
    scale = _check_scale(scale)
    spatial = tuple(x.shape[1:-1])
    _check_divisible(spatial, scale)
    split = []
    for size in spatial:
        split += [size // scale, scale]
    pooled = ops.reshape(x, (-1, *split, x.shape[-1]))
    return ops.mean(pooled, axis=tuple(range(2, 2 * len(spatial) + 1, 2)))


def nearest_upsample(x, scale):
    """U: repeat every element `scale` times along every spatial axis of (batch, *spatial, C)."""
    scale = _check_scale(scale)
    for axis in range(1, len(x.shape) - 1):
        x = ops.repeat(x, scale, axis=axis)
    return x


def _check_divisible(spatial, scale):
    if len(spatial) < 1:
        raise ValueError("inputs must have shape (batch, *spatial, channels) with at least one spatial axis")
    for size in spatial:
        if size is None or size % scale:
            raise ValueError(f"every spatial size must be divisible by `scale`={scale}, got spatial shape {spatial}")


class ClassifierFreeGuidance:
    """ε̃ = ε_u + g (ε_c − ε_u) from a conditional and an unconditional eps function.

    Args:
        conditional: eps function for the condition (e.g. `functools.partial(model.eps_fn, labels=labels)`).
        unconditional: eps function with the condition dropped.
        guidance_scale: g (1: the conditional model; keras-cv Stable Diffusion uses 7.5).
        state: deprecated: the Keras state of the two functions is found from them (`state_of`).

    Example:

    ```python
    import keras
    from kgen.diffusion import ClassifierFreeGuidance, CosineSchedule, DDIMSampler

    cfg = ClassifierFreeGuidance(lambda x_t, l: x_t, lambda x_t, l: 0 * x_t, guidance_scale=2.0)
    cfg(keras.ops.ones((1, 2)), keras.ops.zeros((1,)))      # 2·x_t
    x_0 = DDIMSampler(CosineSchedule(), 10).sample(cfg, keras.random.normal((4, 2)))
    ```
    """

    def __init__(self, conditional, unconditional, guidance_scale=7.5, state=None):
        for name, fn in (("conditional", conditional), ("unconditional", unconditional)):
            if not callable(fn):
                raise TypeError(f"`{name}` must be callable, got {type(fn).__name__}")
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, numbers.Real):
            raise TypeError(f"`guidance_scale` must be a real number, got {guidance_scale!r}")
        self.conditional, self.unconditional = conditional, unconditional
        self.guidance_scale = float(guidance_scale)
        self._extra_state = deprecated_state(state, "ClassifierFreeGuidance")

    @property
    def state(self):
        """The Keras state the two wrapped functions read (what a compiled sampler threads through its loop)."""
        return state_of(self.conditional) + state_of(self.unconditional) + self._extra_state

    def __call__(self, x_t, logsnr):
        eps_u = self.unconditional(x_t, logsnr)
        return eps_u + self.guidance_scale * (self.conditional(x_t, logsnr) - eps_u)


class UpsampleGuidance:
    """An eps function for inputs `scale`× larger than `eps_fn` was trained on (see the module docstring).

    Args:
        eps_fn: the low-resolution model, `eps_fn(x_t, logsnr) -> eps`, callable at both resolutions (a
            convolutional U-Net; Su reports UG fails with a pure Transformer).
        schedule: the model's training schedule (for the time gate and the λ clip).
        scale: s, an integer >= 1 (s = 1 makes the guidance term vanish).
        w: the paper's w_t (= 1 + Su's w); 0 returns the plain model, 1 (default) the exact decomposition.
        eta: None (UG at every step) or η ∈ (0, 1]: UG only while t >= 1 − η (latent models; paper η = 0.6).
        clip_logsnr: clip the low-resolution log-SNR λ + log k to the schedule's λ(0), the least noisy level
            the model was trained on.
        low_resolution_eps_fn: the model to call at low resolution, when not `eps_fn` itself.
        ablate: names from ("time_shift", "rescale", "noise_scale") to switch off, for ablation studies:
            no λ shift, no 1/ρ, no 1/√k.
        state: deprecated: the Keras state of the functions is found from them (`state_of`).

    Example:

    ```python
    import keras
    from kgen.diffusion import CosineSchedule, DDIMSampler, UpsampleGuidance

    network = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(3, 3, padding="same")])
    ug = UpsampleGuidance(lambda x_t, logsnr: network(x_t), CosineSchedule(), scale=2)
    eps = ug(keras.random.normal((2, 8, 8, 3)), keras.ops.zeros((2,)))        # (2, 8, 8, 3)
    x_0 = DDIMSampler(CosineSchedule(), 10).sample(ug, keras.random.normal((2, 8, 8, 3)))  # finds `network`
    ```
    """

    def __init__(self, eps_fn, schedule, scale=2, w=1.0, eta=None, clip_logsnr=True, low_resolution_eps_fn=None,
                 ablate=(), state=None):
        if not callable(eps_fn):
            raise TypeError(f"`eps_fn` must be callable, got {type(eps_fn).__name__}")
        if low_resolution_eps_fn is not None and not callable(low_resolution_eps_fn):
            raise TypeError(f"`low_resolution_eps_fn` must be callable, got {type(low_resolution_eps_fn).__name__}")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"`schedule` must be a kgen.diffusion Schedule, got {type(schedule).__name__}")
        self.scale = _check_scale(scale)
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not np.isfinite(w):
            raise ValueError(f"`w` must be a finite number, got {w!r}")
        if eta is not None and (isinstance(eta, bool) or not isinstance(eta, numbers.Real) or not 0 < eta <= 1):
            raise ValueError(f"`eta` must be None or a number in (0, 1], got {eta!r}")
        unknown = [name for name in ablate if name not in ABLATIONS]
        if isinstance(ablate, str) or unknown:
            raise ValueError(f"`ablate` must be a collection of names from {list(ABLATIONS)}, got {ablate!r}")
        self.eps_fn, self.schedule, self.w, self.eta = eps_fn, schedule, float(w), eta
        self.low_resolution_eps_fn = low_resolution_eps_fn or eps_fn
        self.clip_logsnr, self.ablate = bool(clip_logsnr), tuple(ablate)
        self._extra_state = deprecated_state(state, "UpsampleGuidance")
        self._max_logsnr = float(schedule.logsnr_numpy(0.0))

    @property
    def state(self):
        """The Keras state the wrapped functions read (what a compiled sampler threads through its loop)."""
        low = state_of(self.low_resolution_eps_fn) if self.low_resolution_eps_fn is not self.eps_fn else []
        return state_of(self.eps_fn) + low + self._extra_state

    def low_resolution_input(self, x, logsnr):
        """(D x / ρ, λ + log k): the pooled input in the training form and its log-SNR, k = scale^spatial axes."""
        k = float(self.scale ** (len(x.shape) - 2))
        logsnr = ops.cast(logsnr, x.dtype)
        pooled = average_pool(x, self.scale)
        if "rescale" not in self.ablate:
            alpha2 = ops.sigmoid(logsnr)
            rho = ops.sqrt(alpha2 + (1.0 - alpha2) / k)
            pooled = pooled / expand_to(rho, pooled)
        if "time_shift" not in self.ablate:
            logsnr = logsnr + np.log(k)
        if self.clip_logsnr:
            logsnr = ops.minimum(logsnr, self._max_logsnr)
        return pooled, logsnr

    def guidance(self, x, logsnr, eps):
        """U[ε(D x/ρ, λ + log k)/√k − D ε]: the term the weight multiplies, given ε = eps_fn(x, λ)."""
        k = float(self.scale ** (len(x.shape) - 2))
        x_low, logsnr_low = self.low_resolution_input(x, logsnr)
        eps_low = self.low_resolution_eps_fn(x_low, logsnr_low)
        if "noise_scale" not in self.ablate:
            eps_low = eps_low / np.sqrt(k)
        return nearest_upsample(eps_low - average_pool(eps, self.scale), self.scale)

    def weight(self, logsnr):
        """w_t per example, shape (batch,): w, times the gate 1[t >= 1 − η] when `eta` is set."""
        weight = ops.ones_like(logsnr) * self.w
        if self.eta is None:
            return weight
        t = self.schedule.t_from_logsnr(logsnr)
        return weight * ops.cast(t >= 1.0 - self.eta - 1e-6, weight.dtype)

    def __call__(self, x, logsnr):
        _check_divisible(tuple(x.shape[1:-1]), self.scale)
        x = ops.convert_to_tensor(x)
        logsnr = ops.cast(logsnr, x.dtype)
        eps = self.eps_fn(x, logsnr)
        if self.w == 0.0:
            return eps
        weight = self.weight(logsnr)
        if self.eta is None:
            return eps + expand_to(weight, x) * self.guidance(x, logsnr, eps)
        # Skip the low-resolution call on the steps the gate switches off (Su: UG also saves compute there).
        return ops.cond(ops.any(weight != 0.0),
                        lambda: eps + expand_to(weight, x) * self.guidance(x, logsnr, eps),
                        lambda: eps)
