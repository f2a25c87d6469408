"""Upsample Guidance on animals (and natural patches): generate 28×28 from a model trained at 14×14, against baselines.

Su, "生成扩散模型漫谈（二十三）" (kexue.fm/archives/10055); Hwang et al., "Upsample Guidance" (arXiv:2404.01709).

Two U-Nets with the same architecture and the same training budget (optimizer steps, same batch):
one on 2×2 average-pooled animals (14×14), one on the originals (28×28), both ε-prediction on the cosine
schedule. A third 28×28 model trains on the resolution-shifted schedule (λ − 2 log 2, simple diffusion / Su
part 22) for the schedule comparison. Then, with one sampler for all (`--steps`; `--ddim-eta` 0 is DDIM, 1 is
DDPM's ancestral step with variance β̃, same per-step noise for every variant) at 28×28:

    (a) naive      the 14×14 model run directly at 28×28
    (b) upsampled  14×14 samples, nearest-upsampled ×2
    (c) UG         the 14×14 model with kgen.diffusion.UpsampleGuidance(scale=2), w_t = `--w` (default 1, exact),
                   time gate `--gate` (default none)
    (d) native     the 28×28 model (and (e) its shifted-schedule twin)

(kgen.diffusion.compare.upsample_variants; every x̂₀ clipped to [−1, 1], the data range)

and reports the Fréchet distance in kgen's animal-classifier features (`kgen.metrics.feature_model("animals")`)
to the test split, plus one grid of all four side by side. Goal: (c) beats (a) and (b) and is within 1.3× of (d).

    KERAS_BACKEND=jax python benchmarks/bench_upsample_guidance.py --train-steps 1500 --n 1000 --save saved_models
    KERAS_BACKEND=jax python benchmarks/bench_upsample_guidance.py --load saved_models --n 500 --ddim-eta 1 \
        --w 1.2 --gate 0.6 --out DIR

`--data field` needs no training and no sampling: the data are a stationary Gaussian field with spectrum |k|^−slope
(`kgen.datasets.gaussian_field`, `--slope`, default 2 like natural images) at 32×32, the low-resolution law is its
exact 2×2 average pooling (16×16), and every "model" is the exact Wiener ε* of its law
(`kgen.diffusion.testing.FieldWienerDenoiser`; run at another size it applies the same taps, as a CNN would).
The sampler's output is then Gaussian with a law computed exactly (`propagate_field`, `propagate_upsample_guidance`),
and the table gives each row's exact W2 to the 32×32 law and the exact power-spectrum distance (the
`kgen.metrics.spectrum_distance` of the two laws). `--check N` also draws N samples of the UG row with the Keras
sampler and compares their measured spectrum with the predicted one.

    KERAS_BACKEND=jax python benchmarks/bench_upsample_guidance.py --data field --steps 50 --check 500

`--data patches` runs the same protocol on natural-image patches (`kgen.datasets.load_patches`, 32×32 grayscale crops
of scikit-image's photographs and textures, in [−1, 1] via `to_signed`), where high-frequency texture is what the
higher resolution adds: the low-resolution data are the 32×32 crops 2×2 average-pooled (the same content at half
the resolution, UG's premise; crops taken at 16 would show 4× the field of view instead). Models
diffusion{16,32,32shifted}_patches.keras; rows (a) naive, (b) nearest- and bicubic-upsampled 16×16 samples, (c) UG
w_t = 1 and 1.2, each without and with the time gate (`--gate`, default 0.6), (d) the 32×32 model, (e) its
shifted-schedule twin; each with the FD in the patch classifier's features (`feature_model("patches")`) to the
held-out test patches (and to the training patches), `kgen.metrics.spectrum_distance` to the test patches and the
wall time per sample (timed after the first batch), written to OUT/patches.json with the sample grid and a plot of
the power spectra (OUT/patches_grid.png, OUT/patches_spectra.png):

    KERAS_BACKEND=jax python benchmarks/bench_upsample_guidance.py --data patches --train-steps 1500 \
        --save saved_models --train-only
    KERAS_BACKEND=jax python benchmarks/bench_upsample_guidance.py --data patches --load saved_models --n 500

`--native-seeds 1,2,3` (animals) samples only row (d), the native 28×28 model of `--load` (`--models 28`), once per
starting-noise seed (seed 1 is the four-way run's), and writes `OUT/native.json` with the FD of each and their
median: how far a longer-trained native model gets (README, the training-budget table).

    KERAS_BACKEND=jax python benchmarks/bench_upsample_guidance.py --load DIR --models 28 --n 500 --ddim-eta 1 \
        --native-seeds 1,2,3

`--sweep 1.0,1.2,0.8@0.6` samples only UG, once per setting `w_t[@η]` (the paper's weight, optional time gate),
from the models in `--load`, and writes `OUT/sweep.json` with the FD of each (the four-way run is skipped).
"""

