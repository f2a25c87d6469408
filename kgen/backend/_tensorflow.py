"""TensorFlow glue: gradient tapes and tf.function (XLA when asked)."""

import keras
import tensorflow as tf

from kgen.backend._common import plain_call


def input_gradient(fn, x):
    x = tf.convert_to_tensor(x)
    # An inner tape inside whatever tape is recording: the gradient it returns is itself differentiable.
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(fn(x))
    grad = tape.gradient(y, x)
    return tf.zeros_like(x) if grad is None else grad


def gradients(loss_fn, variables):
    variables = list(variables)
    # Under MirroredStrategy each replica's gradients are summed by the optimizer: scale each replica's loss
    # by 1/replicas so the sum is the gradient of the global mean (what Keras's own train_step does).
    with tf.GradientTape() as tape:
        loss = loss_fn()
        scaled = replica_mean(loss)
    grads = tape.gradient(scaled, variables)
    grads = [tf.zeros_like(v.value) if g is None else g for g, v in zip(grads, variables)]
    return loss, grads


def replica_mean(loss):
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / replicas if replicas > 1 else loss


def apply_gradients(optimizer, grads, variables):
    optimizer.apply(grads, variables)


Trainer = keras.Model  # XLA compiler options are a JAX matter (see _jax.py)


class AdversarialTrainer(Trainer):
    def train_step(self, data):
        return self._adversarial_train_step(data)

    def test_step(self, data):
        return self._adversarial_test_step(data)


def compile_function(fn, variables, jit_compile="auto"):
    # Variables are captured by reference in the graph; `variables` only matters on JAX.
    if jit_compile == "auto":
        # XLA's CPU loops ran ~10x slower than a plain graph here (benchmarks/bench_backend.py); Keras's own
        # "auto" makes the same choice for fit.
        jit_compile = bool(tf.config.list_physical_devices("GPU"))
    return tf.function(fn, jit_compile=bool(jit_compile), reduce_retracing=True)


def on_accelerator():
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def _default_devices():
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def num_devices():
    return len(_default_devices())


_STRATEGIES = {}


def data_parallel(devices):
    # One strategy per device set and process: two MirroredStrategy objects over the same devices reuse
    # collective instance keys, and their all-reduces then abort with shape mismatches.
    devices = tuple(devices or _default_devices())
    if devices not in _STRATEGIES:
        _STRATEGIES[devices] = tf.distribute.MirroredStrategy(list(devices))
    return _STRATEGIES[devices].scope()


def call_network(network, inputs, training, trainable_values=None, method=None, non_trainable_values=None):
    # compiled by fit / compile_function
    return plain_call(network, inputs, training, trainable_values, method, non_trainable_values)


def set_network_tracing(enabled):
    return False


def saved_model_refusal():
    return None


def saved_model_endpoint_options(random):
    return {}


def fused_move_towards(variables, targets, weight):
    return False  # the assigns are compiled with the step


def static_shape(x):
    return tuple(x.shape)


@tf.autograph.experimental.do_not_convert  # a host-side question about `x`, never part of the graph
def concrete_value(x):
    # Inside tf.function every tensor is symbolic (a graph tensor), and so is a variable's read.
    if isinstance(x, (tf.Tensor, tf.Variable)) and (not tf.executing_eagerly() or tf.is_symbolic_tensor(x)):
        return None
    return keras.ops.convert_to_numpy(x)


def sync_state(model):
    return None  # the variables hold the current values at every step


def seed_value(seed):
    """An int seed as the int64 state of Keras's TensorFlow generators holds it."""
    return seed if -2**63 <= seed < 2**63 else ((seed & (2**64 - 1)) ^ 2**63) - 2**63


def start_host_seed(generator, seed):
    return None  # the seed state is traced with the step: nothing to keep on the host


def next_host_seed(generator):
    return None  # Keras's own `next`
