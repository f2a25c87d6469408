"""DCGAN → +spectral norm → +self-attention → +SELF-MOD on the 28×28 animals, at the same training budget.

Su, "从DCGAN到SELF-MOD" (kexue.fm/archives/6549). Each variant adds one step of the article's path to the
previous one and trains with the hinge loss (`kgen.gans.GAN`) for the same number of epochs, batch size and
optimizer recipe (`--recipe`, the same for every variant), from the same seed:

    dcgan       DCGAN G (BN, 4×4 deconvolutions) and DCGAN D (BN)
    +sn         D spectral-normalized without BN (SNGAN)
    +attention  spectral norm in G too, self-attention on the 14×14 maps of G and D (SAGAN)
    +selfmod    G's BatchNorms self-modulated by z (SELF-MOD)

and, off that path (`--variants dcgan,dcgan+selfmod`), `dcgan+selfmod`: DCGAN with only its generator's BatchNorms
self-modulated, the discriminator unchanged (Su's survey is about generators; discriminators "have changed little");
`sndcgan` and `sndcgan+selfmod`: the SELF-MOD paper's own pair, DCGAN's generator without and with self-modulated
BatchNorms in front of one spectrally normalised SNDCGAN critic (`networks.discriminator(arch="sndcgan")`, the
SNGAN paper's standard CNN: a 3×3 stride-1 conv around each strided one); `sndcgan+attention` and
`sndcgan+attention+selfmod`: the rest of the article's path in front of that critic (DCGAN → `sndcgan` →
`sndcgan+attention` → `sndcgan+attention+selfmod`, SAGAN's and SELF-MOD's steps as above).
Ablations of the discriminator's BatchNorm: `dcgan-bnd` (DCGAN's D without its BatchNorms), `+sn+bnd`,
`+attention+bnd` and `+selfmod+bnd` (those variants with DCGAN's BatchNorms in their spectrally normalised D), and
`dcgan-joint` (DCGAN with D called once on the real and the fake batch together, so that its BatchNorms normalise
them as one batch).

Recipes (`RECIPES`): "equal", Adam(2e-4, 0.5, 0.999) for both networks (DCGAN's and Su's code; the default);
"ttur", SAGAN's two time-scale rule, Adam(β = (0, 0.9)) at 1e-4 for G and 4e-4 for D. `--lr-g`, `--lr-d` and
`--d-steps` override a recipe's values.

Reported: the Fréchet distance between `--n-eval` generated images and the held-out test images in the
features of kgen's animal classifier (`kgen.metrics.feature_model("animals")`, lower is better; not an
Inception FID), its ratio to DCGAN's (measured in the same run), the train-vs-test FD of real images (the
floor), training seconds and parameter counts. One seed per variant by default: GAN FDs vary by seed, so
read differences below ~20 % as noise unless `--seeds` shows them consistently. The FD of one generator also
varies with the latents it is scored on: "FD" draws them from the model's random stream (different for every run;
one 8000-step DCGAN scored on three such draws: 5.5, 6.6, 5.9), the second line scores the same generator on fixed
latents (those of the curves and of `--load`, the same for every variant and seed: five fixed sets of 2000 gave
that generator 5.8–6.2).

`--save DIR` also writes every seed's final generator as the milestone `DIR/gan_<variant>_<seed>_g<steps>.weights.h5`
(below), which `--load DIR` scores again.

    KERAS_BACKEND=jax python benchmarks/bench_gans_animals.py [--epochs 4] [--width 32] [--seeds 0] [--save DIR]
        [--recipe equal|ttur]

`--save DIR` writes each variant's first-seed GAN as `DIR/<variant>_animals.keras` (`+selfmod` →
`selfmod_animals.keras`, the shipped SELF-MOD model) and the table as `DIR/gans_animals.json`.

`--ema-decay D` (and `--ema-start K`) trains every variant with an average of G's weights (`GAN(ema_decay=D,
ema_start=K)`, standing BatchNorm statistics recomputed at the end of `fit`) and scores both generators: "FD" is
the live one's, as without the option, "FD (EMA)" the average's, and the average's again normalised with the live
generator's BatchNorm statistics (what kgen sampled with before standing statistics).

`--load DIR` trains nothing: it scores the generator weights that `tools/gpu_check.py --train gans` saved at its
step milestones (`DIR/gan_<variant>_<seed>_g<steps>.weights.h5`, variant without its "+" signs; with `--recipe ttur`
the files of `--gan-recipe ttur`, `..._<seed>_ttur_g<steps>...`; with `--ema` the averaged generators saved beside
them, `..._<seed>[_ttur]_ema_g<steps>...`) and prints one table per milestone that every variant reached, and the
learning curve of each (`--json PATH` writes them).

    KERAS_BACKEND=jax python benchmarks/bench_gans_animals.py --load build/gpu1/weights --json gans_gpu.json
"""

