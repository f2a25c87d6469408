"""Upsample Guidance: 28×28 animals from a diffusion model trained only at 14×14, without training.

Su, "生成扩散模型漫谈(二十三)" (https://kexue.fm/archives/10055); Hwang et al. (arXiv:2404.01709).

    python examples/upsample_guidance.py --backend jax --out runs/upsample_guidance
    python examples/upsample_guidance.py --w 1.2 --gate 0.6 --steps 100 --n 64

Loads `saved_models/diffusion14_animals.keras` (and `diffusion28_animals.keras`, the same U-Net trained on the
28×28 originals for the same number of steps, as the reference), draws the four variants of
`kgen.diffusion.compare.upsample_variants` from the same starting noise — (a) the 14×14 net run naively at 28×28,
(b) 14×14 samples upsampled, (c) Upsample Guidance, (d) the native 28×28 model — and writes one grid with a row
per variant to <out>/upsample_guidance.png (top to bottom a, b, c, d). With `--fd`, also the Fréchet distance
in kgen's animal-classifier features to the test split for each variant (use --n 500 or more for that).
"""

import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), choices=["jax", "tensorflow", "torch"])
    parser.add_argument("--low", default=None, help="14×14 model (default saved_models/diffusion14_animals.keras)")
    parser.add_argument("--native", default=None, help="28×28 model (default saved_models/diffusion28_animals.keras)")
    parser.add_argument("--n", type=int, default=8, help="samples per variant")
    parser.add_argument("--steps", type=int, default=50, help="sampling steps")
    parser.add_argument("--ddim-eta", type=float, default=1.0, help="sampler η: 1 = DDPM ancestral (variance β̃, "
                        "the default: better FD for every variant with the shipped models), 0 = deterministic DDIM")
    parser.add_argument("--w", type=float, default=1.0, help="UG weight w_t (paper); Su's w = w_t - 1")
    parser.add_argument("--gate", type=float, default=None, help="UG time gate η: guidance only for t ≥ 1 − η")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fd", action="store_true", help="also print the FD of each variant to the test split")
    parser.add_argument("--out", default="runs/upsample_guidance")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # before Keras is imported

    import keras
    import numpy as np

    import kgen  # noqa: F401  (registers kgen's layers for load_model)
    from kgen.diffusion.compare import LABELS, upsample_variants
    from kgen.images import save_grid
    from kgen.metrics.classifiers import saved_models_dir

    low_path = args.low or os.path.join(saved_models_dir(), "diffusion14_animals.keras")
    native_path = args.native or os.path.join(saved_models_dir(), "diffusion28_animals.keras")
    low = keras.saving.load_model(low_path, safe_mode=True)
    native = keras.saving.load_model(native_path, safe_mode=True) if os.path.exists(native_path) else None
    images = upsample_variants(low, native, n=args.n, steps=args.steps, w=args.w, seed=args.seed,
                               ddim_eta=args.ddim_eta, gate=args.gate)
    os.makedirs(args.out, exist_ok=True)
    rows = np.concatenate(list(images.values()))
    path = save_grid(os.path.join(args.out, "upsample_guidance.png"), (rows + 1.0) / 2.0, rows=len(images), scale=3)
    for name in images:
        print(f"row: {LABELS[name]}")
    if args.fd:
        from kgen.datasets import load_animals
        from kgen.metrics import FrechetDistance, feature_model

        test = load_animals("test")[0].astype("float32") / 255.0
        for name, x in images.items():
            fd = FrechetDistance(feature_model=feature_model("animals"))
            fd.update_state(test, (x + 1.0) / 2.0)
            print(f"FD {LABELS[name]}: {float(fd.result()):.2f}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
