"""StackedMNIST on the 8×8 digits: how many of the 1000 modes a GAN covers, counted with the digits classifier.

The protocol of Metz et al. 2017 (Unrolled GANs) / VEEGAN / PacGAN, on `kgen.datasets.stacked_digits`: three
training digits stacked as channels, 1000 modes. Each of 26 000 generated samples is cut into its three
channels, each channel classified by kgen's shipped digits classifier (`kgen.metrics.classifier("digits")`),
and the sample's mode is 100·d0 + 10·d1 + d2. Reported: modes covered (goal ≥ 990) and KL(generated mode
histogram ‖ uniform). The peer row is the same count on 26 000 real stacked digits.

Model: `kgen.gans.GAN` on flattened images (192 values in [−1, 1]), z of size 64, 3×512 MLPs (ReLU G,
leaky-ReLU D), hinge loss with a zero-centred R1 penalty (weight 1) on real samples, Adam(β = (0.5, 0.9))
with cosine decay, `--steps` × 256, JAX, seeds `--seeds`.

    KERAS_BACKEND=jax python benchmarks/bench_gans_stacked.py [--steps 5000] [--seeds 0,1,2] [--loss gan --r1 0.1]
"""

import argparse
import time

import keras
import numpy as np

BACKENDS = ("jax",)
N_EVAL, BATCH = 26000, 256


def signed(images):
    """Stacked digits (values 0..16) as float32 in [−1, 1], the GAN's data range."""
    return images.astype("float32") / 8.0 - 1.0


def mode_counts(images):
    """(modes covered, KL to uniform) of images (n, 8, 8, 3) in [−1, 1], classified channel by channel."""
    from kgen.metrics import classifier

    x = np.clip((np.asarray(images, "float32") + 1.0) / 2.0, 0.0, 1.0)
    channels = np.transpose(x, (0, 3, 1, 2)).reshape(-1, 8, 8, 1)
    digits = np.argmax(classifier("digits").predict(channels, batch_size=4096, verbose=0), axis=-1).reshape(-1, 3)
    modes = 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]
    p = np.bincount(modes, minlength=1000) / len(modes)
    kl = float(np.sum(p[p > 0] * np.log(p[p > 0] * 1000)))
    return int(np.count_nonzero(p)), kl


def train(seed, steps, lr, loss, r1):
    import kgen
    from kgen.datasets import stacked_digits
    from kgen.gans import GAN
    from kgen.gans.networks import mlp

    kgen.set_seed(seed)
    x, _ = stacked_digits(steps * BATCH, seed=seed)
    x = signed(x).reshape(len(x), -1)
    model = GAN(mlp(64, 192, hidden=(512,) * 3, name="generator", seed=10 * seed),
                mlp(192, 1, hidden=(512,) * 3, activation="leaky_relu", name="discriminator", seed=10 * seed + 5),
                loss=loss, r1_weight=r1, seed=seed)
    schedule = lambda: keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.1)  # noqa: E731
    model.compile(optimizers={name: keras.optimizers.Adam(schedule(), 0.5, 0.9)
                              for name in ("generator", "discriminator")})
    start = time.perf_counter()
    model.fit(x, batch_size=BATCH, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    samples = keras.ops.convert_to_numpy(model.generate(N_EVAL)).reshape(-1, 8, 8, 3)
    return mode_counts(samples), seconds


def main():
    from kgen.datasets import stacked_digits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--loss", default="hinge", help="a kgen.gans loss name")
    parser.add_argument("--r1", type=float, default=1.0, help="weight of the zero-centred R1 penalty on real samples")
    args = parser.parse_args()
    real, _ = stacked_digits(N_EVAL, seed=123)
    modes, kl = mode_counts(signed(real))
    print(f"[jax] stacked digits, {N_EVAL} real samples (peer): {modes}/1000 modes, KL to uniform {kl:.3f}")
    for seed in (int(s) for s in args.seeds.split(",")):
        (modes, kl), seconds = train(seed, args.steps, args.lr, args.loss, args.r1)
        print(f"[jax] stacked digits, {args.loss} GAN + R1 {args.r1:g}, 3×512 MLPs, {args.steps} steps × {BATCH}, "
              f"seed {seed}: {modes}/1000 modes (goal ≥ 990), KL to uniform {kl:.3f}; "
              f"{seconds / args.steps * 1e3:.1f} ms/step", flush=True)


if __name__ == "__main__":
    main()
