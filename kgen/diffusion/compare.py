"""The Upsample Guidance comparison users look at first: four ways to get s× images from a low-resolution model.

Su, "生成扩散模型漫谈(二十三)" (https://kexue.fm/archives/10055); Hwang et al., "Upsample Guidance"
(arXiv:2404.01709). Given a `DiffusionModel` trained at H×W (`low`) and optionally one trained at sH×sW
(`native`), `upsample_variants` draws, from the same seed and with DDIM (η = 0):

    "naive"      the low-resolution network run directly at sH×sW (it has never seen that size);
    "upsampled"  low-resolution samples, nearest-upsampled s×;
    "ug"         the low-resolution network at sH×sW with `UpsampleGuidance(scale=s, w=w)`;
    "native"     the high-resolution model (only if `native` is given).

Used by `examples/upsample_guidance.py`, `benchmarks/bench_upsample_guidance.py` and the demo.
"""

import time

import keras
import numpy as np

from kgen._checks import check_int

__all__ = ["LABELS", "VARIANTS", "ddim_samples", "upsample_variants"]
from kgen.diffusion.guidance import UpsampleGuidance, nearest_upsample
from kgen.diffusion.samplers import DDIMSampler

VARIANTS = ("naive", "upsampled", "ug", "native")
LABELS = {"naive": "(a) naive: low-res net at high res", "upsampled": "(b) low-res samples, upsampled",
          "ug": "(c) Upsample Guidance", "native": "(d) native high-res model"}


def ddim_samples(eps_fn, schedule, shape, n, steps=50, seed=0, batch=250, clip_denoised=1.0, eta=0.0, seconds=None):
    """`n` DDIM(η) samples of `shape` in [−1, 1], in batches; batch k starts from noise seeded `seed + k·batch`
    (η > 0: the per-step noise comes from the sampler's generator, seeded `seed`). `seconds`: a list that gets
    each batch's wall time per sample (the first batch's includes tracing and compilation)."""
    sampler = DDIMSampler(schedule, steps, eta=eta, seed=seed, clip_denoised=clip_denoised)
    out = []
    for start in range(0, n, batch):
        x_T = keras.random.normal((min(batch, n - start),) + tuple(shape), seed=seed + start)
        began = time.perf_counter()
        out.append(keras.ops.convert_to_numpy(sampler.sample(eps_fn, x_T)))
        if seconds is not None:
            seconds.append((time.perf_counter() - began) / len(out[-1]))
    return np.clip(np.concatenate(out), -1.0, 1.0)


def upsample_variants(low, native=None, n=16, steps=50, scale=2, w=1.0, seed=0, batch=250, clip_denoised=1.0,
                      ddim_eta=0.0, gate=None):
    """Images in [−1, 1] for each variant: a dict name -> array (n, sH, sW, C).

    Args:
        low: a `DiffusionModel` (unconditional, image data) trained at the low resolution.
        native: optional `DiffusionModel` trained at `scale`× the resolution, on the same schedule family.
        n, steps: samples per variant and DDIM steps.
        scale: the upsampling factor s (an integer ≥ 2).
        w: UG weight, the paper's w_t (Su's w + 1); 1 is the exact form.
        gate: UG's time gate η (guidance only for t ≥ 1 − η; `UpsampleGuidance(eta=...)`), None: every step.
        seed: seed of the starting noise (the same for every variant at the high resolution).
        batch: largest batch per sampler call.
        clip_denoised: clip every x̂₀ to ±this (the data range; None: no clipping), as `DiffusionModel.sample`.
        ddim_eta: the sampler's η for every variant (0: deterministic DDIM; 1: DDPM ancestral, variance β̃).
    """
    n, steps, scale = check_int("n", n, 1), check_int("steps", steps, 1), check_int("scale", scale, 2)
    h, w_, c = low.data_shape
    big = (h * scale, w_ * scale, c)
    if native is not None and tuple(native.data_shape) != big:
        raise ValueError(f"`native` must model {big} images (scale × low's {low.data_shape}), got {native.data_shape}")
    low.finish_ema()
    eps = low.eps_fn  # (x, logsnr) -> ε̂ with the EMA weights
    draw = dict(n=n, steps=steps, seed=seed, batch=batch, clip_denoised=clip_denoised, eta=ddim_eta)
    images = {"naive": ddim_samples(eps, low.schedule, big, **draw),
              "upsampled": keras.ops.convert_to_numpy(
                  nearest_upsample(ddim_samples(eps, low.schedule, low.data_shape, **draw), scale)),
              "ug": ddim_samples(UpsampleGuidance(eps, low.schedule, scale, w=w, eta=gate), low.schedule, big, **draw)}
    if native is not None:
        native.finish_ema()
        images["native"] = ddim_samples(native.eps_fn, native.schedule, big, **draw)
    return images
