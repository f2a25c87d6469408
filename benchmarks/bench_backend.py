"""Benchmarks for kgen.backend, each against a peer measured in the same run.

1. `compile_function` sampling loop vs the same loop as an eager Python loop of keras.ops (what a user writes
   without kgen). 200 steps of x ← x + ε·MLP(x) + √(2ε)·noise on a (256, 64) batch.
2. `AdversarialModel.fit` (two optimizers) vs the keras.io per-backend recipe for a GAN train_step
   (two GradientTapes on TF, two backward passes on torch; the JAX guide has no GAN recipe: n/a).
3. torch: the shipped animal U-Net (28×28, channels 16, levels (1, 2), EMA), ms per `fit` step and per DDIM
   sampling step, and ms per `fit` step of the shipped SELF-MOD GAN (self-modulated BatchNorm, spectral norm,
   self-attention, width 32, hinge), Glow (2 levels × 8 steps, 64 filters) and a UniLM (4 layers × 128), and ms
   per token of that UniLM's cached greedy decoding (48 source tokens, 32 new), with `call_network`'s traced
   replay vs Keras's eager layer calls (`set_network_tracing(False)`), at batch 2 (where Keras's per-layer
   Python time is nearly all there is: what a GPU step pays) and 32. Other backends compile the step, so there
   is no peer there.
4. Random draws (`keras.random.normal((256,))`, as a training step makes them) from `kgen.backend.SeedGenerator`
   vs `keras.random.SeedGenerator`, µs per draw, eager. On torch Keras's copies its counter to the device and
   reads the seed back per draw (on a GPU each a wait; tests/test_seeds.py counts the reads), kgen's does
   neither; on JAX and TF it draws as Keras's does (the ratio is noise).

    KERAS_BACKEND=jax python benchmarks/bench_backend.py      # prints one line per benchmark
"""

import time

import keras
import numpy as np
from keras import ops

import kgen
from kgen import backend as kb

from _child import best_of

BACKEND = keras.backend.backend()


def bench_sampling_loop(steps=200, batch=256, dim=64):
    mlp = keras.Sequential([keras.Input((dim,)), keras.layers.Dense(128, activation="tanh"), keras.layers.Dense(dim)])
    seed = keras.random.SeedGenerator(0)
    eps = 0.01

    def loop(x0):
        noise = keras.random.normal((steps, batch, dim), seed=seed)
        return ops.fori_loop(0, steps, lambda i, x: x + eps * mlp(x) + (2 * eps) ** 0.5 * noise[i], x0)

    def eager(x0):
        x = x0
        for i in range(steps):
            x = x + eps * mlp(x) + (2 * eps) ** 0.5 * keras.random.normal((batch, dim), seed=seed)
        return ops.convert_to_numpy(x)

    compiled = kb.compile_function(loop, state=[mlp, seed])
    x0 = ops.zeros((batch, dim))
    t_kgen = best_of(lambda: ops.convert_to_numpy(compiled(x0)))
    t_peer = best_of(lambda: eager(x0))
    return t_kgen, t_peer


def bench_seed_draws(draws=2000, repeats=5):
    def run(generator):
        def draw():
            for _ in range(draws):
                x = keras.random.normal((256,), seed=generator)
            ops.convert_to_numpy(x)
        return draw

    t_kgen = best_of(run(kb.SeedGenerator(0)), repeats) / draws
    t_peer = best_of(run(keras.random.SeedGenerator(0)), repeats) / draws
    return 1e6 * t_kgen, 1e6 * t_peer


