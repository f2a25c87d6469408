"""Upsample Guidance on animals: generate 28×28 from a model trained at 14×14, against three baselines.

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
from kgen.datasets import load_animals
from kgen.diffusion.compare import LABELS, ddim_samples, upsample_variants
from kgen.diffusion.guidance import average_pool
from kgen.metrics import feature_model, frechet_distance
from kgen.metrics.frechet import gaussian_statistics

BACKENDS = ("jax",)


def animals(split, limit=None):
    x = load_animals(split)[0][:limit].astype("float32")
    return x / 127.5 - 1.0 if x.max() > 1.0 else x * 2.0 - 1.0


def reference_statistics():
    """The animal classifier's feature model and the Gaussian statistics of the test split in its features."""
    features = feature_model("animals")
    test = animals("test")
    return features, gaussian_statistics(keras.ops.convert_to_numpy(features.predict((test + 1.0) / 2.0, verbose=0)))


def fd_to(reference_stats, images, features):
    mu, cov = gaussian_statistics(keras.ops.convert_to_numpy(features.predict((images + 1.0) / 2.0, verbose=0)))
    return frechet_distance(mu, cov, *reference_stats)


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
    parser.add_argument("--models", default="14,28,28shifted", help="which models to build or load")
    parser.add_argument("--train-only", action="store_true", help="stop after training (and --save)")
    parser.add_argument("--data", choices=("animals", "field"), default="animals",
                        help="animals (trained U-Nets) or field (exact oracles, exact W2; no training)")
    parser.add_argument("--slope", type=float, default=2.0, help="--data field: the spectrum's power-law exponent")
    parser.add_argument("--check", type=int, default=0, help="--data field: samples drawn to check the UG row")
    args = parser.parse_args(argv)
    kgen.set_seed(0)
    os.makedirs(args.out, exist_ok=True)
    if args.data == "field":
        return field_table(args)
    x28 = animals("train", args.limit)
    x14 = keras.ops.convert_to_numpy(average_pool(x28, 2))
    specs = {"14": (x14, None), "28": (x28, None), "28shifted": (x28, 2)}  # data, schedule shift
    if args.resume and not args.load:
        parser.error("--resume needs --load")
    trains = args.resume or not args.load
    models, info = {}, {"backend": keras.backend.backend(), "train_steps": args.train_steps if trains else None,
                        "batch_size": args.batch_size, "steps": args.steps, "ddim_eta": args.ddim_eta,
                        "ug_w": args.w, "ug_gate": args.gate, "n": args.n,
                        "clip_denoised": 1.0}
    mults = tuple(int(m) for m in args.mults.split(","))
    for name, (data, shift) in specs.items():
        if (args.sweep and name != "14") or name not in args.models.split(","):
            continue  # the sweep samples only the low-resolution model
        if args.load:
            path = os.path.join(args.load, f"diffusion{name}_animals.keras")
            if name == "28shifted" and not os.path.exists(path):
                print(f"{path} not found: row (e) skipped")  # saved_models/ ships only the UG pair
                continue
            models[name] = keras.saving.load_model(path)
            if not args.resume:
                continue
        else:  # the recipe of `kgen train diffusion`; the same step budget for every model
            models[name] = presets.diffusion_model(data, seed=0, schedule_shift=shift, channels=args.channels,
                                                channel_mults=mults)
        start = time.time()
        steps, _ = presets.fit_steps(models[name], data, args.train_steps, args.batch_size, verbose=0, shuffle=True)
        seconds = time.time() - start
        info[f"steps_{name}"], info[f"train_s_{name}"] = steps, round(seconds, 1)
        print(f"trained {name}: {steps} steps in {seconds:.0f} s", flush=True)
        if args.save:
            models[name].save(os.path.join(args.save, f"diffusion{name}_animals.keras"))
    if args.train_only:
        return info
    if args.sweep:
        return sweep(models["14"], args)
    start = time.time()
    images = upsample_variants(models["14"], models["28"], n=args.n, steps=args.steps, seed=1, ddim_eta=args.ddim_eta,
                               w=args.w, gate=args.gate)
    variants = {LABELS[name]: x for name, x in images.items()}
    if "28shifted" in models:
        shifted = models["28shifted"]
        variants["(e) native 28, shifted schedule"] = ddim_samples(shifted.eps_fn, shifted.schedule, (28, 28, 1),
                                                                 args.n, args.steps, seed=1, eta=args.ddim_eta)
    info["sampling_s"] = round(time.time() - start, 1)
    features, reference = reference_statistics()
    info["fd"] = {name: round(float(fd_to(reference, images, features)), 2) for name, images in variants.items()}
    info["fd"]["train images (reference)"] = round(float(fd_to(reference, x28[: args.n], features)), 2)
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


if __name__ == "__main__":
    main()
