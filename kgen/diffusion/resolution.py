"""The resolution shift of a noise schedule, and simple diffusion's interpolation between two shifts.

Su, "信噪比与大图生成（上）" (https://kexue.fm/archives/10047, part 22 of his diffusion series); simple diffusion
(Hoogeboom, Heek & Salimans 2023, arXiv:2301.11093, eq. 4–6). Average-pooling s×s pixels of an image multiplies
the SNR of z_t = α x + σ ε by s² (the signal's pooled mean keeps its variance while the independent noise's
variance falls s² times), so a schedule λ_lo tuned at resolution r keeps, at resolution s·r, the SNR that the
pooled image saw at r when

    λ_hi(t) = λ_lo(t) − 2 log s                 (`shifted`, `ShiftedSchedule`)

simple diffusion also interpolates in t between a light shift (clean end, details) and a heavy one (noisy end,
global structure): λ(t) = (1 − t) λ_clean(t) + t λ_noisy(t) (`interpolated`, `InterpolatedSchedule`).
Both are `Schedule`s (`kgen.diffusion.schedules`): saved with a model and read back through Keras.
"""

import math
import numbers

import keras

from kgen.diffusion.schedules import Schedule, deserialize

__all__ = ["ShiftedSchedule", "InterpolatedSchedule", "shifted", "interpolated"]


@keras.saving.register_keras_serializable(package="kgen")
class ShiftedSchedule(Schedule):
    """λ_hi(t) = λ_lo(t) − 2 log s: the schedule `schedule`, tuned at resolution r, moved to resolution s·r.

    Average-pooling s×s pixels raises the SNR s² times (Su part 22), so this shift keeps the SNR of the pooled
    image equal to the low-resolution schedule's (simple diffusion eq. 4–6: shift 2 log(64/d)). `num_steps` is
    the base schedule's. Build with `shifted(schedule, scale)`.

    Example:

    ```python
    from kgen.diffusion import CosineSchedule, ShiftedSchedule

    high = ShiftedSchedule(CosineSchedule(), 4)     # a schedule tuned at 64² used at 256²
    float(high.logsnr_numpy(0.5))                   # −2 log 4 ≈ −2.77: the same t is noisier
    ```
    """

    def __init__(self, schedule, scale):
        if not isinstance(schedule, Schedule):
            raise TypeError(f"`schedule` must be a kgen Schedule, got {type(schedule).__name__}")
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"`scale` must be a finite number > 0, got {scale!r}")
        self.schedule, self.scale = schedule, float(scale)
        self.num_steps = schedule.num_steps
        self.shift = -2.0 * math.log(self.scale)

    def _logsnr(self, t, xp):
        return self.schedule._logsnr(t, xp) + self.shift

    def _t_from_logsnr(self, logsnr, xp):
        return self.schedule._t_from_logsnr(logsnr - self.shift, xp)

    def get_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule), "scale": self.scale}

    @classmethod
    def from_config(cls, config):
        return cls(deserialize(config["schedule"]), config["scale"])


@keras.saving.register_keras_serializable(package="kgen")
class InterpolatedSchedule(Schedule):
    """λ(t) = (1 − t) λ_clean(t) + t λ_noisy(t): simple diffusion's interpolated shift.

    With `clean` = shifted(base, s_small) and `noisy` = shifted(base, s_large), the noisy end (global structure)
    gets the heavy shift and the clean end (details) the light one; lucidrains' `logsnr_schedule_interpolated`
    weights them this way (the research note trusts the code over one set of paper notes). The inverse is the
    generic bisection. Monotone whenever both schedules are decreasing and λ_noisy <= λ_clean.

    Example:

    ```python
    from kgen.diffusion import CosineSchedule, InterpolatedSchedule, shifted

    schedule = InterpolatedSchedule(shifted(CosineSchedule(), 2), shifted(CosineSchedule(), 16))
    schedule.logsnr_numpy([0.0, 1.0])               # λ_clean(0), λ_noisy(1)
    ```
    """

    def __init__(self, clean, noisy):
        for name, value in (("clean", clean), ("noisy", noisy)):
            if not isinstance(value, Schedule):
                raise TypeError(f"`{name}` must be a kgen Schedule, got {type(value).__name__}")
        if clean.num_steps != noisy.num_steps:
            raise ValueError(f"`clean` and `noisy` must have the same num_steps, got {clean.num_steps} "
                             f"and {noisy.num_steps}")
        self.clean, self.noisy = clean, noisy
        self.num_steps = clean.num_steps

    def _logsnr(self, t, xp):
        return (1.0 - t) * self.clean._logsnr(t, xp) + t * self.noisy._logsnr(t, xp)

    def get_config(self):
        return {"clean": keras.saving.serialize_keras_object(self.clean),
                "noisy": keras.saving.serialize_keras_object(self.noisy)}

    @classmethod
    def from_config(cls, config):
        return cls(deserialize(config["clean"]), deserialize(config["noisy"]))


def shifted(schedule, scale):
    """`schedule` moved to a resolution `scale`× larger: λ(t) − 2 log(scale) (see `ShiftedSchedule`).

    Example:

    ```python
    from kgen.diffusion import CosineSchedule, shifted

    high = shifted(CosineSchedule(), 4)      # a 64² schedule used at 256²
    ```
    """
    return ShiftedSchedule(schedule, scale)


def interpolated(schedule, scale_clean, scale_noisy):
    """simple diffusion's interpolated schedule: shifted by `scale_noisy` at t = 1 and `scale_clean` at t = 0.

    Example:

    ```python
    from kgen.diffusion import CosineSchedule, interpolated

    schedule = interpolated(CosineSchedule(), 2, 16)   # 512² image: shifts 32→512 at noise, 256→512 at clean
    ```
    """
    return InterpolatedSchedule(shifted(schedule, scale_clean), shifted(schedule, scale_noisy))
