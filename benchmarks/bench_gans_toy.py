"""Energy GAN on the 5×5 Gaussian grid (MEG's mode-counting protocol): modes with/without the entropy term
and after latent MALA, 4 seeds, JAX only.

MEG (Kumar et al. 2019) reports that the entropy (mutual-information) term keeps an energy-based generator from
dropping modes on grid25. Here: `EnergyGAN` (Su 6331: zero-centred real GP λ = 1), 2×128 MLPs, z of size 2,
STEPS × 256, Adam(β = (0.5, 0.9)) with cosine decay 1e-3 → 1e-4, entropy None vs "jsd" (MEG's T(x, z),
weight 1); then 2500 samples from the prior and after 50 MALA steps (ε = 0.01) on U(G(z)) + ½‖z‖².
A mode counts when >= 1 sample lies within 3σ = 0.15 of it. The "peer" of each row is the no-entropy run.

    KERAS_BACKEND=jax python benchmarks/bench_gans_toy.py
"""

import time

import numpy as np

BACKENDS = ("jax",)
SEEDS, STEPS, BATCH = (0, 1, 2, 3), 4000, 256


def run(seed, entropy):
    import keras

    import kgen
    from kgen.datasets import toy2d, toy2d_modes
    from kgen.gans import EnergyGAN
    from kgen.gans.gan import mlp
    from kgen.gans.mcmc import LatentSampler
    from kgen.metrics import mode_coverage

    kgen.set_seed(seed)
    model = EnergyGAN(mlp(2, 2, name="generator", seed=10 * seed),
                      mlp(2, 1, activation="leaky_relu", name="discriminator", seed=10 * seed + 5),
                      gradient_penalty=1.0, entropy=entropy, seed=seed)
    names = ["generator", "discriminator"] + (["statistics_network"] if entropy else [])
    schedule = lambda: keras.optimizers.schedules.CosineDecay(1e-3, STEPS, alpha=0.1)  # noqa: E731
    model.compile(optimizers={name: keras.optimizers.Adam(schedule(), 0.5, 0.9) for name in names})
    start = time.perf_counter()
    model.fit(toy2d("grid25", STEPS * BATCH, seed=seed), batch_size=BATCH, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    centres, std = toy2d_modes("grid25")
    prior = mode_coverage(keras.ops.convert_to_numpy(model.generate(2500)), centres, std)
    x, _, acceptance = LatentSampler(model.generator, model.energy, step_size=0.01, steps=50, seed=seed).sample(2500)
    mala = mode_coverage(keras.ops.convert_to_numpy(x), centres, std)
    return prior, mala, acceptance, seconds


def main():
    rows = {}
    for entropy in (None, "jsd"):
        rows[entropy] = [run(seed, entropy) for seed in SEEDS]
    for entropy, results in rows.items():
        label = "entropy jsd" if entropy else "no entropy "
        prior_modes = [r[0][0] for r in results]
        mala_modes = [r[1][0] for r in results]
        print(f"[jax] grid25 EnergyGAN {label}: modes {prior_modes} (mean {np.mean(prior_modes):.1f}/25), "
              f"HQ {[round(r[0][1], 2) for r in results]}; after MALA modes {mala_modes}, "
              f"HQ {[round(r[1][1], 2) for r in results]}, acceptance {[round(r[2], 2) for r in results]}; "
              f"{np.mean([r[3] for r in results]) / STEPS * 1e3:.1f} ms/step")
    base = np.mean([r[0][0] for r in rows[None]])
    with_mi = np.mean([r[0][0] for r in rows["jsd"]])
    print(f"[jax] grid25 mean modes with/without the entropy term: {with_mi:.1f}/{base:.1f} = ×{with_mi / base:.2f}")


if __name__ == "__main__":
    main()
