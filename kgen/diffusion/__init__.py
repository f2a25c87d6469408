"""Diffusion models: log-SNR schedules, timestep grids, compiled samplers, guidance (CFG, Upsample Guidance).

Articles: Su Jianlin, "生成扩散模型漫谈" (https://kexue.fm/archives/9119 ff.), parts 22–23 on SNR and large images
(https://kexue.fm/archives/10047, /10055). Papers: DDPM (arXiv:2006.11239), DDIM (arXiv:2010.02502), VDM
(arXiv:2107.00630), simple diffusion (arXiv:2301.11093), Upsample Guidance (arXiv:2404.01709).

Convention everywhere: the noisy sample z_t = α_t x_0 + σ_t ε (called `x_t` in code), α² + σ² = 1,
λ = log(α²/σ²); t ∈ [0, 1] with t = 0 clean; `noise` is a fresh N(0, I) draw. Noise-prediction functions have
the signature `eps_fn(x_t, logsnr) -> eps` with `logsnr` of shape `(batch,)`; samplers find the Keras state
they read themselves (`kgen.backend.state_of`).

Files: schedules, resolution (the schedules' resolution shift), grids, predictions, samplers
(`DiffusionSampler` and its DDIM / DDPM / ancestral subclasses), guidance (CFG, Upsample Guidance), unet_layers + unet, ema, losses (min-SNR, multi-scale),
model (`DiffusionModel`), export (its serving endpoints), testing (closed-form oracles), compare (the Upsample
Guidance comparison).
"""

from kgen.diffusion import schedules  # noqa: F401
from kgen.diffusion.schedules import CosineSchedule, LinearSchedule, Schedule  # noqa: F401
from kgen.diffusion.resolution import InterpolatedSchedule, ShiftedSchedule, interpolated, shifted  # noqa: F401
from kgen.diffusion.grids import timesteps  # noqa: F401
from kgen.diffusion.predictions import EpsFunction, as_eps_fn  # noqa: F401
from kgen.diffusion.samplers import AncestralSampler, DDIMSampler, DDPMSampler, DiffusionSampler  # noqa: F401
from kgen.diffusion.guidance import ClassifierFreeGuidance, UpsampleGuidance  # noqa: F401
from kgen.diffusion import testing  # noqa: F401
from kgen.diffusion.unet import UNet  # noqa: F401
from kgen.ema import ExponentialMovingAverage  # noqa: F401  (kgen.ema: shared with the GANs)
from kgen.diffusion.losses import min_snr_weight  # noqa: F401
from kgen.diffusion.model import DiffusionModel  # noqa: F401

_DEPRECATED = {"Sampler": ("DiffusionSampler", DiffusionSampler)}


def __getattr__(name):
    """Deprecated names, kept for one release: `kgen.diffusion.Sampler` is `DiffusionSampler`."""
    if name in _DEPRECATED:
        from kgen._deprecation import warn_deprecated

        new, value = _DEPRECATED[name]
        warn_deprecated(f"kgen.diffusion.{name}", f"kgen.diffusion.{new}")
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
