"""Child process of tests/test_distribute.py: train a flow and a two-optimizer model on N devices.

    python tests/distributed_worker.py BACKEND N   → prints one JSON line

The devices are virtual CPUs, made before the backend starts (XLA host devices on JAX, logical devices on
TensorFlow). Every input, including the GAN's latent codes, comes from the data, so one device and N
devices must see exactly the same numbers.
"""

import json
import os
import sys

backend, n = sys.argv[1], int(sys.argv[2])
os.environ["KERAS_BACKEND"] = backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if backend == "jax":
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n}"
elif backend == "tensorflow":
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import kgen  # noqa: E402

TRACED_BATCH = []


class PairGAN(kgen.backend.AdversarialModel):
    """Non-saturating GAN whose latent codes arrive with the data: fit(x=[x, z])."""

    log_names = ("d_loss", "g_loss")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="tanh"),
                                           keras.layers.Dense(2)], name="generator")
        self.discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="tanh"),
                                               keras.layers.Dense(1)], name="discriminator")

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def train_networks(self, data):
        x, z = data[0] if isinstance(data, tuple) and len(data) == 1 else data
        TRACED_BATCH.append(x.shape[0])

        def d_loss():
            fake = self.generator(z)
            return ops.mean(ops.softplus(-self.discriminator(x)) + ops.softplus(self.discriminator(fake)))

        def g_loss():
            return ops.mean(ops.softplus(-self.discriminator(self.generator(z))))

        return {"d_loss": self.minimize(d_loss, "discriminator"), "g_loss": self.minimize(g_loss, "generator")}


def weights_of(model):
    return [float(np.sum(np.abs(ops.convert_to_numpy(w)))) for w in model.weights]


def main():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, (128, 4)).astype("float32")
    out = {"devices": kgen.distribute.num_devices()}
    kgen.set_seed(0)
    with kgen.distribute.data_parallel():
        flow = kgen.flows.NICE((4,), hidden=(16,), num_couplings=4, seed=0)
        flow.compile(optimizer=keras.optimizers.SGD(0.05))
        history = flow.fit(x, batch_size=32, epochs=2, shuffle=False, verbose=0)
        out["flow_loss"] = history.history["loss"]
        out["flow_weights"] = weights_of(flow)
        if backend == "tensorflow":
            out["replicas"] = flow.distribute_strategy.num_replicas_in_sync
        else:
            layout = keras.distribution.distribution().get_data_layout((32, 4))
            out["batch_axis_devices"] = int(layout.device_mesh.shape[0]) if layout.axes[0] else 1
            out["weight_devices"] = len(flow.trainable_variables[0].value.sharding.device_set)
    kgen.set_seed(0)
    pairs = [x[:, :2], rng.normal(size=(128, 2)).astype("float32")]
    with kgen.distribute.data_parallel():
        gan = PairGAN()
        gan.compile(optimizers={"discriminator": keras.optimizers.SGD(0.05),
                                "generator": keras.optimizers.SGD(0.05)})
        history = gan.fit(pairs, batch_size=32, epochs=2, shuffle=False, verbose=0)
        out["gan_loss"] = history.history["d_loss"] + history.history["g_loss"]
        out["gan_weights"] = weights_of(gan)
    out["traced_batch"] = [b for b in TRACED_BATCH if b is not None]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
