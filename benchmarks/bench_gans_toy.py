"""The 5×5 Gaussian grid (VEEGAN / MEG's mode-counting protocol), 4 seeds, JAX only: a GAN with a zero-centred
R1 penalty, and Su's energy GAN with and without the entropy term, each before and after latent MALA.

`toy2d("grid25")`: 25 Gaussians of std 0.05 on {−4, −2, 0, 2, 4}². A mode counts when >= 1 of 2500 samples lies
within 3σ = 0.15 of it; "HQ" is the fraction of samples within 3σ of some mode. Goal: 25/25 modes in >= 3 of 4
seeds. All rows: z of size 2, 3×256 MLPs (ReLU G, leaky-ReLU D/U), STEPS × 256, Adam(β = (0.5, 0.9)) with cosine
decay 1e-3 → 1e-4.

    gan        `GAN(loss="gan")` (non-saturating G) + R1 0.1 on real samples (Mescheder et al. 2018)
    energy     `EnergyGAN` (Su 6331: energy U = D, zero-centred real GP λ = 1), no entropy term
    energy+MI  the same with MEG's entropy term (`entropy="jsd"`, a T(x, z) statistics network, weight 1)

After training, 2500 chains from z ~ N(0, I) run 50 MALA steps (ε = 0.01) on E(z) = U(G(z)) + ½‖z‖², with U the
energy (energy rows) or minus the discriminator's logit (the GAN row: D's logit estimates log p_data/p_G, so
p_G·e^{D} is the data density, DDLS, Che et al. 2020).

    KERAS_BACKEND=jax python benchmarks/bench_gans_toy.py [--steps 4000] [--seeds 0,1,2,3] [--rows gan,energy]
"""

import argparse
import time

import numpy as np

BACKENDS = ("jax",)
BATCH, HIDDEN = 256, (256, 256, 256)
ROWS = {
    "gan": dict(kind="gan", r1=0.1),
    "energy": dict(kind="energy", entropy=None),
    "energy+MI": dict(kind="energy", entropy="jsd"),
}


def run(seed, steps, kind, r1=0.0, entropy=None):
    import keras

    import kgen
    from kgen.datasets import toy2d, toy2d_modes
    from kgen.gans import GAN, EnergyGAN
    from kgen.gans.networks import mlp
    from kgen.gans.mcmc import LatentMCMC
    from kgen.metrics import mode_coverage

    kgen.set_seed(seed)
    generator = mlp(2, 2, hidden=HIDDEN, name="generator", seed=10 * seed)
    discriminator = mlp(2, 1, hidden=HIDDEN, activation="leaky_relu", name="discriminator", seed=10 * seed + 5)
    if kind == "gan":
        model = GAN(generator, discriminator, loss="gan", r1_weight=r1, seed=seed)
        names = ["generator", "discriminator"]
        energy = lambda x: -model.discriminator(x)  # noqa: E731
    else:
        model = EnergyGAN(generator, discriminator, gradient_penalty=1.0, entropy=entropy, entropy_weight=1.0,
                          seed=seed)
        names = ["generator", "discriminator"] + (["statistics_network"] if entropy else [])
        energy = model.energy
    schedule = lambda: keras.optimizers.schedules.CosineDecay(1e-3, steps, alpha=0.1)  # noqa: E731
    model.compile(optimizers={name: keras.optimizers.Adam(schedule(), 0.5, 0.9) for name in names})
    start = time.perf_counter()
    model.fit(toy2d("grid25", steps * BATCH, seed=seed), batch_size=BATCH, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    centres, std = toy2d_modes("grid25")
    prior = mode_coverage(keras.ops.convert_to_numpy(model.generate(2500)), centres, std)
    sampler = LatentMCMC(model.generator, energy, step_size=0.01, steps=50, seed=seed,
                         state=[model.discriminator] if kind == "gan" else None)
    x, _, acceptance = sampler.sample(2500)
    mala = mode_coverage(keras.ops.convert_to_numpy(x), centres, std)
    return prior, mala, acceptance, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--rows", default=",".join(ROWS))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    for row in args.rows.split(","):
        results = [run(seed, args.steps, **ROWS[row]) for seed in seeds]
        prior_modes, mala_modes = [r[0][0] for r in results], [r[1][0] for r in results]
        full = sum(m == 25 for m in prior_modes)
        print(f"[jax] grid25 {row}: modes {prior_modes} (25/25 in {full} of {len(seeds)} seeds, goal >= 3 of 4), "
              f"HQ {[round(r[0][1], 2) for r in results]}; after MALA modes {mala_modes}, "
              f"HQ {[round(r[1][1], 2) for r in results]}, acceptance {[round(r[2], 2) for r in results]}; "
              f"{np.mean([r[3] for r in results]) / args.steps * 1e3:.1f} ms/step", flush=True)


if __name__ == "__main__":
    main()
