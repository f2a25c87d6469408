"""A saved GAN's live and averaged generators scored on the same latents, several sets of them.

The FD of 2000 images moves with the latents they come from (one generator: ±0.4 between draws), which hides
differences of that size between two generators each scored on its own draw, as `bench_gans_animals.py` does for
the average ("FD (EMA)" draws from the model's stream after the live generator's draw). This scores the live
generator, the average (`GAN.averaged_generator()`, standing BatchNorm statistics and spectral-norm vectors) and
the average with the live generator's statistics (after `ema.reset_statistics()`) on the same `--sets` sets of
`--n` latents: the bench's fixed latents (NumPy `default_rng(12345)`) and `default_rng(100 + k)`, k = 0, 1, ...
Classifier-feature FD to the animals' test split, as the bench computes it.

    KERAS_BACKEND=jax python benchmarks/probes/gan_ema_latent_sets.py FILE.keras [--sets 5] [--json PATH]

FILE: a GAN saved with `ema_decay` (e.g. `bench_gans_animals.py --ema-decay 0.999 --save DIR` writes
`DIR/<variant>_animals.keras`). Measured: README "Averaging G's weights", `saved_models/gans_animals.json` →
`cpu_ema_study` (the 12 000-step runs).
"""

import argparse
import json
import os
import sys
import types

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kgen  # noqa: E402
from bench_gans_animals import fd_on, fixed_latents, test_statistics  # noqa: E402


def latent_sets(n, dim, sets):
    first = fixed_latents(types.SimpleNamespace(n_eval=n, latent_dim=dim))
    return [first] + [np.random.default_rng(100 + k).normal(size=(n, dim)).astype("float32") for k in range(sets - 1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--sets", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    gan = keras.saving.load_model(args.path, safe_mode=True)
    if getattr(gan, "ema", None) is None:
        raise SystemExit(f"{args.path}: the GAN keeps no average (build it with ema_decay=...)")
    features = kgen.metrics.feature_model("animals")
    stats = test_statistics(features)
    sets = latent_sets(args.n, gan.latent_shape[0], args.sets)
    generators = {"live": gan.generator, "ema_standing": gan.averaged_generator()}
    gan.ema.reset_statistics()
    generators["ema_live_statistics"] = gan.averaged_generator()
    out = {name: [round(fd_on(stats, features, g, z), 3) for z in sets] for name, g in generators.items()}
    for name, fds in out.items():
        print(f"{name:<20} median {np.median(fds):6.3f}  per set {fds}")
    lower = sum(e < v for e, v in zip(out["ema_standing"], out["live"]))
    print(f"the average (standing statistics) lower than the live generator on {lower} of {len(sets)} sets")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()