import argparse
import json
import os
import time

import keras
import numpy as np
from keras import ops

import kgen
from kgen.datasets import load_animals
from kgen.gans import networks
from kgen.gans import GAN
from kgen.metrics import frechet_distance, gaussian_statistics

BACKENDS = ("jax",)
SHAPE = (28, 28, 1)


def variant_networks(name, latent_dim, width):
    """(generator, discriminator) of one variant (ALL_VARIANTS)."""
    if name not in ALL_VARIANTS:
        raise ValueError(f"variant must be one of {ALL_VARIANTS}, got {name!r}")
    base = name[:-len("+bnd")] if name.endswith("+bnd") else name  # "+bnd": the same with BatchNorm in D
    sn_d = not base.startswith("dcgan")
    sn_g = attention = base in ("+attention", "+selfmod") or base.startswith("sndcgan+attention")
    norm = "selfmod" if base.endswith("selfmod") else "bn"
    d_norm = "none" if name == "dcgan-bnd" else "bn" if base != name else None  # None: the network's default
    d_arch = "sndcgan" if base.startswith("sndcgan") else "dcgan"
    g = networks.generator(SHAPE, latent_dim, norm=norm, spectral_norm=sn_g, attention=attention, width=width)
    d = networks.discriminator(SHAPE, arch=d_arch, spectral_norm=sn_d, attention=attention, width=width,
                               norm=d_norm)
    return g, d


VARIANTS = ("dcgan", "+sn", "+attention", "+selfmod")
# Off the cumulative path: SELF-MOD's generator against DCGAN's discriminator (Su's survey is about the generator's
# architecture: "判别器一直以来的变动都不大", the discriminator has changed little).
# "sndcgan" and "sndcgan+selfmod": the SELF-MOD paper's SNDCGAN pair (Chen et al. 2019), DCGAN's generator with
# and without self-modulation against the SNGAN paper's deeper spectrally normalised critic (arch="sndcgan").
EXTRA_VARIANTS = ("dcgan+selfmod", "sndcgan", "sndcgan+selfmod")
# The article's path again with the SNDCGAN critic in place of the two-convolution one: DCGAN → `sndcgan` (+SN) →
# `sndcgan+attention` (SAGAN's additions: spectral norm in G, self-attention on the 14×14 maps of G and D) →
# `sndcgan+attention+selfmod` (+SELF-MOD). Not among tools/gpu_check.py's default jobs (`--jobs` trains them).
SNDCGAN_PATH = ("sndcgan+attention", "sndcgan+attention+selfmod")
# Ablations of the discriminator's BatchNorm, the one thing DCGAN's critic has and the spectrally normalised ones
# lack: DCGAN without it ("dcgan-bnd"), and a variant of the path with it ("<variant>+bnd"). Not among
# tools/gpu_check.py's default jobs (its `--jobs gan:<name>:<seed>` trains any of them).
# "dcgan-joint": DCGAN whose D sees the real and the fake batch in one call, so its BatchNorms normalise them
# together (DCGAN, Su's code and kgen's GAN call D on each apart).
ABLATIONS = ("dcgan-bnd", "+sn+bnd", "+attention+bnd", "+selfmod+bnd", "dcgan-joint")
ALL_VARIANTS = VARIANTS + EXTRA_VARIANTS + SNDCGAN_PATH + ABLATIONS  # every name variant_networks builds


class JointBatchGAN(GAN):
    """A GAN whose discriminator scores the real and the fake batch in one call, in both players' losses: its
    BatchNorms see one mixed batch instead of two pure ones (the "dcgan-joint" ablation; no R1 penalty)."""

    def _scores(self, x, y, fake):
        n = ops.shape(x)[0]
        labels = None if y is None else ops.concatenate([y, y], axis=0)
        both = self.critic(ops.concatenate([x, fake], axis=0), labels)
        return both[:n], both[n:]

    def discriminator_loss(self, x, y, fake):
        real_scores, fake_scores = self._scores(x, y, fake)
        scores = {id(x): real_scores, id(fake): fake_scores}  # the loss asks for D(x) and D(fake) by tensor
        return self.adversarial_loss.discriminator_loss(lambda t: scores[id(t)], x, fake, self.seed_generator)

    def generator_loss(self, x, y, fake, z=None):
        real_scores, fake_scores = self._scores(x, y, fake)
        return self.adversarial_loss.generator_loss(
            fake_scores, real_scores if self.adversarial_loss.generator_needs_real else None)


