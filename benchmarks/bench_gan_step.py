"""GAN training step: `kgen.gans.GAN.fit` on JAX, TF and torch vs the keras.io TF recipe, measured in one run.

The peer is the keras.io "customizing fit" GAN: a `train_step` with one `tf.GradientTape` per network on TF
(non-saturating loss: softplus(−D(x)) + softplus(D(G(z))) for D, softplus(−D(G(z))) for G). kgen's model is
`GAN(loss="gan")` (the same losses) on the same networks (2×128 ReLU MLPs, z of size 2, 2-D data), Adam(1e-3,
0.5, 0.9) for each. Each backend runs in its own process: one warm-up epoch of 20 steps, then the best of three
epochs of 300 steps × 256; the ratio is the recipe's ms/step over each contender's (> 1: faster than the recipe).

    python benchmarks/bench_gan_step.py          # spawns jax, tensorflow and torch children
"""

import json
import sys
import time

from _child import child_role, run_child

STEPS, BATCH = 300, 256
BACKENDS = ("all-in-one",)


def _networks():

    from kgen.gans.gan import mlp

    return mlp(2, 2, name="generator", seed=1), mlp(2, 1, name="discriminator", seed=2)


def _tf_recipe():
    import keras
    import tensorflow as tf

    class Recipe(keras.Model):
        def __init__(self):
            super().__init__()
            self.generator, self.discriminator = _networks()
            self.seed_generator = keras.random.SeedGenerator(0)
            self.built = True

        def compile(self):
            super().compile()
            self.d_optimizer = keras.optimizers.Adam(1e-3, 0.5, 0.9)
            self.g_optimizer = keras.optimizers.Adam(1e-3, 0.5, 0.9)

        def train_step(self, x):
            batch = tf.shape(x)[0]
            z = keras.random.normal((batch, 2), seed=self.seed_generator)
            with tf.GradientTape() as tape:
                d_loss = tf.reduce_mean(tf.nn.softplus(-self.discriminator(x))
                                        + tf.nn.softplus(self.discriminator(self.generator(z))))
            d_vars = self.discriminator.trainable_weights
            self.d_optimizer.apply(tape.gradient(d_loss, d_vars), d_vars)
            z = keras.random.normal((batch, 2), seed=self.seed_generator)
            with tf.GradientTape() as tape:
                g_loss = tf.reduce_mean(tf.nn.softplus(-self.discriminator(self.generator(z))))
            g_vars = self.generator.trainable_weights
            self.g_optimizer.apply(tape.gradient(g_loss, g_vars), g_vars)
            return {"d_loss": d_loss, "g_loss": g_loss}

    model = Recipe()
    model.compile()
    return model


def _ms_per_step(model, x):
    model.fit(x[: 20 * BATCH], batch_size=BATCH, epochs=1, verbose=0)  # compilation outside the timing
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        model.fit(x, batch_size=BATCH, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - start)
    return 1e3 * best / STEPS


def measure():
    import keras

    import kgen
    from kgen.gans import GAN

    kgen.set_seed(0)
    x = kgen.datasets.toy2d("ring8", STEPS * BATCH, seed=0)
    model = GAN(*_networks(), loss="gan")
    model.compile(optimizers={"generator": keras.optimizers.Adam(1e-3, 0.5, 0.9),
                              "discriminator": keras.optimizers.Adam(1e-3, 0.5, 0.9)})
    result = {"kgen": _ms_per_step(model, x)}
    if keras.backend.backend() == "tensorflow":
        result["recipe"] = _ms_per_step(_tf_recipe(), x)
    return result


def main():
    if child_role():
        print(json.dumps(measure()))
        return 0
    results = {}
    for backend in ("jax", "tensorflow", "torch"):
        results[backend] = run_child(__file__, backend) or {"kgen": float("nan")}
    recipe = results["tensorflow"].get("recipe", float("nan"))
    print(f"[tensorflow] keras.io GradientTape GAN train_step (peer): {recipe:.2f} ms/step ({STEPS} steps × {BATCH})")
    for backend, result in results.items():
        print(f"[{backend}] kgen GAN(loss='gan').fit: {result['kgen']:.2f} ms/step, "
              f"×{recipe / result['kgen']:.2f} vs the TF recipe")
    return 0


if __name__ == "__main__":
    sys.exit(main())
