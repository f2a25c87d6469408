"""kgen Glow against TensorFlow Probability's `tfb.Glow`, training examples/s on the TF backend, in one run.

Both models: 28×28×1 animals, 2 levels (TFP: `num_glow_blocks`) × 8 steps, ActNorm, LU-parameterised 1×1
convolutions, affine couplings with scale sigmoid(h + 2) from conv3×3(64) → conv1×1(64) → zero conv3×3
(TFP's `GlowDefaultNetwork(num_hidden=64)`), half the channels factored out after the first level with a
learned conditional prior (TFP's exit coupling), standard-normal top. Batch 64, Adam 1e-3, one epoch of
2048 images after a warm-up.

- kgen: `Glow(...).fit(x)` — the Keras 3 training step (TF backend: a `tf.function`).
- TFP: the keras.io recipe, a `tf.function` step with `tf.GradientTape` on `-log_prob` of a
  `TransformedDistribution`, tf_keras Adam.

Each runs in its own process (TFP needs tf_keras; Keras 3 and tf_keras in one process share TF's global
state). A third process measures kgen Glow on JAX for the JAX/TF ratio.

    python benchmarks/bench_flows_tfp.py
"""

import json
import sys
import time

from _child import child_role, run_child

from bench_flows_speed import BATCH, N  # the kgen side is bench_flows_speed's measurement, same model and data
from bench_flows_speed import measure as measure_kgen

LEVELS, DEPTH, FILTERS = 2, 8, 64
BACKENDS = ("all-in-one",)


def _data():
    from kgen.datasets import ANIMAL_LEVELS, dequantize, load_animals

    return dequantize(load_animals("train")[0][:N], ANIMAL_LEVELS, seed=0)


def measure_tfp():
    import numpy as np
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    tfb, tfd = tfp.bijectors, tfp.distributions
    tf.random.set_seed(0)
    x = _data().astype(np.float32) - 0.5
    glow = tfb.Glow(output_shape=(28, 28, 1), num_glow_blocks=LEVELS, num_steps_per_block=DEPTH,
                    coupling_bijector_fn=lambda shape: tfb.GlowDefaultNetwork(shape, num_hidden=FILTERS),
                    exit_bijector_fn=tfb.GlowDefaultExitNetwork, grab_after_block=(0.5, 0.0), seed=0)
    z_shape = glow.inverse_event_shape((28, 28, 1))
    flow = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), z_shape), glow)
    optimizer = tf_keras.optimizers.Adam(1e-3)
    dims = 28 * 28

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(flow.log_prob(batch)) / dims
        variables = flow.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def epoch(data):
        for i in range(0, len(data) - BATCH + 1, BATCH):
            step(tf.constant(data[i:i + BATCH]))

    flow.log_prob(x[:BATCH])  # builds the networks and runs ActNorm's data-dependent init
    epoch(x[: BATCH * 4])
    start = time.perf_counter()
    epoch(x)
    return N / (time.perf_counter() - start)


def main():
    which = child_role()
    if which:
        rate = measure_tfp() if which == "tfp" else measure_kgen()
        print(json.dumps({"examples_per_s": rate}))
        return 0

    def rate(role, backend):
        result = run_child(__file__, backend, role=role)
        return result["examples_per_s"] if result else float("nan")

    tfp_rate, kgen_tf, kgen_jax = rate("tfp", "tensorflow"), rate("kgen", "tensorflow"), rate("kgen", "jax")
    shape = f"Glow 28×28 ({LEVELS}×{DEPTH} steps, {FILTERS} filters) training"
    print(f"[tensorflow] TFP tfb.Glow {shape}: {tfp_rate:.1f} examples/s")
    print(f"[tensorflow] kgen Glow {shape}: {kgen_tf:.1f} examples/s, ×{kgen_tf / tfp_rate:.2f} vs TFP tfb.Glow")
    print(f"[jax] kgen Glow {shape}: {kgen_jax:.1f} examples/s, ×{kgen_jax / kgen_tf:.2f} vs kgen on TF, "
          f"×{kgen_jax / tfp_rate:.2f} vs TFP tfb.Glow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
