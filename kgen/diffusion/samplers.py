"""Compiled samplers: DDIM(η) with inversion, DDPM ancestral (β̃ or β), continuous log-SNR ancestral (VDM).

Papers: DDPM (Ho et al. 2020, arXiv:2006.11239, Alg. 2), DDIM (Song et al. 2021, arXiv:2010.02502, eq. 12/16),
VDM (Kingma et al. 2021, arXiv:2107.00630, ancestral step in log-SNR form, as in simple diffusion). Su's own
Keras DDPM/DDIM derivations: https://kexue.fm/archives/9119, /9181 (his ᾱ_t, β̄_t are our α_t, σ_t).

Each sampler walks a grid t_0 > t_1 > ... > t_{n−1} > t_n = 0 (clean, α = 1, σ = 0, as diffusers'
`set_alpha_to_one`; no noise is added on the last step). Step i goes from t = t_i to s = t_{i+1}:
x̂₀ = (x_t − σ_t ε̂)/α_t and then the sampler's own update in `step(eps, i, x_t, noise)`, written out in full
there (diffusers style; `step(..., return_x0=True)` also returns x̂₀, diffusers' `pred_original_sample`).
Names: `x_t` is the noisy sample at the current level (the VDM z_t = α_t x₀ + σ_t ε), `noise` the fresh
N(0, I) draw a stochastic step adds. The network is called as `eps_fn(x_t, logsnr)` with `logsnr` = λ(t_i) of
shape (batch,).

`sample` compiles the whole loop with `kgen.backend.compile_function` (jax.jit / tf.function / eager torch)
once per eps function; all the loop's noise, shape (steps,) + x_T.shape, is drawn before the loop from the
sampler's SeedGenerator (or given as `noise`, which makes runs reproducible across backends). Memory: that
noise is `steps` copies of x_T. The Keras state the eps function reads (weights, seed generators) is found
from the function itself (`kgen.backend.state_of`: a Layer, a bound method or closure of one, kgen's wrappers),
so the compiled loop sees the current weights on every backend without being told.
"""

import numbers

import keras
import numpy as np
from keras import ops

from kgen import backend as kb
from kgen._checks import check_choice, check_int
from kgen._deprecation import deprecated_state, renamed_keywords, warn_deprecated
from kgen.backend import state_of
from kgen.base import check_value_range
from kgen.diffusion import grids
from kgen.diffusion.predictions import per_example
from kgen.diffusion.schedules import Schedule, _sigmoid_numpy, serialize

__all__ = ["DiffusionSampler", "DDIMSampler", "DDPMSampler", "AncestralSampler"]


def _check_clip(clip_denoised):
    """None, c > 0 (clip x̂₀ to [−c, c]) or (low, high) (clip to that range); returns c or (low, high)."""
    if clip_denoised is None:
        return None
    if isinstance(clip_denoised, (tuple, list)):
        return check_value_range(clip_denoised, "clip_denoised")
    if isinstance(clip_denoised, bool) or not isinstance(clip_denoised, numbers.Real) or not clip_denoised > 0:
        raise ValueError(f"`clip_denoised` must be None, a number > 0 or (low, high), got {clip_denoised!r}")
    return clip_denoised


class _Coefficients(dict):
    """The dict of `coefficients()`; its old key "c_z" (now "c_noise") still reads, with a DeprecationWarning."""

    def __getitem__(self, key):
        if key == "c_z":
            warn_deprecated('coefficients()["c_z"]', '["c_noise"]')
            key = "c_noise"
        return super().__getitem__(key)


