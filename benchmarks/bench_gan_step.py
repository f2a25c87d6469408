"""GAN training step: `kgen.gans.GAN.fit` on JAX, TF and torch vs the keras.io TF recipe, measured in one run.

The peer is the keras.io "customizing fit" GAN: a `train_step` with one `tf.GradientTape` per network on TF
(non-saturating loss: softplus(−D(x)) + softplus(D(G(z))) for D, softplus(−D(G(z))) for G). kgen's model is
`GAN(loss="gan")` (the same losses) on the same networks (2×128 ReLU MLPs, z of size 2, 2-D data), Adam(1e-3,
0.5, 0.9) for each. Each backend runs in its own process: one warm-up epoch of 20 steps, then the best of three
epochs of 300 steps × 256; the ratio is the recipe's ms/step over each contender's (> 1: faster than the recipe).

Each backend also gets the peer a user of that backend would write instead of kgen, measured in the same child:
    torch  the keras.io "customizing fit() with PyTorch" GAN: `train_step` with `zero_grad`, `backward`, and
           `optimizer.apply` of the `.grad`s under `no_grad`, run by `fit`;
    jax    the keras.io "training loop from scratch in JAX" pattern: `stateless_call` + `jax.value_and_grad` +
           `stateless_apply` in one `jax.jit` step, in a Python loop over the same batches (no `fit`);
    torch  plain PyTorch without Keras (`nn.Sequential`, `torch.optim.Adam(foreach=True)`), the floor of any
           Keras code on torch.

    python benchmarks/bench_gan_step.py          # spawns jax, tensorflow and torch children
"""

import json
import sys
import time

from _child import child_role, run_child

STEPS, BATCH = 300, 256
BACKENDS = ("all-in-one",)


def _networks():

    from kgen.gans.networks import mlp

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


def _torch_recipe():
    import keras
    import torch

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
            softplus = torch.nn.functional.softplus
            z = keras.random.normal((x.shape[0], 2), seed=self.seed_generator)
            self.zero_grad()
            d_loss = torch.mean(softplus(-self.discriminator(x)) + softplus(self.discriminator(self.generator(z))))
            d_loss.backward()
            d_vars = self.discriminator.trainable_weights
            with torch.no_grad():
                self.d_optimizer.apply([v.value.grad for v in d_vars], d_vars)
            z = keras.random.normal((x.shape[0], 2), seed=self.seed_generator)
            self.zero_grad()
            g_loss = torch.mean(softplus(-self.discriminator(self.generator(z))))
            g_loss.backward()
            g_vars = self.generator.trainable_weights
            with torch.no_grad():
                self.g_optimizer.apply([v.value.grad for v in g_vars], g_vars)
            return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    model = Recipe()
    model.compile()
    return model


