"""A GAN with any kgen loss (f-GAN rows, hinge, WGAN-GP, WGAN-div, GAN-QP) on a 2-D toy mixture.

    python examples/fgan_toy.py --backend jax --loss hinge --steps 3000 --out runs/fgan_toy
    python examples/fgan_toy.py --loss hellinger --generator-form saturating
    python examples/fgan_toy.py --loss gan --single-loss          # Su's one-backward-pass form (6387)

Networks are 2×128 ReLU MLPs (z of size 2), Adam(1e-3, β=(0.5, 0.9)) for each; the VEEGAN mode count and the
high-quality fraction (samples within 3σ of a centre) of 2500 samples are printed, and a scatter plot of the
samples over the mixture's centres is written to <out>/samples.png, the model to <out>/gan.keras.
"""

import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), choices=["jax", "tensorflow", "torch"])
    parser.add_argument("--loss", default="hinge", help="hinge, wgan_gp, wgan_div, gan_qp or an f-divergence name")
    parser.add_argument("--generator-form", default="non_saturating", choices=["non_saturating", "saturating"])
    parser.add_argument("--single-loss", action="store_true")
    parser.add_argument("--d-steps", type=int, default=1)
    parser.add_argument("--r1", type=float, default=0.0, help="zero-centred gradient penalty on real samples")
    parser.add_argument("--data", default="ring8", choices=["ring8", "grid25"])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/fgan_toy")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend

    import keras

    import kgen
    from kgen.datasets import toy2d, toy2d_modes
    from kgen.gans import GAN
    from kgen.gans.networks import mlp
    from kgen.images import save_png, scatter_image
    from kgen.metrics import mode_coverage

    kgen.set_seed(args.seed)
    model = GAN(mlp(2, 2, name="generator"), mlp(2, 1, name="discriminator"), loss=args.loss,
                generator_form=args.generator_form, single_loss=args.single_loss, d_steps=args.d_steps,
                r1_weight=args.r1, seed=args.seed, value_range=None)  # linear G: unbounded
    model.compile(optimizers={name: keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9)
                              for name in ("generator", "discriminator")})
    x = toy2d(args.data, args.steps * args.batch_size, seed=args.seed)
    history = model.fit(x, batch_size=args.batch_size, epochs=1, verbose=0,
                        callbacks=[keras.callbacks.TerminateOnNaN()])
    samples = keras.ops.convert_to_numpy(model.generate(2500))
    centres, std = toy2d_modes(args.data)
    modes, quality = mode_coverage(samples, centres, std)
    logs = ", ".join(f"{k} {v[-1]:.3f}" for k, v in history.history.items())
    print(f"{args.loss} ({args.backend}, seed {args.seed}): {modes}/{len(centres)} modes, "
          f"high-quality fraction {quality:.2f}; final {logs}")
    os.makedirs(args.out, exist_ok=True)
    extent = (-3.0, 3.0) if args.data == "ring8" else (-6.0, 6.0)
    save_png(os.path.join(args.out, "samples.png"), scatter_image(samples, extent=extent, centres=centres))
    model.save(os.path.join(args.out, "gan.keras"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
