"""Several saved generators scored on the same sets of latents: a comparison that the latent draw does not move.

The FD of 2000 images moves with the latents they come from (one 8000-step DCGAN: 5.5–6.6 over draws), so two
generators each scored once differ by that much before they differ at all. This scores every generator given on
the same `--sets` sets of `--n` latents (the bench's fixed latents and `default_rng(100 + k)`, k = 0, 1, ...: the
sets of `gan_ema_latent_sets.py`) and prints, per generator, the per-set FDs and their median, and, for each
generator after the first, on how many sets it is lower than the one before it (the order given, e.g. the steps
of the article's path). Classifier-feature FD to the animals' test split, as `bench_gans_animals.py` computes it.

    KERAS_BACKEND=jax python benchmarks/probes/gan_latent_sets.py FILE.weights.h5 [FILE ...] [--sets 5] [--json PATH]

FILE: a generator milestone of `bench_gans_animals.py --save DIR` or `tools/gpu_check.py --train gans`,
`gan_<variant>_<seed>[_<recipe>]_g<steps>.weights.h5` (the variant without its "+" signs); the generator is
rebuilt with `--latent-dim` and `--width` (the bench's defaults). Measured: README "The article's whole path in
front of the SNDCGAN critic", `saved_models/gans_animals.json` → `cpu_sndcgan_study`.
"""

import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kgen  # noqa: E402
import bench_gans_animals as bench  # noqa: E402
from gan_ema_latent_sets import latent_sets  # noqa: E402

NAME = re.compile(r"gan_(?P<stem>[a-z-]+)_(?P<seed>\d+)(?:_[a-z]+)*_g(?P<steps>\d+)\.weights\.h5$")


def variant_of(path):
    """The bench variant of a milestone file's name (its stem is the variant without "+" signs)."""
    match = NAME.search(os.path.basename(path))
    known = {bench.file_stem(v): v for v in bench.ALL_VARIANTS}
    if match is None or match["stem"] not in known:
        raise SystemExit(f"{path}: not a generator milestone gan_<variant>_<seed>_g<steps>.weights.h5 of the "
                         f"variants {sorted(known.values())}")
    return known[match["stem"]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--sets", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    variants = [variant_of(path) for path in args.paths]  # every name checked before any work
    features = kgen.metrics.feature_model("animals")
    stats = bench.test_statistics(features)
    sets = latent_sets(args.n, args.latent_dim, args.sets)
    out = {}
    for path, name in zip(args.paths, variants):
        generator = bench.variant_networks(name, args.latent_dim, args.width)[0]
        generator.load_weights(path)
        fds = [round(bench.fd_on(stats, features, generator, z), 3) for z in sets]
        out[os.path.basename(path)] = {"variant": name, "fd_per_set": fds, "fd_median": round(float(np.median(fds)), 3)}
        line = f"{os.path.basename(path):<50} median {np.median(fds):6.3f}  per set {fds}"
        if len(out) > 1:
            before = list(out.values())[-2]["fd_per_set"]
            line += f"  lower than the previous on {sum(a < b for a, b in zip(fds, before))} of {len(sets)}"
        print(line, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
