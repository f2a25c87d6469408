"""Su Jianlin's NICE (kexue.fm 5776, bojone/flow/nice.py) on the 28×28 animal silhouettes.

    python examples/nice_su.py --backend jax --epochs 5 --out runs/nice_su            # his 4 × (5 × 1000) couplings
    python examples/nice_su.py --epochs 20 --hidden 256 --depth 2 --noise dequantize  # small, with bits/dim

`--noise su` trains on x/255 + U[−0.01, 0] as he did (the density is then not a bound on the discrete
likelihood, so no bits/dim are printed); `--noise dequantize` uses kgen's (x + U[0, 1))/256 and reports test
bits/dim. Samples are drawn at his temperature 0.75, clipped to [0, 1].
"""

import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), choices=["jax", "tensorflow", "torch"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=5, help="hidden layers per coupling MLP")
    parser.add_argument("--noise", choices=["su", "dequantize"], default="su")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N train/test images (smoke runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/nice_su")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend

    import keras
    import numpy as np

    import kgen
    from kgen.datasets import ANIMAL_LEVELS, dequantize, load_animals
    from kgen.flows import NICE
    from kgen.images import save_grid

    kgen.set_seed(args.seed)
    train, _ = load_animals("train")
    test, _ = load_animals("test")
    train, test = train[: args.limit], test[: args.limit]
    rng = np.random.default_rng(args.seed)

    def prepare(images, seed):
        if args.noise == "su":
            return (images / 255.0 - 0.01 * rng.uniform(size=images.shape)).astype("float32").reshape(-1, 784)
        return dequantize(images, ANIMAL_LEVELS, seed=seed).reshape(-1, 784)

    model = NICE((784,), preset="su", hidden=(args.hidden,) * args.depth, seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam())  # his optimiser: Adam with defaults
    x_test = prepare(test, 10_000)
    for epoch in range(args.epochs):
        model.fit(prepare(train, epoch), batch_size=args.batch_size, epochs=1, verbose=0)
        nll = -float(np.mean(keras.ops.convert_to_numpy(model.log_prob(x_test))))
        line = f"epoch {epoch + 1}: test NLL {nll:.1f} nats"
        if args.noise == "dequantize":
            line += f", {model.bits_per_dim(x_test, ANIMAL_LEVELS):.3f} bits/dim"
        print(line, flush=True)
    os.makedirs(args.out, exist_ok=True)
    samples = keras.ops.convert_to_numpy(model.sample(64)).reshape(-1, 28, 28, 1)  # T = 0.75, his choice
    save_grid(os.path.join(args.out, "samples_T0.75.png"), np.clip(samples, 0, 1), scale=2)
    model.save(os.path.join(args.out, "nice_animals.keras"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
