"""Diffusion models: log-SNR schedules, timestep grids, compiled samplers, guidance (CFG, Upsample Guidance).

Articles: Su Jianlin, "生成扩散模型漫谈" (https://kexue.fm/archives/9119 ff.), parts 22–23 on SNR and large images
(https://kexue.fm/archives/10047, /10055). Papers: DDPM (arXiv:2006.11239), DDIM (arXiv:2010.02502), VDM
(arXiv:2107.00630), simple diffusion (arXiv:2301.11093), Upsample Guidance (arXiv:2404.01709).

Convention everywhere: z_t = α_t x_0 + σ_t ε, α² + σ² = 1, λ = log(α²/σ²); t ∈ [0, 1] with t = 0 clean.
Noise-prediction functions have the signature `eps_fn(x, logsnr) -> eps` with `logsnr` of shape `(batch,)`.
"""

from kgen.diffusion import schedules  # noqa: F401
from kgen.diffusion.schedules import (  # noqa: F401
    CosineSchedule,
    InterpolatedSchedule,
    LinearSchedule,
    Schedule,
    ShiftedSchedule,
    interpolated,
    shifted,
)
from kgen.diffusion.grids import timesteps  # noqa: F401
from kgen.diffusion.predictions import EpsFunction, as_eps_fn  # noqa: F401
from kgen.diffusion.samplers import AncestralSampler, DDIMSampler, DDPMSampler, Sampler  # noqa: F401
from kgen.diffusion.guidance import ClassifierFreeGuidance, UpsampleGuidance  # noqa: F401
from kgen.diffusion import testing  # noqa: F401
from kgen.diffusion.unet import UNet  # noqa: F401
from kgen.diffusion.ema import ExponentialMovingAverage  # noqa: F401
from kgen.diffusion.model import DiffusionModel, min_snr_weight  # noqa: F401