import argparse
import json
import os
import time

import keras
import numpy as np

import kgen
from kgen.app import presets
from kgen.datasets import PATCH_LEVELS, load_animals, load_patches, to_signed
from kgen.diffusion.compare import LABELS, ddim_samples, upsample_variants
from kgen.diffusion.guidance import average_pool, nearest_upsample
from kgen.metrics import feature_model, frechet_distance
from kgen.metrics.frechet import gaussian_statistics

BACKENDS = ("jax",)


def animals(split, limit=None):
    x = load_animals(split)[0][:limit].astype("float32")
    return x / 127.5 - 1.0 if x.max() > 1.0 else x * 2.0 - 1.0


def patches(split, limit=None):
    """32×32 natural-image patches (`kgen.datasets.load_patches`) as float32 in [−1, 1]."""
    return to_signed(load_patches(split, size=32)[0][:limit], PATCH_LEVELS)


# Per dataset: the loader of signed high-resolution images and the names of the (low, high) resolution models.
DATASETS = {"animals": {"load": animals, "low": "14", "high": "28"},
            "patches": {"load": patches, "low": "16", "high": "32"}}


def statistics(features, images):
    """Gaussian statistics (mean, covariance) of images in [−1, 1] in a classifier's features (inputs in [0, 1])."""
    return gaussian_statistics(keras.ops.convert_to_numpy(features.predict((images + 1.0) / 2.0, verbose=0)))


def reference_statistics():
    """The animal classifier's feature model and the Gaussian statistics of the test split in its features."""
    features = feature_model("animals")
    return features, statistics(features, animals("test"))


