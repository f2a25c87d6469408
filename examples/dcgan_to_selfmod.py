"""Su's "从DCGAN到SELF-MOD" (kexue.fm/archives/6549) on the 28×28 animal silhouettes: one GAN per stage.

    python examples/dcgan_to_selfmod.py --backend jax --epochs 5 --out runs/dcgan_to_selfmod
    python examples/dcgan_to_selfmod.py --epochs 1 --limit 256 --width 8 --stages dcgan,selfmod   # smoke run
    python examples/dcgan_to_selfmod.py --stages dcgan,sngan,selfmod --critic sndcgan --epochs 32   # 4000 steps

Stages (networks from `kgen.gans.networks`, all trained with the hinge loss by `kgen.gans.GAN`):

    dcgan    DCGAN G (4×4 stride-2 deconvolutions, BN) and DCGAN D (BN, no spectral norm)
    sngan    the same G; D spectral-normalized, without BN (Miyato et al. 2018)
    sagan    spectral norm in G and D, self-attention on the 14×14 maps of both (Zhang et al. 2019)
    biggan   SAGAN + class-conditional BN in G, projection D, EMA of G's weights (Brock et al. 2019, small)
    selfmod  SNGAN with self-modulated BN in G: γ(z), β(z) (Chen et al. 2019)

`--critic sndcgan` gives every spectrally normalised stage (all but dcgan) the SNGAN paper's deeper critic
(`networks.discriminator(arch="sndcgan")`: a 3×3 stride-1 conv around each strided one, the SELF-MOD paper's
SNDCGAN). On the CPU (README, "GANs") SELF-MOD's generator in front of that critic has half the FD of DCGAN's
generator in front of it at 2000 steps, and ties DCGAN with its own BatchNorm critic at 4000.

Every stage uses the same optimizer, Adam(2e-4, β₁=0.5, β₂=0.999) for both networks, the same batch size
and epochs. After training it prints the Fréchet distance between generated and held-out test images in the
features of kgen's animal classifier (`kgen.metrics.feature_model("animals")`, lower is better; not
comparable with Inception FIDs), next to the train-vs-test distance of real images (the floor), and writes
a sample grid per stage (the EMA generator's for biggan) and the generators' `.keras` files.
"""

import argparse
import os
import sys

STAGES = ("dcgan", "sngan", "sagan", "biggan", "selfmod")
CRITICS = ("dcgan", "sndcgan")


def stage_networks(stage, latent_dim, width, num_classes=10, critic="dcgan"):
    """(generator, discriminator) of one stage of the article's path, for 28×28×1 images; `critic` is the
    architecture of the spectrally normalised discriminators (every stage but dcgan)."""
    from kgen.gans import networks

    if critic not in CRITICS:
        raise ValueError(f"`critic` must be one of {list(CRITICS)}, got {critic!r}")
    shape = (28, 28, 1)

    def sn_critic(**kwargs):
        return networks.discriminator(shape, arch=critic, spectral_norm=True, width=width, **kwargs)

    if stage == "dcgan":
        return (networks.generator(shape, latent_dim, norm="bn", width=width),
                networks.discriminator(shape, spectral_norm=False, width=width))
    if stage == "sngan":
        return networks.generator(shape, latent_dim, norm="bn", width=width), sn_critic()
    if stage == "sagan":
        return (networks.generator(shape, latent_dim, spectral_norm=True, attention=True, width=width),
                sn_critic(attention=True))
    if stage == "biggan":
        return (networks.generator(shape, latent_dim, norm="cbn", num_classes=num_classes, spectral_norm=True,
                                   attention=True, width=width),
                sn_critic(attention=True, num_classes=num_classes))
    if stage == "selfmod":
        return networks.generator(shape, latent_dim, norm="selfmod", width=width), sn_critic()
    raise ValueError(f"`stage` must be one of {list(STAGES)}, got {stage!r}")


