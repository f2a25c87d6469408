"""Noise schedules in log-SNR form: discrete DDPM (linear β) and continuous cosine; their resolution shift and
interpolation are in `kgen.diffusion.resolution` (also importable from here).

One convention for all of kgen.diffusion (VDM / simple diffusion): a noisy sample at time t ∈ [0, 1]
(t = 0 clean, t = 1 noise) is z_t = α_t x_0 + σ_t ε with α_t² + σ_t² = 1, and a schedule is its log
signal-to-noise ratio λ(t) = log(α_t² / σ_t²), decreasing in t. Then α_t² = sigmoid(λ), σ_t² = sigmoid(−λ).

Notation mapping (research note §2):
- Su (kexue.fm "生成扩散模型漫谈"): ᾱ_t, β̄_t are our α_t, σ_t; SNR(t) = ᾱ_t²/β̄_t² = e^λ.
- DDPM / diffusers: `alphas_cumprod` ā_t is our α_t², 1 − ā_t is σ_t²; SNR = ā_t / (1 − ā_t).
- keras.io DDIM: `signal_rates` = α_t, `noise_rates` = σ_t.

Resolution shift (Su, "信噪比与大图生成（上）", https://kexue.fm/archives/10047; simple diffusion, Hoogeboom
et al. 2023, arXiv:2301.11093): average-pooling s×s pixels multiplies the SNR by s², so a schedule tuned at low
resolution is moved to resolution s× larger by λ_hi(t) = λ_lo(t) − 2 log s (`shifted`); simple diffusion also
interpolates between two shifts in t (`interpolated`). Both live in `kgen.diffusion.resolution`.

Every method takes `t` as a NumPy array or a Keras tensor of any shape and returns a tensor of the same shape,
computed with `keras.ops` (usable inside a compiled training step). The `*_numpy` twins compute the same in
float64 NumPy, for samplers' precomputed tables.

Saving: every schedule is registered with Keras (`keras.saving.register_keras_serializable(package="kgen")`) and
has `get_config` / `from_config`, so `keras.saving.serialize_keras_object(schedule)` and its inverse work, and a
user subclass registered the same way saves with a model too. `serialize` / `deserialize` here are those two, and
`deserialize` also reads the older `{"class_name": "CosineSchedule", "config": {...}}` dicts of kgen's first
`.keras` files.
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from kgen._checks import check_int
from kgen._deprecation import warn_deprecated

__all__ = ["Schedule", "LinearSchedule", "CosineSchedule", "serialize", "deserialize"]

_RESOLUTION_NAMES = ("ShiftedSchedule", "InterpolatedSchedule", "shifted", "interpolated")


class _NumpyOps:
    """The few `keras.ops` names the schedules use, in float64 NumPy (so one formula serves both)."""

    log, exp, tan, arctan, floor, clip, take, minimum, maximum = (
        np.log, np.exp, np.tan, np.arctan, np.floor, np.clip, np.take, np.minimum, np.maximum)

    @staticmethod
    def cast(x, dtype):
        return np.asarray(x).astype(dtype)

    @staticmethod
    def searchsorted(sorted_sequence, values):
        return np.searchsorted(sorted_sequence, values, side="right")

    @staticmethod
    def constant(array, like):
        return np.asarray(array, dtype=np.float64)


class _KerasOps:
    log, exp, tan, arctan, floor, clip, take, minimum, maximum, cast = (
        ops.log, ops.exp, ops.tan, ops.arctan, ops.floor, ops.clip, ops.take, ops.minimum, ops.maximum, ops.cast)

    @staticmethod
    def searchsorted(sorted_sequence, values):
        shape = ops.shape(values)
        found = ops.searchsorted(sorted_sequence, ops.reshape(values, (-1,)), side="right")
        return ops.reshape(found, shape)

    @staticmethod
    def constant(array, like):
        return ops.convert_to_tensor(np.asarray(array), dtype=like.dtype)


def _as_float_tensor(t):
    """A Keras tensor: float tensors keep their dtype, anything else (NumPy, Python numbers) becomes floatx."""
    if ops.is_tensor(t) and "float" in keras.backend.standardize_dtype(t.dtype):
        return t
    return ops.convert_to_tensor(np.asarray(t), dtype=keras.config.floatx())


@keras.saving.register_keras_serializable(package="kgen")
class Schedule:
    """Base class: a decreasing log-SNR λ(t) on t ∈ [0, 1] (t = 0 clean, t = 1 noise).

    Subclasses implement `_logsnr(t, xp)` (and `_t_from_logsnr(l, xp)` when a closed form exists) once, with
    `xp` either `keras.ops` or NumPy; the base class derives α, σ and the NumPy twins from it. To save a
    subclass with a model, register it with Keras and give it a `get_config` holding its constructor arguments.

    Attributes:
        num_steps: T for a discrete schedule (a sampler's timestep grid lives on its T points
            t_i = i / T, i = 1..T), None for a continuous one.

    Example:

    ```python
    import keras
    import numpy as np
    from kgen.diffusion import DDIMSampler, Schedule

    @keras.saving.register_keras_serializable(package="my_project")
    class LinearLogSNR(Schedule):  # λ(t) = λ_max + t (λ_min − λ_max): linear in log-SNR
        def __init__(self, logsnr_min=-10.0, logsnr_max=10.0):
            self.logsnr_min, self.logsnr_max = logsnr_min, logsnr_max

        def _logsnr(self, t, xp):
            return self.logsnr_max + t * (self.logsnr_min - self.logsnr_max)

        def get_config(self):
            return {"logsnr_min": self.logsnr_min, "logsnr_max": self.logsnr_max}

    schedule = LinearLogSNR()
    schedule.alpha(np.array([0.0, 0.5, 1.0]))         # α_t, a Keras tensor
    schedule.t_from_logsnr(np.array([0.0]))            # [0.5], by bisection (no closed form given)
    x_0 = DDIMSampler(schedule, steps=20).sample(lambda x_t, logsnr: 0.0 * x_t, keras.random.normal((4, 2)))
    ```
    """

    num_steps = None

    # --- keras.ops views ------------------------------------------------------------------------------------
    def logsnr(self, t):
        """λ(t) = log(α_t²/σ_t²), same shape as `t`."""
        return self._logsnr(_as_float_tensor(t), _KerasOps)

    def alpha(self, t):
        """α_t = sqrt(sigmoid(λ(t))), the signal coefficient (Su's ᾱ_t, DDPM's sqrt(ā_t))."""
        return ops.sqrt(ops.sigmoid(self.logsnr(t)))

    def sigma(self, t):
        """σ_t = sqrt(sigmoid(−λ(t))), the noise coefficient (Su's β̄_t, DDPM's sqrt(1 − ā_t))."""
        return ops.sqrt(ops.sigmoid(-self.logsnr(t)))

    def t_from_logsnr(self, logsnr):
        """The time t ∈ [0, 1] with λ(t) = `logsnr` (clipped to the schedule's range)."""
        return self._t_from_logsnr(_as_float_tensor(logsnr), _KerasOps)

    # --- NumPy float64 twins ----------------------------------------------------------------------------------
    def logsnr_numpy(self, t):
        return self._logsnr(np.asarray(t, dtype=np.float64), _NumpyOps)

    def alpha_numpy(self, t):
        return np.sqrt(_sigmoid_numpy(self.logsnr_numpy(t)))

    def sigma_numpy(self, t):
        return np.sqrt(_sigmoid_numpy(-self.logsnr_numpy(t)))

    def t_from_logsnr_numpy(self, logsnr):
        return self._t_from_logsnr(np.asarray(logsnr, dtype=np.float64), _NumpyOps)

    # --- to implement ---------------------------------------------------------------------------------------
    def _logsnr(self, t, xp):
        raise NotImplementedError

    def _t_from_logsnr(self, logsnr, xp):
        """Generic inverse: 48 bisection steps on the decreasing λ (exact to 2⁻⁴⁸; closed forms override)."""
        low, high = logsnr * 0.0, logsnr * 0.0 + 1.0
        for _ in range(48):
            mid = 0.5 * (low + high)
            above = self._logsnr(mid, xp) > logsnr  # λ(mid) too large: the root lies later in time
            low = xp.maximum(low, mid * xp.cast(above, mid.dtype))
            high = xp.minimum(high, mid + (1.0 - mid) * xp.cast(above, mid.dtype))
        return 0.5 * (low + high)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _sigmoid_numpy(x):
    """sigmoid(x) to a few ulps relative in both tails (0.5·(1 + tanh(x/2)) loses ~1e-10 relative at x = −15)."""
    e = np.exp(-np.abs(x))  # in (0, 1]: no overflow, and no 1 − (nearly 1) cancellation
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@keras.saving.register_keras_serializable(package="kgen")
class LinearSchedule(Schedule):
    """DDPM's linear β schedule (Ho et al. 2020, arXiv:2006.11239), discrete and continuous views.

    Discrete: β_i = linspace(beta_start, beta_end, T)_i and ā_i = Π_{j≤i}(1 − β_j), i = 1..T (DDPM's
    `alphas_cumprod`; diffusers' index i − 1). Continuous: time t_i = i / T carries λ_i = log(ā_i/(1 − ā_i))
    exactly, and λ(t) is the piecewise-linear interpolation of these points in t, extended to [0, 1/T) with
    the slope of the first segment (λ(0) ≈ 10.0 for the defaults). So α(i/T)² = ā_i on every grid point and a
    sampler on this schedule reproduces discrete DDPM/DDIM, while networks can be conditioned on λ.

    Args:
        num_steps: T, int >= 2.
        beta_start, beta_end: β_1 and β_T, 0 < beta_start <= beta_end < 1.

    Example:

    ```python
    from kgen.diffusion import LinearSchedule

    schedule = LinearSchedule()                     # T = 1000, β from 1e-4 to 0.02 (DDPM)
    float(schedule.alpha_numpy(1 / 1000) ** 2)      # ā_1 = 1 − β_1 = 0.9999
    schedule.logsnr([0.5, 1.0])                     # λ at t = 0.5 and t = 1, a Keras tensor
    ```
    """

    def __init__(self, num_steps=1000, beta_start=1e-4, beta_end=0.02):
        self.num_steps = check_int("num_steps", num_steps, 2)
        for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value < 1.0:
                raise ValueError(f"`{name}` must be a number in (0, 1), got {value!r}")
        if beta_start > beta_end:
            raise ValueError(f"`beta_start` must be <= `beta_end`, got {beta_start} > {beta_end}")
        self.beta_start, self.beta_end = float(beta_start), float(beta_end)
        self.betas = np.linspace(self.beta_start, self.beta_end, self.num_steps)
        self.alphas_cumprod = np.cumprod(1.0 - self.betas)
        # log(ā/(1−ā)) with 1 − ā computed as −expm1(Σ log(1 − β)) to keep early steps accurate.
        log_abar = np.cumsum(np.log1p(-self.betas))
        table = log_abar - np.log(-np.expm1(log_abar))
        self._table = table  # λ_i at t = i/T, i = 1..T (decreasing)
        self._table_ascending = -table

    def _logsnr(self, t, xp):
        big_t = self.num_steps
        u = t * big_t - 1.0  # fractional 0-based index into the table
        i = xp.clip(xp.floor(u), 0.0, big_t - 2.0)
        frac = u - i
        index = xp.cast(i, "int32")
        table = xp.constant(self._table, t)
        low, high = xp.take(table, index), xp.take(table, index + 1)
        return low + frac * (high - low)

    def _t_from_logsnr(self, logsnr, xp):
        big_t = self.num_steps
        ascending = xp.constant(self._table_ascending, logsnr)
        # Index k with −λ_k <= −l < −λ_{k+1}, clipped so that the end segments extrapolate linearly.
        k = xp.clip(xp.searchsorted(ascending, -logsnr) - 1, 0, big_t - 2)
        low, high = xp.take(ascending, k), xp.take(ascending, k + 1)
        u = xp.cast(k, logsnr.dtype) + (-logsnr - low) / (high - low)
        return xp.clip((u + 1.0) / big_t, 0.0, 1.0)

    def get_config(self):
        return {"num_steps": self.num_steps, "beta_start": self.beta_start, "beta_end": self.beta_end}


@keras.saving.register_keras_serializable(package="kgen")
class CosineSchedule(Schedule):
    """Continuous cosine schedule in log-SNR form, clipped to [logsnr_min, logsnr_max].

    α_t = cos(πt/2), σ_t = sin(πt/2) gives λ(t) = −2 log tan(πt/2), which is ±∞ at the ends. As in simple
    diffusion and VDM code, time is mapped affinely into [t_min, t_max] with t_min = arctan(e^{−λ_max/2}),
    t_max = arctan(e^{−λ_min/2}) before the tangent: λ(t) = −2 log tan(t_min + t (t_max − t_min)), so λ(0) =
    logsnr_max, λ(1) = logsnr_min exactly. This is the continuous form of improved DDPM's cosine schedule
    (Nichol & Dhariwal 2021, arXiv:2102.09672: ā_t = f(t)/f(0), f = cos²((t + 0.008)/1.008 · π/2), β clipped
    at 0.999); here the end points are handled by the λ clip instead of the offset 0.008 and the β clip.

    Args:
        logsnr_min: λ at t = 1 (default −15).
        logsnr_max: λ at t = 0 (default 15).

    Example:

    ```python
    from kgen.diffusion import CosineSchedule

    schedule = CosineSchedule()                     # λ from 15 at t = 0 to −15 at t = 1
    round(float(schedule.logsnr_numpy(0.5)), 9)     # 0.0: the middle of a symmetric clip has SNR 1
    schedule.t_from_logsnr([0.0])                   # [0.5], the closed-form inverse
    ```
    """

    def __init__(self, logsnr_min=-15.0, logsnr_max=15.0):
        for name, value in (("logsnr_min", logsnr_min), ("logsnr_max", logsnr_max)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"`{name}` must be a finite number, got {value!r}")
        if not logsnr_min < logsnr_max:
            raise ValueError(f"`logsnr_min` must be < `logsnr_max`, got {logsnr_min} >= {logsnr_max}")
        self.logsnr_min, self.logsnr_max = float(logsnr_min), float(logsnr_max)
        self._t_min = math.atan(math.exp(-0.5 * self.logsnr_max))
        self._t_max = math.atan(math.exp(-0.5 * self.logsnr_min))

    def _logsnr(self, t, xp):
        return -2.0 * xp.log(xp.tan(self._t_min + t * (self._t_max - self._t_min)))

    def _t_from_logsnr(self, logsnr, xp):
        logsnr = xp.clip(logsnr, self.logsnr_min, self.logsnr_max)
        return (xp.arctan(xp.exp(-0.5 * logsnr)) - self._t_min) / (self._t_max - self._t_min)

    def get_config(self):
        return {"logsnr_min": self.logsnr_min, "logsnr_max": self.logsnr_max}


def register(cls):
    """Deprecated: register a Schedule subclass with `keras.saving.register_keras_serializable(package=...)`.

    Registers `cls` with Keras under the package "kgen" (what `deserialize` and `.keras` files read); returns it.
    """
    warn_deprecated("kgen.diffusion.schedules.register", "keras.saving.register_keras_serializable()")
    if not (isinstance(cls, type) and issubclass(cls, Schedule)):
        raise TypeError(f"`cls` must be a subclass of Schedule, got {cls!r}")
    return keras.saving.register_keras_serializable(package="kgen")(cls)


def serialize(schedule):
    """`keras.saving.serialize_keras_object(schedule)`: a JSON-ready dict that `deserialize` turns back."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"`schedule` must be a kgen Schedule, got {type(schedule).__name__}")
    return keras.saving.serialize_keras_object(schedule)


def deserialize(config):
    """The schedule described by `serialize`'s dict (a Schedule passes through unchanged).

    Also reads the format of kgen's first `.keras` files, `{"class_name": "CosineSchedule", "config": {...}}`
    without a registered name: the class is looked up among the schedules registered under "kgen".
    """
    if isinstance(config, Schedule):
        return config
    if not isinstance(config, dict) or "class_name" not in config:
        raise TypeError(f"`config` must be a dict from kgen.diffusion.schedules.serialize, got {config!r}")
    if "registered_name" not in config and "module" not in config:  # the old kgen format
        name = config["class_name"]
        cls = keras.saving.get_registered_object(f"kgen>{name}")
        if not (isinstance(cls, type) and issubclass(cls, Schedule)):
            raise ValueError(f"`config` names an unknown schedule {name!r}; known: {_known_names()}")
        return cls.from_config(dict(config.get("config") or {}))
    try:
        schedule = keras.saving.deserialize_keras_object(config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`config` names an unknown schedule {config['class_name']!r} ({error}); known: "
                         f"{_known_names()}") from None
    if not isinstance(schedule, Schedule):
        raise TypeError(f"`config` must describe a kgen Schedule, got {type(schedule).__name__}")
    return schedule


def _known_names():
    registered = keras.saving.get_custom_objects()
    return sorted(key for key, cls in registered.items()
                  if isinstance(cls, type) and issubclass(cls, Schedule) and cls is not Schedule)


def __getattr__(name):
    """`schedules.shifted` and the other resolution names, which live in `kgen.diffusion.resolution` (not deprecated:
    a re-export, resolved on first use so that the two modules do not import each other)."""
    if name in _RESOLUTION_NAMES:
        from kgen.diffusion import resolution

        return getattr(resolution, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