def fd_to(reference_stats, images, features):
    return frechet_distance(*statistics(features, images), *reference_stats)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-steps", type=int, default=1500, help="optimizer steps per model (same budget)")
    parser.add_argument("--n", type=int, default=1000, help="samples per variant")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--ddim-eta", type=float, default=0.0, help="sampler η of every variant (0: DDIM; 1: DDPM, "
                        "variance β̃)")
    parser.add_argument("--w", type=float, default=1.0, help="UG weight w_t of row (c) (the paper's; Su's w + 1)")
    parser.add_argument("--gate", type=float, default=None, help="UG time gate η of row (c): guidance for t ≥ 1 − η")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--mults", default="1,2", help="U-Net channel multipliers per level")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="training images (smoke runs)")
    parser.add_argument("--load", default=None, help="folder with diffusion{14,28,28shifted}_animals.keras")
    parser.add_argument("--save", default=None, help="folder to save the trained models into")
    parser.add_argument("--out", default="benchmarks/upsample_guidance", help="folder for the grid and JSON")
    parser.add_argument("--sweep", default=None, help="UG settings w_t[@eta], comma-separated (needs --load)")
    parser.add_argument("--resume", action="store_true", help="train the models of --load --train-steps more steps "
                        "(optimizer state included) before sampling")
    parser.add_argument("--models", default=None, help="which models to build or load (default: all three, "
                        "14,28,28shifted for animals, 16,32,32shifted for patches)")
    parser.add_argument("--train-only", action="store_true", help="stop after training (and --save)")
    parser.add_argument("--data", choices=("animals", "patches", "field"), default="animals",
                        help="animals or patches (trained U-Nets), or field (exact oracles, exact W2; no training)")
    parser.add_argument("--slope", type=float, default=2.0, help="--data field: the spectrum's power-law exponent")
    parser.add_argument("--sample-batch", type=int, default=250, help="--data patches: samples per sampler call")
    parser.add_argument("--time-repeats", type=int, default=0, help="--data patches: re-time (d) and the UG rows "
                        "in turns this many times on one batch (fair cost ratios on a shared machine)")
    parser.add_argument("--check", type=int, default=0, help="--data field: samples drawn to check the UG row")
    parser.add_argument("--native-seeds", default=None, help="--data animals: sample only the native model (d) of "
                        "--load, once per seed (comma-separated ints), and report the FD of each and the median")
    args = parser.parse_args(argv)
    native_seeds = None
    if args.native_seeds is not None:
        try:
            native_seeds = [int(seed) for seed in args.native_seeds.split(",")]
        except ValueError:
            parser.error(f"--native-seeds: expected comma-separated integers, got {args.native_seeds!r}")
        if args.data != "animals" or not args.load or args.sweep or args.train_only:
            parser.error("--native-seeds needs --data animals and --load, without --sweep or --train-only")
    kgen.set_seed(0)
    os.makedirs(args.out, exist_ok=True)
    if args.data == "field":
        return field_table(args)
    data = DATASETS[args.data]
    low_name, high_name = data["low"], data["high"]
    x_high = data["load"]("train", args.limit)
    # The low-resolution data are the high-resolution images 2×2 average-pooled: the same content at half the
    # resolution, which is UG's premise (and the law its exactness condition is stated for).
    x_low = keras.ops.convert_to_numpy(average_pool(x_high, 2))
    specs = {low_name: (x_low, None), high_name: (x_high, None), f"{high_name}shifted": (x_high, 2)}  # shift
    selected = args.models.split(",") if args.models else list(specs)
    if args.resume and not args.load:
        parser.error("--resume needs --load")
    if native_seeds is not None and high_name not in selected:
        parser.error(f"--native-seeds: the native model is not among --models (add {high_name})")
    trains = args.resume or not args.load
    models, info = {}, {"backend": keras.backend.backend(), "train_steps": args.train_steps if trains else None,
                        "batch_size": args.batch_size, "steps": args.steps, "ddim_eta": args.ddim_eta,
                        "ug_w": args.w, "ug_gate": args.gate, "n": args.n,
                        "clip_denoised": 1.0}
    mults = tuple(int(m) for m in args.mults.split(","))
    for name, (x, shift) in specs.items():
        if (args.sweep and name != low_name) or name not in selected:
            continue  # the sweep samples only the low-resolution model
        if args.load:
            path = os.path.join(args.load, f"diffusion{name}_{args.data}.keras")
            if shift is not None and not os.path.exists(path):
                print(f"{path} not found: row (e) skipped")  # saved_models/ ships only the UG pair
                continue
            models[name] = keras.saving.load_model(path)
            if not args.resume:
                continue
        else:  # the recipe of `kgen train diffusion`; the same step budget for every model
            models[name] = presets.diffusion_model(x, seed=0, schedule_shift=shift, channels=args.channels,
                                                   channel_mults=mults)
        start = time.time()
        steps, _ = presets.fit_steps(models[name], x, args.train_steps, args.batch_size, verbose=0, shuffle=True)
        seconds = time.time() - start
        info[f"steps_{name}"], info[f"train_s_{name}"] = steps, round(seconds, 1)
        print(f"trained {name}: {steps} steps in {seconds:.0f} s", flush=True)
        if args.save:
            models[name].save(os.path.join(args.save, f"diffusion{name}_{args.data}.keras"))
    if args.train_only:
        with open(os.path.join(args.out, f"train_{args.data}.json"), "w") as f:
            json.dump(info, f, indent=2)
        return info
    if native_seeds is not None:
        return native_table(models[high_name], native_seeds, args, info)
    if args.data == "patches":
        return patches_table(models, x_high, args, info)
    if args.sweep:
        return sweep(models[low_name], args)
    start = time.time()
    images = upsample_variants(models[low_name], models[high_name], n=args.n, steps=args.steps, seed=1,
                               ddim_eta=args.ddim_eta, w=args.w, gate=args.gate)
    variants = {LABELS[name]: x for name, x in images.items()}
    if "28shifted" in models:
        shifted = models["28shifted"]
        variants["(e) native 28, shifted schedule"] = ddim_samples(shifted.eps_fn, shifted.schedule, (28, 28, 1),
                                                                 args.n, args.steps, seed=1, eta=args.ddim_eta)
    info["sampling_s"] = round(time.time() - start, 1)
    features, reference = reference_statistics()
    info["fd"] = {name: round(float(fd_to(reference, images, features)), 2) for name, images in variants.items()}
    info["fd"]["train images (reference)"] = round(float(fd_to(reference, x_high[: args.n], features)), 2)
    for name, value in info["fd"].items():
        print(f"[{info['backend']}] FD {name}: {value:.2f}")
    fd = info["fd"]
    ug, native, naive, upsampled = (fd[LABELS[k]] for k in ("ug", "native", "naive", "upsampled"))
    info["ug_over_native"] = round(ug / native, 3)
    print(f"UG / native = {ug / native:.2f} (goal ≤ 1.3); UG beats naive: {ug < naive}, "
          f"beats upsampled: {ug < upsampled}")
    rows = np.concatenate([variants[k][:8] for k in list(variants)[:4]])  # one row of 8 per variant
    kgen.images.save_grid(os.path.join(args.out, "upsample_guidance_grid.png"), (rows + 1.0) / 2.0, rows=4, scale=3)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(info, f, indent=2)
    return info