def _networks():
    g = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(2)],
                         name="generator")
    d = keras.Sequential([keras.Input((2,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)],
                         name="discriminator")
    return g, d


class _GAN(kb.AdversarialModel):
    log_names = ("d_loss", "g_loss")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.discriminator = _networks()
        self.seed_generator = keras.random.SeedGenerator(0)

    def train_networks(self, x):
        batch = ops.shape(x)[0]
        z = lambda: keras.random.normal((batch, 8), seed=self.seed_generator)  # noqa: E731
        d = self.minimize(lambda: ops.mean(ops.softplus(-self.discriminator(x))
                                           + ops.softplus(self.discriminator(self.generator(z())))), "discriminator")
        g = self.minimize(lambda: ops.mean(ops.softplus(-self.discriminator(self.generator(z())))), "generator")
        return {"d_loss": d, "g_loss": g}


class _RecipeBase(keras.Model):
    """What the keras.io GAN recipes share: the two networks, a seed generator, an optimizer for each."""

    def __init__(self):
        super().__init__()
        self.generator, self.discriminator = _networks()
        self.seed_generator = keras.random.SeedGenerator(0)
        self.built = True

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer


def _recipe_gan():
    """The keras.io 'custom train_step' GAN for the active backend (TF and torch guides), or None (JAX)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        class Recipe(_RecipeBase):
            def train_step(self, x):
                batch = tf.shape(x)[0]
                z = keras.random.normal((batch, 8), seed=self.seed_generator)
                with tf.GradientTape() as tape:
                    d_loss = tf.reduce_mean(tf.nn.softplus(-self.discriminator(x))
                                            + tf.nn.softplus(self.discriminator(self.generator(z))))
                self.d_optimizer.apply(tape.gradient(d_loss, self.discriminator.trainable_weights),
                                       self.discriminator.trainable_weights)
                z = keras.random.normal((batch, 8), seed=self.seed_generator)
                with tf.GradientTape() as tape:
                    g_loss = tf.reduce_mean(tf.nn.softplus(-self.discriminator(self.generator(z))))
                self.g_optimizer.apply(tape.gradient(g_loss, self.generator.trainable_weights),
                                       self.generator.trainable_weights)
                return {"d_loss": d_loss, "g_loss": g_loss}

        return Recipe()
    if BACKEND == "torch":
        import torch

        class Recipe(_RecipeBase):
            def train_step(self, x):
                batch = x.shape[0]
                z = keras.random.normal((batch, 8), seed=self.seed_generator)
                self.zero_grad()
                d_loss = ops.mean(ops.softplus(-self.discriminator(x)) + ops.softplus(self.discriminator(self.generator(z))))
                d_loss.backward()
                with torch.no_grad():
                    self.d_optimizer.apply([v.value.grad for v in self.discriminator.trainable_weights],
                                           self.discriminator.trainable_weights)
                z = keras.random.normal((batch, 8), seed=self.seed_generator)
                self.zero_grad()
                g_loss = ops.mean(ops.softplus(-self.discriminator(self.generator(z))))
                g_loss.backward()
                with torch.no_grad():
                    self.g_optimizer.apply([v.value.grad for v in self.generator.trainable_weights],
                                           self.generator.trainable_weights)
                return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

        return Recipe()
    return None


def bench_two_optimizer_fit(steps=200, batch=128, repeats=3):
    """Best of `repeats` epochs for each, interleaved, so that both see the same machine load."""
    x = kgen.datasets.toy2d("ring8", steps * batch, seed=0)
    model = _GAN()
    model.compile(optimizers={"discriminator": keras.optimizers.Adam(1e-3), "generator": keras.optimizers.Adam(1e-3)})
    recipe = _recipe_gan()
    contenders = [model]
    if recipe is not None:
        recipe.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
        contenders.append(recipe)
    best = [float("inf")] * len(contenders)
    for contender in contenders:
        contender.fit(x[:batch * 2], batch_size=batch, epochs=1, verbose=0)  # compile outside the timing
    for _ in range(repeats):
        for k, contender in enumerate(contenders):
            start = time.perf_counter()
            contender.fit(x, batch_size=batch, epochs=1, verbose=0)
            best[k] = min(best[k], time.perf_counter() - start)
    return best[0], (best[1] if recipe is not None else None)


def _replay_vs_eager(runs, repeats=3):
    """{name: (kgen ms per step, eager ms per step or None)} of `runs[name] = (warm_up, timed, steps)`: the best
    of `repeats` calls of `timed()`, with `call_network`'s replay on and (torch only) off, interleaved so that
    both see the same machine load; `warm_up()` compiles or traces first, outside the timing."""
    modes = (True, False) if BACKEND == "torch" else (True,)
    best = {(name, tracing): float("inf") for name in runs for tracing in modes}
    for timing in (False,) + (True,) * repeats:  # one warm-up round, then the timed ones
        for tracing in modes:
            previous = kb.set_network_tracing(tracing)
            try:
                for name, (warm_up, timed, steps) in runs.items():
                    if not timing:
                        warm_up()
                        continue
                    start = time.perf_counter()
                    timed()
                    best[name, tracing] = min(best[name, tracing], 1e3 * (time.perf_counter() - start) / steps)
            finally:
                kb.set_network_tracing(previous)
    return {name: (best[name, True], best.get((name, False))) for name in runs}


def bench_unet(batch, fit_steps=20, sample_steps=20):
    """(kgen, eager) pairs of ms per fit step and per sampling step; eager is None off torch."""
    from kgen.app import presets

    x = np.random.default_rng(0).uniform(-1, 1, size=(batch * fit_steps, 28, 28, 1)).astype("float32")
    model = presets.diffusion_model(x, seed=0)
    times = _replay_vs_eager({
        "fit": (lambda: model.fit(x[:2 * batch], batch_size=batch, epochs=1, verbose=0),
                lambda: model.fit(x, batch_size=batch, epochs=1, verbose=0, shuffle=False), fit_steps),
        "sample": (lambda: ops.convert_to_numpy(model.sample(batch, steps=2, seed=0)),
                   lambda: ops.convert_to_numpy(model.sample(batch, steps=sample_steps, seed=0)), sample_steps)})
    return times["fit"], times["sample"]


def _selfmod_gan():
    from kgen.gans import GAN, networks

    g = networks.generator((28, 28, 1), 128, norm="selfmod", spectral_norm=True, attention=True, width=32)
    d = networks.discriminator((28, 28, 1), spectral_norm=True, attention=True, width=32)
    model = GAN(g, d, loss="hinge", seed=0)
    model.compile(optimizers={name: keras.optimizers.Adam(2e-4, 0.5) for name in ("generator", "discriminator")})
    return model, np.random.default_rng(0).uniform(-1, 1, size=(1, 28, 28, 1)).astype("float32")


def _glow():
    from kgen.flows import Glow

    model = Glow((28, 28, 1), seed=0, levels=2, depth=8, filters=64)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, np.random.default_rng(0).uniform(0.01, 0.99, size=(1, 28, 28, 1)).astype("float32")


def _unilm():
    from kgen.text import UniLM

    model = UniLM(vocab_size=64, hidden_dim=128, num_layers=4, num_heads=4, intermediate_dim=256, max_length=64)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    tokens = np.random.default_rng(0).integers(1, 64, size=(1, 48)).astype("int32")
    segments = np.zeros_like(tokens)
    segments[:, 24:] = 1
    return model, {"token_ids": tokens, "segment_ids": segments}


FIT_MODELS = {"SELF-MOD GAN (SN, attention, width 32)": _selfmod_gan, "Glow 2 × 8 × 64, 28×28": _glow,
              "UniLM 4 × 128, 48 tokens": _unilm}


def bench_fit(build, batch, fit_steps=20):
    """(kgen, eager) ms per fit step of `build()`'s model on `fit_steps` batches; eager is None off torch."""
    model, example = build()
    repeat = lambda a: np.repeat(a, batch * fit_steps, axis=0)  # noqa: E731
    x = {k: repeat(v) for k, v in example.items()} if isinstance(example, dict) else repeat(example)
    head = {k: v[:2 * batch] for k, v in x.items()} if isinstance(x, dict) else x[:2 * batch]
    return _replay_vs_eager({
        "fit": (lambda: model.fit(head, batch_size=batch, epochs=1, verbose=0),
                lambda: model.fit(x, batch_size=batch, epochs=1, verbose=0, shuffle=False), fit_steps)})["fit"]


def bench_decoding(batch, tokens=32):
    """(kgen, eager) ms per generated token of a UniLM's cached greedy decoding; eager is None off torch."""
    from kgen.text import UniLM

    model = UniLM(1000, hidden_dim=128, num_layers=4, num_heads=4, intermediate_dim=512, max_length=48 + tokens,
                  initializer_range=0.1)
    sources = np.random.default_rng(0).integers(3, 1000, size=(batch, 48)).astype("int32")
    run = lambda: ops.convert_to_numpy(model.generate(sources, tokens))  # noqa: E731
    return _replay_vs_eager({"decode": (run, run, tokens)})["decode"]


def main():
    kgen.set_seed(0)
    rows = []  # (what, kgen's value, peer's name, peer's value or None, unit)
    t_kgen, t_peer = bench_sampling_loop()
    rows.append(("sampling loop, 200 steps", t_kgen, "eager Python loop", t_peer, "s"))
    t_kgen, t_peer = bench_two_optimizer_fit()
    rows.append(("two-optimizer GAN fit, 200 steps", t_kgen, "keras.io per-backend recipe", t_peer, "s"))
    for batch in (2, 32):
        (fit, fit_eager), (sample, sample_eager) = bench_unet(batch)
        rows.append((f"U-Net fit, batch {batch}, per step", fit, "eager Keras layer calls", fit_eager, "ms"))
        rows.append((f"U-Net DDIM, batch {batch}, per step", sample, "eager Keras layer calls", sample_eager, "ms"))
        for name, build in FIT_MODELS.items():
            mine, eager = bench_fit(build, batch)
            rows.append((f"{name} fit, batch {batch}, per step", mine, "eager Keras layer calls", eager, "ms"))
        mine, eager = bench_decoding(batch)
        rows.append((f"UniLM 4 × 128 greedy decoding (cache, 48 source tokens), batch {batch}, per token", mine,
                     "eager Keras layer calls", eager, "ms"))
    t_kgen, t_peer = bench_seed_draws()
    rows.append(("random draw normal((256,)), eager", t_kgen, "keras.random.SeedGenerator", t_peer, "µs"))
    for name, mine, peer_name, peer, unit in rows:
        digits = 3 if unit == "s" else 1
        if peer is None:
            print(f"[{BACKEND}] {name}: kgen {mine:.{digits}f} {unit}; peer ({peer_name}) n/a on this backend")
        else:
            print(f"[{BACKEND}] {name}: kgen {mine:.{digits}f} {unit}, {peer_name} {peer:.{digits}f} {unit}, "
                  f"speed-up ×{peer / mine:.2f}")
    return rows


if __name__ == "__main__":
    main()