def _jax_loop_ms(x):
    """ms/step of a jitted stateless GAN step (keras.io JAX custom-loop style) over the batches of `x`."""
    import jax
    import keras

    generator, discriminator = _networks()
    d_opt, g_opt = keras.optimizers.Adam(1e-3, 0.5, 0.9), keras.optimizers.Adam(1e-3, 0.5, 0.9)
    d_opt.build(discriminator.trainable_variables)
    g_opt.build(generator.trainable_variables)

    def d_loss_fn(d_vars, g_vars, xb, z):
        fake, _ = generator.stateless_call(g_vars, [], z)
        real_scores, _ = discriminator.stateless_call(d_vars, [], xb)
        fake_scores, _ = discriminator.stateless_call(d_vars, [], jax.lax.stop_gradient(fake))
        return jax.numpy.mean(jax.nn.softplus(-real_scores) + jax.nn.softplus(fake_scores))

    def g_loss_fn(g_vars, d_vars, z):
        fake, _ = generator.stateless_call(g_vars, [], z)
        scores, _ = discriminator.stateless_call(d_vars, [], fake)
        return jax.numpy.mean(jax.nn.softplus(-scores))

    @jax.jit
    def step(state, xb):
        d_vars, g_vars, d_opt_vars, g_opt_vars, key = state
        key, k1, k2 = jax.random.split(key, 3)
        d_loss, grads = jax.value_and_grad(d_loss_fn)(d_vars, g_vars, xb, jax.random.normal(k1, (xb.shape[0], 2)))
        d_vars, d_opt_vars = d_opt.stateless_apply(d_opt_vars, grads, d_vars)
        g_loss, grads = jax.value_and_grad(g_loss_fn)(g_vars, d_vars, jax.random.normal(k2, (xb.shape[0], 2)))
        g_vars, g_opt_vars = g_opt.stateless_apply(g_opt_vars, grads, g_vars)
        return (d_vars, g_vars, d_opt_vars, g_opt_vars, key), (d_loss, g_loss)

    state = ([v.value for v in discriminator.trainable_variables], [v.value for v in generator.trainable_variables],
             [v.value for v in d_opt.variables], [v.value for v in g_opt.variables], jax.random.PRNGKey(0))
    batches = [x[i: i + BATCH] for i in range(0, len(x), BATCH)]

    def epoch(state, batches):
        for xb in batches:
            state, logs = step(state, xb)
        jax.block_until_ready(logs)
        return state

    state = epoch(state, batches[:20])  # compilation outside the timing
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        state = epoch(state, batches)
        best = min(best, time.perf_counter() - start)
    return 1e3 * best / STEPS


def _raw_torch_ms(x):
    """ms/step of the same GAN step in plain PyTorch (no Keras): the floor on torch."""
    import torch

    def mlp(out):
        return torch.nn.Sequential(torch.nn.Linear(2, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                                   torch.nn.ReLU(), torch.nn.Linear(128, out))

    torch.manual_seed(0)
    generator, discriminator = mlp(2), mlp(1)
    d_opt = torch.optim.Adam(discriminator.parameters(), 1e-3, (0.5, 0.9), foreach=True)
    g_opt = torch.optim.Adam(generator.parameters(), 1e-3, (0.5, 0.9), foreach=True)
    softplus = torch.nn.functional.softplus
    data = torch.as_tensor(x)

    def epoch(steps):
        for i in range(steps):
            xb = data[i * BATCH: (i + 1) * BATCH]
            d_opt.zero_grad(set_to_none=True)
            fake = generator(torch.randn(BATCH, 2)).detach()
            d_loss = torch.mean(softplus(-discriminator(xb)) + softplus(discriminator(fake)))
            d_loss.backward()
            d_opt.step()
            g_opt.zero_grad(set_to_none=True)
            g_loss = torch.mean(softplus(-discriminator(generator(torch.randn(BATCH, 2)))))
            g_loss.backward()
            g_opt.step()
        return float(d_loss) + float(g_loss)

    epoch(20)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        epoch(STEPS)
        best = min(best, time.perf_counter() - start)
    return 1e3 * best / STEPS


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
    backend = keras.backend.backend()
    if backend == "tensorflow":
        result["recipe"] = _ms_per_step(_tf_recipe(), x)
    elif backend == "torch":
        result["peer"] = _ms_per_step(_torch_recipe(), x)
        result["floor"] = _raw_torch_ms(x)
    elif backend == "jax":
        result["peer"] = _jax_loop_ms(x)
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
    peers = {"jax": "jitted stateless_call/stateless_apply step in a Python loop (keras.io JAX custom loop)",
             "torch": "keras.io PyTorch train_step (zero_grad, backward, optimizer.apply) under fit"}
    for backend, text in peers.items():
        result = results[backend]
        if "peer" in result:
            print(f"[{backend}] same-backend peer, {text}: {result['peer']:.2f} ms/step; kgen "
                  f"×{result['peer'] / result['kgen']:.2f}")
    if "floor" in results["torch"]:
        floor = results["torch"]["floor"]
        print(f"[torch] plain PyTorch, no Keras (nn.Sequential, torch.optim.Adam foreach): {floor:.2f} ms/step; "
              f"×{recipe / floor:.2f} vs the TF recipe; kgen torch takes ×{results['torch']['kgen'] / floor:.2f} its time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