def native_table(native, seeds, args, info):
    """Row (d) alone: FD of the native model's samples for each starting-noise seed, and their median."""
    features, reference = reference_statistics()
    native.finish_ema()
    info["fd_native_by_seed"] = {}
    for seed in seeds:
        images = ddim_samples(native.eps_fn, native.schedule, tuple(native.data_shape), n=args.n, steps=args.steps,
                              seed=seed, clip_denoised=1.0, eta=args.ddim_eta)
        fd = info["fd_native_by_seed"][str(seed)] = round(float(fd_to(reference, images, features)), 2)
        print(f"[{info['backend']}] FD (d) native, seed {seed}: {fd:.2f}", flush=True)
    info["fd_native_median"] = round(float(np.median(list(info["fd_native_by_seed"].values()))), 2)
    print(f"[{info['backend']}] FD (d) native, median of {len(seeds)}: {info['fd_native_median']:.2f}")
    with open(os.path.join(args.out, "native.json"), "w") as f:
        json.dump(info, f, indent=2)
    return info


def sweep(low, args):
    """FD of UG samples for each `w_t[@eta]` of `args.sweep` (same starting noise as the four-way run)."""
    from kgen.diffusion import UpsampleGuidance

    features, reference = reference_statistics()
    low.finish_ema()
    big = tuple(2 * d for d in low.data_shape[:2]) + tuple(low.data_shape[2:])
    results = {"backend": keras.backend.backend(), "n": args.n, "steps": args.steps, "ddim_eta": args.ddim_eta,
               "fd": {}}
    for item in args.sweep.split(","):
        w, _, eta = item.partition("@")
        guided = UpsampleGuidance(low.eps_fn, low.schedule, 2, w=float(w), eta=float(eta) if eta else None)
        start = time.time()
        images = ddim_samples(guided, low.schedule, big, n=args.n, steps=args.steps, seed=1, clip_denoised=1.0,
                              eta=args.ddim_eta)
        results["fd"][item] = round(float(fd_to(reference, images, features)), 2)
        print(f"[{results['backend']}] UG w_t={w}{' eta=' + eta if eta else ''}: FD {results['fd'][item]:.2f} "
              f"({time.time() - start:.0f} s)", flush=True)
    with open(os.path.join(args.out, "sweep.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def _radial(values):
    """Radial average of per-frequency variances (n, n) over the bins of `kgen.metrics.power_spectrum`."""
    n = values.shape[0]
    k = np.fft.fftfreq(n) * n
    radius = np.rint(np.hypot(k[:, None], k[None, :])).astype(int).ravel()
    radii = np.arange(1, n // 2 + 1)
    return np.bincount(radius, weights=values.ravel(), minlength=n)[radii] / np.bincount(radius, minlength=n)[radii]


def _diagonal(law, scale=2):
    """The per-frequency variances (n, n) of a spectrum or of alias blocks (L, L, k, k) (their diagonals)."""
    if law.ndim == 2:
        return law
    low = law.shape[0]
    diagonal = np.real(np.diagonal(law, axis1=-2, axis2=-1)).reshape(low, low, scale, scale)
    return diagonal.transpose(2, 0, 3, 1).reshape(scale * low, scale * low)


def field_table(args):
    """Exact W2 (and exact spectrum distance) of every row on the Gaussian field, 16×16 → 32×32."""
    from kgen.datasets import field_spectrum
    from kgen.diffusion import CosineSchedule, DDIMSampler, UpsampleGuidance
    from kgen.diffusion import testing as oracle

    start = time.time()
    law = field_spectrum(32, args.slope)
    low_law = oracle.pooled_spectrum(law, 2)
    schedule = CosineSchedule()
    sampler = DDIMSampler(schedule, args.steps, eta=args.ddim_eta)
    high, low = oracle.FieldWienerDenoiser(law), oracle.FieldWienerDenoiser(low_law)

    def ug(eps_fn=low, **options):
        return oracle.propagate_upsample_guidance(sampler, UpsampleGuidance(eps_fn, schedule, 2, **options), 32)

    rows = {
        "(oracle) exact 32x32 eps*, sampled at 32x32": oracle.propagate_field(sampler, high),
        "(a) naive: the 16x16 eps* taps run at 32x32": oracle.propagate_field(sampler, low, 32),
        "(b) nearest-upsampled 16x16 sampler output": oracle.upsampled_blocks(oracle.propagate_field(sampler, low), 2),
        "(b') nearest-upsampled exact 16x16 law": oracle.upsampled_blocks(low_law, 2),
        "(c) UG w_t=1 (16x16 eps* at both sizes)": ug(),
        "(c) UG w_t=1.2": ug(w=1.2),
        "(c) UG w_t=1.2, gate eta=0.6": ug(w=1.2, eta=0.6),
        "(c') UG w_t=1 with the exact 32x32 eps* as eps_fn": ug(eps_fn=high, low_resolution_eps_fn=low),
    }
    reference = _radial(law)
    info = {"backend": keras.backend.backend(), "data": "field", "slope": args.slope, "size": 32, "low_size": 16,
            "steps": args.steps, "ddim_eta": args.ddim_eta, "w2_scale": "W2 to a point mass = sqrt(32*32) = 32",
            "w2": {}, "spectrum_distance": {}}
    print(f"Gaussian field |k|^-{args.slope:g}, 16x16 -> 32x32, DDIM eta={args.ddim_eta:g}, {args.steps} steps "
          f"(exact laws; W2 to a point mass = 32)")
    print(f"  {'row':55s} {'W2':>8s} {'spectrum dist':>14s}")
    for name, output in rows.items():
        w2 = oracle.w2_field(output, law)
        distance = float(np.mean((np.log(_radial(_diagonal(output))) - np.log(reference)) ** 2))
        info["w2"][name], info["spectrum_distance"][name] = round(w2, 4), round(distance, 5)
        print(f"  {name:55s} {w2:8.3f} {distance:14.5f}")
    low_w2 = oracle.w2_field(oracle.propagate_field(sampler, low), low_law)
    info["w2"]["16x16 exact eps* sampled at 16x16, vs the 16x16 law"] = round(low_w2, 4)
    print(f"  (the 16x16 sampler vs the 16x16 law: W2 {low_w2:.3f})")
    w2 = list(info["w2"].values())  # rows in order: [0] the oracle, [4] UG w_t = 1
    ratio = w2[4] / w2[0]
    info["ug_over_oracle_w2"] = round(ratio, 3)
    print(f"UG (w_t=1) W2 / exact 32x32 sampler W2 = {ratio:.2f} (issue 18 goal: <= 1.10)")
    if args.check:
        info["check"] = check_ug_samples(sampler, schedule, low, rows["(c) UG w_t=1 (16x16 eps* at both sizes)"],
                                         args.check)
    info["seconds"] = round(time.time() - start, 1)
    with open(os.path.join(args.out, "field.json"), "w") as f:
        json.dump(info, f, indent=2)
    return info


def check_ug_samples(sampler, schedule, low, predicted, n):
    """Draw n UG samples with the Keras sampler; compare their radial spectrum with the exact law's prediction."""
    from kgen.diffusion import UpsampleGuidance
    from kgen.metrics import power_spectrum

    x_T = keras.random.normal((n, 32, 32, 1), seed=1)
    samples = keras.ops.convert_to_numpy(sampler.sample(UpsampleGuidance(low, schedule, 2), x_T))
    _, measured = power_spectrum(samples)
    ratio = measured / _radial(_diagonal(predicted))
    print(f"check: {n} UG samples, measured / predicted radial power in [{ratio.min():.3f}, {ratio.max():.3f}]")
    return {"n": n, "ratio_min": round(float(ratio.min()), 4), "ratio_max": round(float(ratio.max()), 4)}


def _timed_samples(eps_fn, schedule, shape, args):
    """`args.n` samples drawn by `ddim_samples` (batch k from noise seeded 1 + k·batch) and the seconds per
    sample, timed on the batches after the first (the first includes tracing and compilation)."""
    seconds = []
    images = ddim_samples(eps_fn, schedule, shape, args.n, args.steps, seed=1, batch=args.sample_batch,
                          eta=args.ddim_eta, seconds=seconds)
    return images, float(np.mean(seconds[1:] or seconds))


def _ug_variants(low, gate):
    """{row name: UpsampleGuidance} of the (c) rows: w_t = 1 and 1.2, each on every step and gated."""
    from kgen.diffusion import UpsampleGuidance

    return {f"(c) UG w_t={w:g}" + (f", gate t >= {1 - eta:g}" if eta else ""):
            UpsampleGuidance(low.eps_fn, low.schedule, 2, w=w, eta=eta) for w in (1.0, 1.2) for eta in (None, gate)}


def interleaved_seconds(low, high, gate, args):
    """Seconds per sample of (d) and of each UG row of `patches_table`, re-timed in turns on one batch of
    `args.sample_batch` (`args.time_repeats` rounds, median), so that a change of load on a shared machine hits
    every row alike. Keyed like `patches_table`'s row times with the suffix " (interleaved)"."""
    from kgen.diffusion import DDIMSampler

    sampler = DDIMSampler(low.schedule, args.steps, eta=args.ddim_eta, seed=1, clip_denoised=1.0)
    native = DDIMSampler(high.schedule, args.steps, eta=args.ddim_eta, seed=1, clip_denoised=1.0)
    runs = {"(d)": (native, high.eps_fn)}
    runs.update({name: (sampler, guided) for name, guided in _ug_variants(low, gate).items()})
    x_T = keras.random.normal((args.sample_batch, 32, 32, 1), seed=1)
    times = {name: [] for name in runs}
    for _ in range(args.time_repeats):
        for name, (each, eps_fn) in runs.items():
            began = time.perf_counter()
            keras.ops.convert_to_numpy(each.sample(eps_fn, x_T))
            times[name].append((time.perf_counter() - began) / args.sample_batch)
    return {f"{name} (interleaved)": float(np.median(values)) for name, values in times.items()}


def bicubic_upsample(x, scale=2):
    """Bicubic ×`scale` upsampling of (n, H, W, C) images in [−1, 1] (clipped back to [−1, 1])."""
    _, h, w, _ = x.shape
    big = keras.ops.image.resize(x, (scale * h, scale * w), interpolation="bicubic")
    return np.clip(keras.ops.convert_to_numpy(big), -1.0, 1.0)


def patches_table(models, train, args, info):
    """Rows (a)–(e) on natural patches, 16×16 → 32×32: FD in the patch classifier's features, power-spectrum
    distance to the test patches, seconds per sample; writes patches.json, the grid and the spectra plot."""
    import datetime
    import platform
    import sys

    from kgen.metrics import power_spectrum, spectrum_distance

    for model in models.values():
        model.finish_ema()
    gate = 0.6 if args.gate is None else args.gate
    rows, seconds = {}, {}
    big = (32, 32, 1)
    if "16" in models:  # rows (a)-(c); with --models 32shifted alone only (e) is sampled (its own run)
        low = models["16"]
        rows["(a) naive: 16x16 net at 32x32"], seconds["(a)"] = _timed_samples(low.eps_fn, low.schedule, big, args)
        small, seconds["(b)"] = _timed_samples(low.eps_fn, low.schedule, (16, 16, 1), args)
        rows["(b) 16x16 samples, nearest-upsampled"] = keras.ops.convert_to_numpy(nearest_upsample(small, 2))
        rows["(b) 16x16 samples, bicubic-upsampled"] = bicubic_upsample(small)
        for name, guided in _ug_variants(low, gate).items():
            rows[name], seconds[name] = _timed_samples(guided, low.schedule, big, args)
    if "32" in models:
        high = models["32"]
        rows["(d) native 32x32, cosine schedule"], seconds["(d)"] = _timed_samples(high.eps_fn, high.schedule, big,
                                                                                   args)
    if "32shifted" in models:
        shifted = models["32shifted"]
        rows["(e) native 32x32, schedule shifted s=2"], seconds["(e)"] = _timed_samples(
            shifted.eps_fn, shifted.schedule, big, args)
    if args.time_repeats and "16" in models and "32" in models:
        seconds.update(interleaved_seconds(low, high, gate, args))
    test = patches("test")
    rows["train patches (reference)"] = train[np.random.default_rng(0).permutation(len(train))[: args.n]]
    features = feature_model("patches")
    # FD to the held-out test patches (the metric), and to the training patches: train and test are
    # different regions of each source, so even real training patches are far from the test set in FD.
    reference, train_reference = statistics(features, test), statistics(features, train)
    frequencies, test_power = power_spectrum(test)
    table = {}
    for name, images in rows.items():
        key = name.split(" ")[0] if name.split(" ")[0] in ("(a)", "(b)", "(d)", "(e)") else name
        table[name] = {"fd": round(float(fd_to(reference, images, features)), 3),
                       "fd_train": round(float(fd_to(train_reference, images, features)), 3),
                       "spectrum_distance": round(spectrum_distance(images, test), 5),
                       "seconds_per_sample": round(seconds[key], 5) if key in seconds else None,
                       "log10_power": np.round(np.log10(power_spectrum(images)[1]), 4).tolist()}
        print(f"[{info['backend']}] {name:42s} FD {table[name]['fd']:8.3f} (to train {table[name]['fd_train']:8.3f})"
              f"  spectrum {table[name]['spectrum_distance']:.4f}"
              f"  s/sample {table[name]['seconds_per_sample']}", flush=True)
    native = table.get("(d) native 32x32, cosine schedule")
    baselines = [table[k] for k in table if k.startswith("(b)")]
    goals = {}
    for name, row in table.items():
        if name.startswith("(c)") and native:
            goals[name] = {
                "beats_both_upsampled_fd": all(row["fd"] < b["fd"] for b in baselines),
                "beats_both_upsampled_spectrum": all(row["spectrum_distance"] < b["spectrum_distance"]
                                                     for b in baselines),
                "fd_over_native": round(row["fd"] / native["fd"], 3),
                "cost_over_native": round(row["seconds_per_sample"] / native["seconds_per_sample"], 3)}
            if f"{name} (interleaved)" in seconds:
                goals[name]["cost_over_native_interleaved"] = round(
                    seconds[f"{name} (interleaved)"] / seconds["(d) (interleaved)"], 3)
            print(f"  {name}: FD / (d) = {goals[name]['fd_over_native']:.2f} (goal <= 1.3), cost / (d) = "
                  f"{goals[name]['cost_over_native']:.2f} (goal <= 1.5), beats both (b) in FD "
                  f"{goals[name]['beats_both_upsampled_fd']}, in spectrum "
                  f"{goals[name]['beats_both_upsampled_spectrum']}")
    versions = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    if info["backend"] == "jax":
        import jax

        versions["jax"] = jax.__version__
    info.update({"data": "patches", "command": " ".join(["python"] + sys.argv), "date": str(datetime.date.today()),
                 "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no accelerator",
                 "versions": versions, "ug_gate": gate,
                 "seconds_per_sample_interleaved": {k[: -len(" (interleaved)")]: round(v, 5) for k, v in seconds.items()
                                                    if k.endswith(" (interleaved)")}, "sample_batch": args.sample_batch,
                 "low_data": "the 32x32 patches 2x2 average-pooled", "test_patches": len(test),
                 "fd_features": "kgen.metrics.feature_model('patches'), images mapped to [0, 1]; fd: to the test "
                                "patches; fd_train: to all training patches (the reference row is a subset of them)",
                 "frequencies": np.round(frequencies, 5).tolist(),
                 "test_log10_power": np.round(np.log10(test_power), 4).tolist(), "rows": table, "goals": goals})
    suffix = "" if args.ddim_eta == 0 else f"_eta{args.ddim_eta:g}"
    order = [k for k in rows if not k.startswith("train")]
    grid = np.concatenate([rows[k][:8] for k in order] + [test[:: len(test) // 8][:8]])
    kgen.images.save_grid(os.path.join(args.out, f"patches_grid{suffix}.png"), (grid + 1.0) / 2.0, rows=len(order) + 1,
                          scale=2)
    spectra_plot(os.path.join(args.out, f"patches_spectra{suffix}.png"), frequencies, np.log10(test_power),
                 {k: table[k]["log10_power"] for k in order})
    with open(os.path.join(args.out, f"patches{suffix}.json"), "w") as f:
        json.dump(info, f, indent=2)
    return info


def spectra_plot(path, frequencies, reference, curves, size=(640, 360)):
    """log10 power vs frequency, one coloured polyline per row (black, thick: the test patches), drawn with PIL."""
    from PIL import Image, ImageDraw

    width, height = size
    left, right, top, bottom = 50, width - 290, 15, height - 35
    values = np.concatenate([np.asarray(reference)] + [np.asarray(c) for c in curves.values()])
    low, high = float(values.min()), float(values.max())
    f0, f1 = float(frequencies[0]), float(frequencies[-1])

    def point(f, v):
        return (left + (f - f0) / (f1 - f0) * (right - left), bottom - (v - low) / (high - low) * (bottom - top))

    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    draw.rectangle((left, top, right, bottom), outline="black")
    for tick in np.linspace(low, high, 5):
        draw.text((4, point(f0, tick)[1] - 6), f"{tick:.1f}", fill="black")
    for tick in (f0, 0.25, f1):
        draw.text((point(tick, low)[0] - 12, bottom + 4), f"{tick:.3g}", fill="black")
    draw.text((left, height - 16), "frequency (cycles/pixel)  vs  log10 power", fill="black")
    colours = ["#d62728", "#ff7f0e", "#bcbd22", "#1f77b4", "#17becf", "#9467bd", "#e377c2", "#2ca02c", "#8c564b"]
    entries = list(curves.items()) + [("test patches", reference)]
    for i, (name, curve) in enumerate(entries):
        colour = "black" if name == "test patches" else colours[i % len(colours)]
        draw.line([point(f, v) for f, v in zip(frequencies, curve)], fill=colour, width=3 if colour == "black" else 1)
        draw.line((right + 10, top + 8 + 16 * i, right + 30, top + 8 + 16 * i), fill=colour, width=2)
        draw.text((right + 35, top + 2 + 16 * i), name[:42], fill="black")
    picture.save(path)
    return path


if __name__ == "__main__":
    main()
