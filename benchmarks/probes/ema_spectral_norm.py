"""How far the averaged generator's spectral norms are from σ_max when they use the live generator's vectors u.

A +SELF-MOD generator of benchmarks/bench_gans_animals.py (spectral norm, self-attention, self-modulated
BatchNorm; width 16) trains on the animals with an EMA of its weights; then, for each spectrally normalised
layer, σ̂ = ‖M û‖ of the averaged kernel M is compared with σ_max(M) (SVD) for two unit vectors û: the live
layer's u (what kgen used before the EMA kept standing vectors) and the EMA's standing vector (what kgen uses
now, `ExponentialMovingAverage.standing_vectors`). A layer whose σ̂ falls short by x runs 1/(1 − x) too large.

    KERAS_BACKEND=jax python benchmarks/probes/ema_spectral_norm.py [--steps 1000] [--decay 0.999]

Measured (2026-12-06, 2-core AVX-512 Xeon, JAX 0.10.2, Keras 3.15.1, 1000 steps, d = 0.999): with the live u
4.4 %, 3.4 % and 30 % short in three of the seven layers; with the standing vectors below 1e-11 in all.
"""

import argparse
import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kgen  # noqa: E402
from bench_gans_animals import variant_networks  # noqa: E402
from kgen.ema import spectral_norms  # noqa: E402
from kgen.gans import GAN  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--decay", type=float, default=0.999)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    g, d = variant_networks("+selfmod", 64, args.width)
    gan = GAN(g, d, loss="hinge", ema_decay=args.decay, seed=args.seed)
    gan.compile(optimizers={"generator": keras.optimizers.Adam(2e-4, 0.5),
                            "discriminator": keras.optimizers.Adam(2e-4, 0.5)})
    x = kgen.datasets.to_signed(kgen.datasets.load_animals("train")[0], 256)
    epochs = 4
    gan.fit(x[: args.steps * 64 // epochs], batch_size=64, epochs=epochs, verbose=0)
    averages = {id(v): a for v, a in zip(g.trainable_variables, gan.ema.averages)}
    standing = iter(gan.ema.standing_vectors)
    print(f"{'layer':28s} {'matrix':>12s} {'σ_max(avg)':>10s} {'live u: σ̂/σ − 1':>18s} {'standing u':>12s}")
    for layer in spectral_norms(g):
        kernel = layer.kernel_variable
        matrix = np.asarray(keras.ops.convert_to_numpy(averages[id(kernel)]), np.float64).reshape(-1, kernel.shape[-1])
        sigma = np.linalg.svd(matrix, compute_uv=False)[0]

        def shortfall(u):
            u = np.asarray(keras.ops.convert_to_numpy(u), np.float64)
            return np.linalg.norm(matrix @ (u / np.linalg.norm(u))) / sigma - 1.0

        print(f"{layer.name:28s} {str(matrix.shape):>12s} {sigma:10.4f} {shortfall(layer.u):+18.2e} "
              f"{shortfall(next(standing)):+12.2e}")


if __name__ == "__main__":
    main()