def frechet_distance_in_features(features, real01, fake01):
    """Fréchet distance between two image sets in [0, 1], in the classifier's feature space (float64)."""
    from kgen.metrics import frechet_distance, gaussian_statistics

    real = features.predict(real01, batch_size=500, verbose=0)
    fake = features.predict(fake01, batch_size=500, verbose=0)
    return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(fake))


def generate_all(sample, n, labels, chunk=500):
    """`sample(count, labels)` called in chunks, concatenated to a NumPy array of n images."""
    import keras
    import numpy as np

    parts = []
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        y = None if labels is None else keras.ops.convert_to_tensor(labels[start:start + count], "int32")
        parts.append(keras.ops.convert_to_numpy(sample(count, y)))
    return np.concatenate(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), choices=["jax", "tensorflow", "torch"])
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated, from " + ",".join(STAGES))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N train/test images (smoke runs)")
    parser.add_argument("--critic", default="dcgan", choices=CRITICS,
                        help="architecture of the spectrally normalised discriminators (all stages but dcgan)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/dcgan_to_selfmod")
    args = parser.parse_args(argv)
    stages = args.stages.split(",")
    for stage in stages:
        if stage not in STAGES:
            parser.error(f"unknown stage {stage!r}; choose from {','.join(STAGES)}")
    os.environ["KERAS_BACKEND"] = args.backend

    import keras
    import numpy as np

    import kgen
    from kgen.datasets import load_animals
    from kgen.gans import GAN
    from kgen.images import save_grid

    rng = np.random.default_rng(args.seed)
    train, train_labels = load_animals("train")
    test, _ = load_animals("test")
    if args.limit:  # a random subset: the files are sorted by class
        keep = rng.permutation(len(train))[: args.limit]
        train, train_labels = train[keep], train_labels[keep]
        test = test[rng.permutation(len(test))[: args.limit]]
    x = kgen.datasets.to_signed(train, 256)  # (n, 28, 28, 1) in [-1, 1], the generators' tanh range
    test01 = test.astype("float32") / 255.0
    features = kgen.metrics.feature_model("animals")
    floor = frechet_distance_in_features(features, x[: len(test01)] * 0.5 + 0.5, test01)
    print(f"real train vs test: FD {floor:.2f} (the floor)", flush=True)
    os.makedirs(args.out, exist_ok=True)

    for stage in stages:
        kgen.set_seed(args.seed)
        generator, discriminator = stage_networks(stage, args.latent_dim, args.width, critic=args.critic)
        conditional = stage == "biggan"
        # An average over ~100 generator updates: a 0.999 one (~1000) would still hold the early weights after
        # these few epochs (DCGAN at 2000 steps: FD 29.1 against the live generator's 10.2, README "GANs").
        gan = GAN(generator, discriminator, loss="hinge", seed=args.seed, ema_decay=0.99 if conditional else None)
        gan.compile(optimizers={"generator": keras.optimizers.Adam(2e-4, 0.5, 0.999),
                                "discriminator": keras.optimizers.Adam(2e-4, 0.5, 0.999)})
        gan.fit(x, train_labels.astype("int32") if conditional else None, batch_size=args.batch_size,
                epochs=args.epochs, verbose=0)
        n = len(test01)
        labels = rng.integers(0, 10, size=n).astype("int32") if conditional else None
        fake = generate_all(lambda k, y: gan.generate(k, labels=y, use_ema=False), n, labels)
        line = f"{stage}: FD {frechet_distance_in_features(features, fake * 0.5 + 0.5, test01):.2f}"
        if gan.ema is not None:
            fake = generate_all(lambda k, y: gan.generate(k, labels=y), n, labels)
            line += f", EMA generator FD {frechet_distance_in_features(features, fake * 0.5 + 0.5, test01):.2f}"
            generator = gan.averaged_generator()
        print(line, flush=True)
        save_grid(os.path.join(args.out, f"{stage}_samples.png"), np.clip(fake[:64], -1, 1), value_range=(-1.0, 1.0),
                  scale=2)
        generator.save(os.path.join(args.out, f"{stage}_generator.keras"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