# Optimizer recipes: one per run, the same for every variant.
RECIPES = {
    "equal": dict(lr_g=2e-4, lr_d=2e-4, beta_1=0.5, beta_2=0.999, d_steps=1),  # DCGAN paper, Su's code
    "ttur": dict(lr_g=1e-4, lr_d=4e-4, beta_1=0.0, beta_2=0.9, d_steps=1),     # SAGAN / BigGAN (Heusel et al.)
}


def recipe_of(name, lr_g=None, lr_d=None, d_steps=None):
    """The recipe `name` (a key of RECIPES) with any of its learning rates or d_steps overridden."""
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {name!r}")
    recipe = dict(RECIPES[name], name=name)
    for key, value in (("lr_g", lr_g), ("lr_d", lr_d), ("d_steps", d_steps)):
        if value is not None:
            recipe[key] = value
    return recipe


def file_stem(name):
    """A variant's name in file names (tools/gpu_check.py's too): without "+" ("+sn" → "sn")."""
    return name.replace("+", "")


def recipe_tail(args):
    """The recipe's part of a milestone file name: "" for "equal", "_ttur" for "ttur" (tools/gpu_check.py's)."""
    return "" if args.recipe["name"] == "equal" else "_" + args.recipe["name"]


def build_gan(name, seed, recipe, latent_dim, width, ema_decay=None, ema_start=0):
    """The compiled hinge GAN of variant `name` under `recipe` (a dict of recipe_of), with an average of G's
    weights when `ema_decay` is given."""
    kgen.set_seed(seed)
    g, d = variant_networks(name, latent_dim, width)
    model = JointBatchGAN if name == "dcgan-joint" else GAN
    gan = model(g, d, loss="hinge", d_steps=recipe["d_steps"], seed=seed, ema_decay=ema_decay, ema_start=ema_start)
    betas = dict(beta_1=recipe["beta_1"], beta_2=recipe["beta_2"])
    gan.compile(optimizers={"generator": keras.optimizers.Adam(recipe["lr_g"], **betas),
                            "discriminator": keras.optimizers.Adam(recipe["lr_d"], **betas)})
    return gan


def describe(recipe):
    """One line: 'ttur: G Adam(1e-04, 0.0, 0.9), D Adam(4e-04, 0.0, 0.9), 1 D step per G step'."""
    betas = f"{recipe['beta_1']}, {recipe['beta_2']}"
    return (f"{recipe['name']}: G Adam({recipe['lr_g']:.0e}, {betas}), D Adam({recipe['lr_d']:.0e}, {betas}), "
            f"{recipe['d_steps']} D step{'s' if recipe['d_steps'] > 1 else ''} per G step")


def features_of(features, images01):
    return features.predict(images01, batch_size=500, verbose=0)


def fd_to(test_stats, features, images):
    """Classifier-feature FD of images in [-1, 1] to the test split's statistics."""
    return float(frechet_distance(*test_stats, *gaussian_statistics(features_of(features, images * 0.5 + 0.5))))


def test_statistics(features):
    """Gaussian statistics of the test split's features, what every FD here is measured against."""
    test, _ = load_animals("test")
    return gaussian_statistics(features_of(features, test.astype("float32") / 255.0))


def fixed_latents(args):
    """The same `n_eval` latents for every checkpoint scored (curves, final generators and `--load`)."""
    return np.random.default_rng(12345).normal(size=(args.n_eval, args.latent_dim)).astype("float32")


def fd_on(test_stats, features, generator, z):
    """FD of `generator`'s images of the latents `z` (inference mode)."""
    return fd_to(test_stats, features, generator.predict(z, batch_size=500, verbose=0))