class DiffusionSampler:
    """Base class of the diffusion samplers: the grid, its per-step tables (float64 NumPy), the compiled loop.

    Subclasses set `self.tables` (dict of (steps,) arrays, read with `self.take(name, i, x_t)`) and implement
    `mean(eps, x0, i, x_t)`: the deterministic part of one reverse update from grid level i to i + 1, given ε̂
    and x̂₀ = `denoise(eps, i, x_t)`. `step(eps, i, x_t, noise=None, *, return_x0=False)` is that mean plus
    `noise_std[i] · noise` (`noise`: the fresh N(0, I) draw of a stochastic step); a sampler whose update is
    not of this form overrides `step` itself. `coefficients()` returns the step as an affine map
    x_next = c_x x_t + c_eps ε̂ + c_noise noise (what `kgen.diffusion.testing` propagates exactly).

    Args:
        schedule: a `kgen.diffusion` Schedule.
        steps: number of sampling steps, 1 <= steps <= schedule.num_steps for discrete schedules.
        spacing: timestep spacing on discrete schedules ("linspace", "leading", "trailing"; see `grids`).
        seed: seed of the sampler's SeedGenerator (None: drawn from the global seed).
        clip_denoised: None, c > 0 to clip x̂₀ to [−c, c], or (low, high) to clip it to that data range.

    Example:

    ```python
    import keras
    import numpy as np
    from kgen.diffusion import CosineSchedule, DiffusionSampler

    class EulerSampler(DiffusionSampler):  # DDIM η = 0 written as an Euler step of the probability-flow ODE
        stochastic = False

        def __init__(self, schedule, steps, **kwargs):
            super().__init__(schedule, steps, **kwargs)
            self.tables["logsnr"] = self.logsnr

        def mean(self, eps, x0, i, x_t):
            return self.take("alpha_s", i, x_t) * x0 + self.take("sigma_s", i, x_t) * eps

        def coefficients(self):
            t = self.tables
            c_x = t["alpha_s"] / t["alpha_t"]
            return {"c_x": c_x, "c_eps": t["sigma_s"] - c_x * t["sigma_t"], "c_noise": 0.0 * c_x,
                    "logsnr": self.logsnr}

    x_0 = EulerSampler(CosineSchedule(), 20).sample(lambda x_t, logsnr: 0.0 * x_t, keras.random.normal((4, 2)))
    ```
    """

    stochastic = True

    def __init__(self, schedule, steps, spacing="linspace", seed=None, clip_denoised=None):
        if not isinstance(schedule, Schedule):
            raise TypeError(f"`schedule` must be a kgen.diffusion Schedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self.steps = check_int("steps", steps, 1)
        self.spacing = check_choice("spacing", spacing, grids.SPACINGS)
        self.clip_denoised = _check_clip(clip_denoised)
        self.times = grids.times(schedule.num_steps, self.steps, spacing)  # (steps + 1,), last 0
        self.logsnr = schedule.logsnr_numpy(self.times[:-1])
        alpha_t = np.sqrt(_sigmoid_numpy(self.logsnr))
        sigma_t = np.sqrt(_sigmoid_numpy(-self.logsnr))
        # Next level; the clean end has α = 1, σ = 0 exactly.
        alpha_s, sigma_s = np.append(alpha_t[1:], 1.0), np.append(sigma_t[1:], 0.0)
        self.tables = {"alpha_t": alpha_t, "sigma_t": sigma_t, "alpha_s": alpha_s, "sigma_s": sigma_s}
        self.seed = seed
        self.seed_generator = kb.SeedGenerator(seed)
        self._compiled = {}

    # --- the update ----------------------------------------------------------------------------------------
    def take(self, name, i, x_t):
        """Entry `i` (int or scalar tensor) of the table `name`, in `x_t`'s dtype."""
        return ops.take(ops.convert_to_tensor(self.tables[name], dtype=x_t.dtype), i)

    def denoise(self, eps, i, x_t):
        """x̂₀ = (x_t − σ_t ε̂)/α_t at grid level i, clipped as `clip_denoised` says (diffusers' pred_original_sample)."""
        x0 = (x_t - self.take("sigma_t", i, x_t) * eps) / self.take("alpha_t", i, x_t)
        if self.clip_denoised is None:
            return x0
        if isinstance(self.clip_denoised, tuple):
            return ops.clip(x0, *self.clip_denoised)
        return ops.clip(x0, -self.clip_denoised, self.clip_denoised)

    def mean(self, eps, x0, i, x_t):
        """The update from level i to i + 1 without its noise, from ε̂, x̂₀ and x_t (the subclass's math)."""
        raise NotImplementedError(f"{type(self).__name__} must implement mean(eps, x0, i, x_t) or step(...)")

    @renamed_keywords(x="x_t", z="noise")
    def step(self, eps, i, x_t, noise=None, *, return_x0=False):
        """One reverse update from level i to i + 1: `mean` + noise_std[i] · noise; x_next, or (x_next, x̂₀)."""
        x0 = self.denoise(eps, i, x_t)
        x_next = self.mean(eps, x0, i, x_t)
        if noise is not None:
            x_next = x_next + self.take("noise_std", i, x_t) * noise
        return (x_next, x0) if return_x0 else x_next

    def coefficients(self):
        """The step as x_next = c_x x_t + c_eps ε̂ + c_noise noise: a dict of (steps,) arrays, and "logsnr"."""
        raise NotImplementedError

    @property
    def needs_noise(self):
        coefficients = self.coefficients()
        c_noise = coefficients["c_noise" if "c_noise" in coefficients else "c_z"]  # "c_z": a pre-rename subclass
        return self.stochastic and bool(np.any(c_noise > 0))

    # --- the loop ------------------------------------------------------------------------------------------
    def sample(self, eps_fn, x_T, noise=None, state=None):
        """Run the reverse process from `x_T` to x₀, compiled.

        Args:
            eps_fn: `eps_fn(x_t, logsnr) -> eps`, `logsnr` of shape (batch,) (see `as_eps_fn` for x₀/v models):
                `model.eps_fn`, a Keras Layer, a function of one, or kgen's guidance wrappers. The Keras
                state it reads is found from it (`kgen.backend.state_of`).
            x_T: the start, shape (batch, ...), usually N(0, I) (α_{t_0} x₀ + σ_{t_0} ε when t_0 < 1).
            noise: optional pre-drawn per-step noise of shape (steps,) + x_T.shape; drawn from the sampler's
                seed generator when None (only used by stochastic samplers).
            state: deprecated (found from `eps_fn`); extra Layers/SeedGenerators `eps_fn` reads.

        Returns:
            x₀, a tensor of x_T's shape.
        """
        state = deprecated_state(state, f"{type(self).__name__}.sample")
        x_T = self._check_input("x_T", x_T)
        if noise is not None:
            noise = ops.convert_to_tensor(noise, dtype=x_T.dtype)
            expected = (self.steps,) + tuple(x_T.shape)
            if tuple(noise.shape) != expected:
                raise ValueError(f"`noise` must have shape (steps,) + x_T.shape = {expected}, got {tuple(noise.shape)}")
        if not self.needs_noise:
            return self._compile(eps_fn, "deterministic", state)(x_T)
        if noise is None:
            return self._compile(eps_fn, "draw", state)(x_T)
        return self._compile(eps_fn, "given", state)(x_T, noise)

    def _check_input(self, name, x):
        if not ops.is_tensor(x):  # NumPy / lists take Keras's float type (float64 arrays would not match the model)
            x = ops.convert_to_tensor(np.asarray(x), dtype=keras.config.floatx())
        elif "float" not in keras.backend.standardize_dtype(x.dtype):
            x = ops.cast(x, keras.config.floatx())
        if len(x.shape) < 2:
            raise ValueError(f"`{name}` must have shape (batch, ...), got shape {tuple(x.shape)}")
        return x

    def loop(self, eps_fn, x_T, noise=None):
        """The reverse loop, not compiled: for tracing into another graph (e.g. an exported endpoint).

        Same arguments as `sample`; `noise` must be given (or drawn by the caller) for stochastic samplers.
        """
        if noise is None and self.needs_noise:
            raise ValueError(f"{type(self).__name__} is stochastic: pass `noise` of shape (steps,) + x_T.shape")
        return self._loop(eps_fn, x_T, noise)

    def _loop(self, eps_fn, x_T, noise):
        def body(i, x_t):
            eps = eps_fn(x_t, per_example(self.take("logsnr", i, x_t), x_t))
            return self.step(eps, i, x_t, None if noise is None else noise[i])

        return ops.fori_loop(0, self.steps, body, x_T)

    def _compile(self, eps_fn, mode, state):
        if not callable(eps_fn):
            raise TypeError(f"`eps_fn` must be callable, got {type(eps_fn).__name__}")
        key = (id(eps_fn), mode, tuple(id(s) for s in state or []))
        if key not in self._compiled:
            if mode == "deterministic":
                def run(x):
                    return self._loop(eps_fn, x, None)
            elif mode == "draw":
                def run(x):
                    noise = keras.random.normal((self.steps,) + tuple(x.shape), dtype=x.dtype,
                                                seed=self.seed_generator)
                    return self._loop(eps_fn, x, noise)
            else:
                def run(x, noise):
                    return self._loop(eps_fn, x, noise)
            variables = [self.seed_generator] + state_of(eps_fn) + state
            # Keep eps_fn alive with its compiled loop, so its id cannot be reused by another function.
            self._compiled[key] = (eps_fn, kb.compile_function(run, state=variables))
        return self._compiled[key][1]

    def get_config(self):
        clip = list(self.clip_denoised) if isinstance(self.clip_denoised, tuple) else self.clip_denoised
        return {"schedule": serialize(self.schedule), "steps": self.steps, "spacing": self.spacing,
                "seed": self.seed, "clip_denoised": clip}


class DDIMSampler(DiffusionSampler):
    """DDIM (Song et al. 2021, eq. 12): x_s = α_s x̂₀ + sqrt(σ_s² − c²) ε̂ + c·noise, c = η σ_s/σ_t sqrt(1 − α_t²/α_s²).

    η = 0 is the deterministic probability-flow-like sampler (and has `invert`); η = 1 is DDPM ancestral with
    variance β̃ on the same grid. In Su's notation (kexue.fm/archives/9181) c is his σ_t and α_t/α_s his α_t.

    Args:
        schedule: a `kgen.diffusion.Schedule`.
        steps: number of sampling steps, 1 <= steps <= schedule.num_steps for discrete schedules.
        eta: η >= 0 (η > 1 is allowed and adds more noise than DDPM).
        spacing: timestep spacing on discrete schedules ("linspace", "leading", "trailing"; see `grids`).
        seed: seed of the sampler's SeedGenerator (None: drawn from the global seed).
        clip_denoised: None, c > 0 to clip x̂₀ to [−c, c] (keras.io DDPM uses 1 for data in [−1, 1]), or
            (low, high).

    Example:

    ```python
    import keras
    from kgen.diffusion import CosineSchedule, DDIMSampler

    sampler = DDIMSampler(CosineSchedule(), steps=50)
    eps_fn = lambda x_t, logsnr: 0.0 * x_t                 # the exact ε̂ of data that is always 0
    x_0 = sampler.sample(eps_fn, keras.random.normal((4, 2)))   # ≈ 0
    x_T = sampler.invert(eps_fn, x_0)                       # back to the noise, deterministically
    ```
    """

    def __init__(self, schedule, steps, eta=0.0, spacing="linspace", seed=None, clip_denoised=None):
        super().__init__(schedule, steps, spacing, seed, clip_denoised)
        if isinstance(eta, bool) or not isinstance(eta, numbers.Real) or not eta >= 0:
            raise ValueError(f"`eta` must be a number >= 0, got {eta!r}")
        self.eta = float(eta)
        t = self.tables
        ratio = np.clip(1.0 - (t["alpha_t"] / t["alpha_s"]) ** 2, 0.0, None)
        noise_std = self.eta * t["sigma_s"] / t["sigma_t"] * np.sqrt(ratio)
        t["noise_std"] = noise_std
        t["direction"] = np.sqrt(np.clip(t["sigma_s"] ** 2 - noise_std ** 2, 0.0, None))
        t["logsnr"] = self.logsnr
        self.stochastic = self.eta > 0

    def mean(self, eps, x0, i, x_t):
        """DDIM from grid level i to i + 1: x_s = α_s x̂₀ + sqrt(σ_s² − c²) ε̂ (`step` adds c·noise)."""
        return self.take("alpha_s", i, x_t) * x0 + self.take("direction", i, x_t) * eps

    def coefficients(self):
        t = self.tables
        c_x = t["alpha_s"] / t["alpha_t"]
        return _Coefficients(c_x=c_x, c_eps=t["direction"] - c_x * t["sigma_t"], c_noise=t["noise_std"],
                             logsnr=self.logsnr)

    def invert(self, eps_fn, x_0, state=None):
        """Deterministic DDIM inversion (η = 0 update run from clean to t_0): x₀ → x_{t_0}.

        Each step evaluates ε̂ at the current point and level (the clean start uses the least noisy grid level)
        and moves to the next, noisier level: x' = α' x̂₀ + σ' ε̂. Exact in the limit of many steps. `state`:
        deprecated, as in `sample`.
        """
        state = deprecated_state(state, "DDIMSampler.invert")
        x_0 = self._check_input("x_0", x_0)
        return self._compile(eps_fn, "invert", state)(x_0)

    def _compile(self, eps_fn, mode, state):
        if mode != "invert":
            return super()._compile(eps_fn, mode, state)
        key = (id(eps_fn), mode, tuple(id(s) for s in state or []))
        if key not in self._compiled:
            t = self.tables
            # Levels visited, least noisy first: current (α_c, σ_c) -> next (α_n, σ_n).
            alpha_n, sigma_n = t["alpha_t"][::-1].copy(), t["sigma_t"][::-1].copy()
            alpha_c, sigma_c = np.append(1.0, alpha_n[:-1]), np.append(0.0, sigma_n[:-1])
            logsnr_eval = np.append(self.logsnr[-1], self.logsnr[::-1][:-1])
            tables = {"alpha_c": alpha_c, "sigma_c": sigma_c, "alpha_n": alpha_n, "sigma_n": sigma_n,
                      "logsnr": logsnr_eval}

            def take(name, i, x):
                return ops.take(ops.convert_to_tensor(tables[name], dtype=x.dtype), i)

            def run(x_0):
                def body(i, x_t):
                    eps = eps_fn(x_t, per_example(take("logsnr", i, x_t), x_t))
                    x0 = (x_t - take("sigma_c", i, x_t) * eps) / take("alpha_c", i, x_t)
                    return take("alpha_n", i, x_t) * x0 + take("sigma_n", i, x_t) * eps

                return ops.fori_loop(0, self.steps, body, x_0)

            variables = [self.seed_generator] + state_of(eps_fn) + state
            self._compiled[key] = (eps_fn, kb.compile_function(run, state=variables))
        return self._compiled[key][1]

    def get_config(self):
        return {**super().get_config(), "eta": self.eta}


class DDPMSampler(DiffusionSampler):
    """DDPM ancestral sampling (Ho et al. 2020, Alg. 2) on a sub-sequence of the schedule.

    With β = 1 − α_t²/α_s² for the step t → s: mean = α_s β/σ_t² · x̂₀ + (α_t/α_s) σ_s²/σ_t² · x (the
    posterior q(x_s | x_t, x̂₀)), variance β̃ = σ_s²/σ_t² · β ("fixed_small", keras.io's choice) or β
    ("fixed_large", DDPM's σ̂ of DDIM Table 1). No noise on the last step.

    Args:
        schedule, steps, spacing, seed, clip_denoised: as for `DDIMSampler`.
        variance: "beta_tilde" or "beta".

    Example:

    ```python
    import keras
    from kgen.diffusion import DDPMSampler, LinearSchedule

    sampler = DDPMSampler(LinearSchedule(), steps=1000, seed=0)
    x_0 = sampler.sample(lambda x_t, logsnr: 0.0 * x_t, keras.random.normal((4, 2)))
    ```
    """

    def __init__(self, schedule, steps, variance="beta_tilde", spacing="linspace", seed=None, clip_denoised=None):
        super().__init__(schedule, steps, spacing, seed, clip_denoised)
        self.variance = check_choice("variance", variance, ("beta_tilde", "beta"))
        t = self.tables
        beta = np.clip(1.0 - (t["alpha_t"] / t["alpha_s"]) ** 2, 0.0, None)
        t["coef_x0"] = t["alpha_s"] * beta / t["sigma_t"] ** 2
        t["coef_xt"] = t["alpha_t"] / t["alpha_s"] * t["sigma_s"] ** 2 / t["sigma_t"] ** 2
        variance_table = beta * t["sigma_s"] ** 2 / t["sigma_t"] ** 2 if variance == "beta_tilde" else beta.copy()
        variance_table[-1] = 0.0
        t["noise_std"] = np.sqrt(variance_table)
        t["logsnr"] = self.logsnr

    def mean(self, eps, x0, i, x_t):
        """The posterior mean of q(x_s | x_t, x̂₀) (`step` adds noise_std · noise)."""
        return self.take("coef_x0", i, x_t) * x0 + self.take("coef_xt", i, x_t) * x_t

    def coefficients(self):
        t = self.tables
        c_x0 = t["coef_x0"]
        return _Coefficients(c_x=t["coef_xt"] + c_x0 / t["alpha_t"], c_eps=-c_x0 * t["sigma_t"] / t["alpha_t"],
                             c_noise=t["noise_std"], logsnr=self.logsnr)

    def get_config(self):
        return {**super().get_config(), "variance": self.variance}


class AncestralSampler(DiffusionSampler):
    """Continuous-time ancestral sampler in log-SNR form (VDM; simple diffusion's `p_mean_variance`).

    From t to s < t with c = −expm1(λ_t − λ_s): mean = α_s (x (1 − c)/α_t + c x̂₀), variance = σ_s² c. Only
    λ is used, so it serves any schedule (shifted, interpolated, continuous); `expm1` keeps tiny steps
    accurate. Mathematically it is DDPM with β̃ on the same grid.

    Args:
        schedule, steps, spacing, seed, clip_denoised: as for `DDIMSampler` (on a continuous schedule the grid
            is t_j = j/steps).

    Example:

    ```python
    import keras
    from kgen.diffusion import AncestralSampler, CosineSchedule, shifted

    sampler = AncestralSampler(shifted(CosineSchedule(), 2), steps=100, seed=0)
    x_0 = sampler.sample(lambda x_t, logsnr: 0.0 * x_t, keras.random.normal((4, 2)))
    ```
    """

    def __init__(self, schedule, steps, spacing="linspace", seed=None, clip_denoised=None):
        super().__init__(schedule, steps, spacing, seed, clip_denoised)
        t = self.tables
        logsnr_s = np.append(self.logsnr[1:], np.inf)
        t["c"] = -np.expm1(self.logsnr - logsnr_s)
        t["noise_std"] = t["sigma_s"] * np.sqrt(t["c"])
        t["logsnr"] = self.logsnr

    def mean(self, eps, x0, i, x_t):
        """The ancestral mean in log-SNR form, α_s (x_t (1 − c)/α_t + c x̂₀) (`step` adds σ_s sqrt(c) · noise)."""
        c = self.take("c", i, x_t)
        return self.take("alpha_s", i, x_t) * (x_t * (1.0 - c) / self.take("alpha_t", i, x_t) + c * x0)

    def coefficients(self):
        t = self.tables
        a_s, a_t, c = t["alpha_s"], t["alpha_t"], t["c"]
        return _Coefficients(c_x=a_s * (1.0 - c) / a_t + a_s * c / a_t, c_eps=-a_s * c * t["sigma_t"] / a_t,
                             c_noise=t["noise_std"], logsnr=self.logsnr)


def __getattr__(name):
    """`kgen.diffusion.samplers.Sampler`: the deprecated name of `DiffusionSampler`, kept for one release."""
    if name == "Sampler":
        warn_deprecated("kgen.diffusion.samplers.Sampler", "kgen.diffusion.samplers.DiffusionSampler")
        return DiffusionSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