def generated(gan, n, use_ema):
    return np.concatenate([keras.ops.convert_to_numpy(gan.generate(500, use_ema=use_ema)) for _ in range(n // 500)])


def train_and_score(name, seed, x, test_stats, features, args):
    gan = build_gan(name, seed, args.recipe, args.latent_dim, args.width, args.ema_decay, args.ema_start)
    g = gan.generator
    d = gan.discriminator
    curve, callbacks = {}, []
    z = fixed_latents(args)
    if args.eval_every:
        steps_per_epoch = -(-len(x) // args.batch_size)  # fit runs the partial last batch

        def score(epoch, logs=None):
            if (epoch + 1) % args.eval_every == 0 and epoch + 1 < args.epochs:
                curve[(epoch + 1) * steps_per_epoch] = fd_on(test_stats, features, g, z)

        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=score))
    start = time.time()
    history = gan.fit(x, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=callbacks)
    seconds = time.time() - start
    fd = fd_to(test_stats, features, generated(gan, args.n_eval, use_ema=False))
    # The same generator on the fixed latents of the curves and of `--load` (every variant and seed scored on one
    # z): paired comparisons, without the spread between latent draws that `fd` carries.
    fd_fixed = fd_on(test_stats, features, g, z)
    fd_ema = fd_ema_live = None
    if gan.ema is not None:
        fd_ema = fd_to(test_stats, features, generated(gan, args.n_eval, use_ema=True))
        if gan.ema.standing:  # the same average normalised with the live generator's BatchNorm statistics
            gan.ema.reset_statistics()
            fd_ema_live = fd_to(test_stats, features, generated(gan, args.n_eval, use_ema=True))
            gan.update_ema_statistics()
    return dict(fd=fd, fd_fixed=fd_fixed, fd_ema=fd_ema, fd_ema_live=fd_ema_live, seconds=seconds,
                params=g.count_params() + d.count_params(),
                d_loss=history.history["d_loss"][-1], g_loss=history.history["g_loss"][-1], model=gan,
                d_loss_curve=[float(v) for v in history.history["d_loss"]], fd_curve=curve)


def score_milestones(args):
    """FD of every `gan_<variant>_<seed>_g<steps>.weights.h5` in `args.load` (same latents for every file)."""
    import glob
    import re

    backend = keras.backend.backend()
    features = kgen.metrics.feature_model("animals")
    test_stats = test_statistics(features)
    z = fixed_latents(args)
    curves = {}
    for name in args.variants.split(","):
        generator = variant_networks(name, args.latent_dim, args.width)[0]
        tail = recipe_tail(args) + ("_ema" if args.ema else "")
        pattern = re.compile(rf"gan_{re.escape(file_stem(name))}_(\d+){tail}_g(\d+)\.weights\.h5$")
        for path in sorted(glob.glob(os.path.join(args.load, f"gan_{file_stem(name)}_*_g*.weights.h5"))):
            match = pattern.search(os.path.basename(path))
            if match is None:  # another recipe's run
                continue
            seed, steps = match.groups()
            generator.load_weights(path)
            fd = fd_on(test_stats, features, generator, z)
            curves.setdefault(name, {}).setdefault(int(steps), {})[int(seed)] = float(fd)
            print(f"[{backend}] {name:<11} seed {seed} step {int(steps):>6}: FD {fd:7.2f}", flush=True)
    common = sorted(set.intersection(*(set(c) for c in curves.values()))) if curves else []
    tables = {}
    for steps in common:
        rows = {name: {"fd_median": float(np.median(list(c[steps].values()))), "fd_per_seed": c[steps]}
                for name, c in curves.items()}
        reference = rows[next(iter(rows))]["fd_median"]
        print(f"[{backend}] at {steps} steps: " + ", ".join(
            f"{name} {row['fd_median']:.2f} (×{row['fd_median'] / reference:.2f})" for name, row in rows.items()))
        tables[steps] = rows
    result = {"backend": backend, "n_eval": args.n_eval, "width": args.width, "recipe": args.recipe,
              "generator": "averaged (EMA, standing statistics)" if args.ema else "live", "curves": curves,
              "tables": tables}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--n-eval", type=int, default=2000, help="generated images for the FD (multiple of 500)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; the median FD is reported")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--recipe", default="equal", choices=sorted(RECIPES), help="optimizer recipe (all variants)")
    parser.add_argument("--lr-g", type=float, default=None, help="override the recipe's generator learning rate")
    parser.add_argument("--lr-d", type=float, default=None, help="override the recipe's discriminator learning rate")
    parser.add_argument("--d-steps", type=int, default=None, help="override the recipe's D steps per G step")
    parser.add_argument("--eval-every", type=int, default=0, help="also score the FD every N epochs (curve)")
    parser.add_argument("--ema-decay", type=float, default=None, help="also train an average of G's weights and "
                        "score it (GAN(ema_decay=...), standing BatchNorm statistics)")
    parser.add_argument("--ema-start", type=int, default=0, help="G updates before the average starts moving")
    parser.add_argument("--ema", action="store_true", help="with --load: score the averaged generators' files")
    parser.add_argument("--save", default=None, help="folder for <variant>_animals.keras and gans_animals.json")
    parser.add_argument("--load", default=None, help="score the milestone generator weights in this folder")
    parser.add_argument("--json", default=None, help="write the table(s) here")
    args = parser.parse_args(argv)
    args.recipe = recipe_of(args.recipe, args.lr_g, args.lr_d, args.d_steps)
    if args.ema and not args.load:
        parser.error("--ema scores saved averaged generators: it needs --load (to train one, --ema-decay)")
    if args.load:
        return score_milestones(args)
    backend = keras.backend.backend()
    train, _ = load_animals("train")
    x = kgen.datasets.to_signed(train, 256)
    features = kgen.metrics.feature_model("animals")
    test_stats = test_statistics(features)
    floor = fd_to(test_stats, features, x[:2000])
    steps = args.epochs * -(-len(x) // args.batch_size)
    print(f"[{backend}] real train vs test: FD {floor:.2f} (floor); budget {args.epochs} epochs = {steps} steps "
          f"of batch {args.batch_size}, width {args.width}; {describe(args.recipe)}", flush=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    reference, table = None, {"backend": backend, "epochs": args.epochs, "steps": steps, "batch_size": args.batch_size,
                              "width": args.width, "n_eval": args.n_eval, "floor": floor,
                              "recipe": args.recipe, "ema_decay": args.ema_decay, "ema_start": args.ema_start,
                              "variants": {}}
    for name in args.variants.split(","):
        runs = [train_and_score(name, seed, x, test_stats, features, args) for seed in seeds]
        fd = float(np.median([r["fd"] for r in runs]))
        reference = fd if reference is None else reference
        per_seed = ", ".join(f"{r['fd']:.1f}" for r in runs)
        print(f"[{backend}] {name:<11} FD {fd:7.2f} (×{fd / reference:.2f} of {args.variants.split(',')[0]}; "
              f"seeds: {per_seed}), {np.mean([r['seconds'] for r in runs]):.0f} s, {runs[0]['params']} params, "
              f"last d_loss {runs[0]['d_loss']:.3f} g_loss {runs[0]['g_loss']:.3f}", flush=True)
        fd_fixed = float(np.median([r["fd_fixed"] for r in runs]))
        print(f"[{backend}] {name:<11} FD {fd_fixed:7.2f} on the fixed latents (seeds: "
              + ", ".join(f"{r['fd_fixed']:.1f}" for r in runs) + ")", flush=True)
        if args.ema_decay is not None:
            fd_ema = float(np.median([r["fd_ema"] for r in runs]))
            row = {"fd_median": fd_ema, "fd_per_seed": [r["fd_ema"] for r in runs]}
            per_seed = ", ".join(f"{v:.1f}" for v in row["fd_per_seed"])
            line = f"[{backend}] {name:<11} FD (EMA) {fd_ema:7.2f} (seeds: {per_seed})"
            if runs[0]["fd_ema_live"] is not None:
                row["live_statistics_fd_per_seed"] = [r["fd_ema_live"] for r in runs]
                row["live_statistics_fd_median"] = float(np.median(row["live_statistics_fd_per_seed"]))
                line += (f"; with the live BatchNorm statistics instead of standing ones "
                         f"{row['live_statistics_fd_median']:.2f}")
            print(line, flush=True)
            table.setdefault("variants_ema", {})[name] = row
        table["variants"][name] = {"fd_median": fd, "fd_per_seed": [r["fd"] for r in runs], "seeds": seeds,
                                   "seconds": float(np.mean([r["seconds"] for r in runs])), "params": runs[0]["params"],
                                   "d_loss_per_epoch": [r["d_loss_curve"] for r in runs],
                                   "fd_curve_per_seed": [r["fd_curve"] for r in runs],
                                   "fd_fixed_latents_median": fd_fixed,
                                   "fd_fixed_latents_per_seed": [r["fd_fixed"] for r in runs]}
        for steps_done in sorted(runs[0]["fd_curve"]):
            print(f"[{backend}]   at {steps_done} steps: FD " + ", ".join(
                f"{r['fd_curve'][steps_done]:.1f}" for r in runs), flush=True)
        if args.save:
            os.makedirs(args.save, exist_ok=True)
            runs[0]["model"].save(os.path.join(args.save, f"{file_stem(name)}_animals.keras"))
            for seed, run in zip(seeds, runs):  # every seed's final G, as a milestone that `--load` scores
                run["model"].generator.save_weights(os.path.join(
                    args.save, f"gan_{file_stem(name)}_{seed}{recipe_tail(args)}_g{steps}.weights.h5"))
            with open(os.path.join(args.save, "gans_animals.json"), "w") as f:
                json.dump(table, f, indent=1)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(table, f, indent=1)
    return table


if __name__ == "__main__":
    main()
