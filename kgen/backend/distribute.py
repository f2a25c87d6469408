"""Data-parallel training on the devices you have, one way for every family.

    with kgen.distribute.data_parallel():          # JAX: keras.distribution.DataParallel
        model = kgen.flows.Glow(...)               # TF: tf.distribute.MirroredStrategy
        model.compile(...)
        model.fit(x, batch_size=256)               # the global batch is split across the devices

Everything that creates variables (the model, `compile`, its optimizers) goes inside the block, and `fit`
too. Each device computes the loss on its slice of the global batch, gradients are averaged, and every
device holds the same weights. The batch size you pass is the global one: keep it divisible by the number
of devices.

- JAX: `keras.distribution.DataParallel` over `keras.distribution.list_devices()` (GPUs, TPUs, or CPU
  devices made with `XLA_FLAGS=--xla_force_host_platform_device_count=N` before JAX starts).
  Several hosts: call `keras.distribution.initialize(job_addresses, num_processes, process_id)` first on
  every host, then the same block (see docs/distributed.md).
- TensorFlow: `tf.distribute.MirroredStrategy` over the visible GPUs (or the logical CPU devices the
  program configured). Loss scaling: each replica's loss is divided by the number of replicas before its
  gradient is taken, so the all-reduced (summed) gradient is the gradient of the global mean — kgen's
  two-optimizer steps do this in `kgen.backend.gradients`, Keras's own `train_step` does it itself.
- torch: Keras 3.15 has no distribution support for torch; `data_parallel` raises a `ValueError` (use
  torch's own DistributedDataParallel around a custom loop).
"""

import contextlib

from kgen.backend._impl import impl


def num_devices():
    """How many devices `data_parallel()` would use by default."""
    return impl.num_devices()


@contextlib.contextmanager
def data_parallel(devices=None):
    """Context manager: build, compile and fit inside it to train data-parallel.

    Args:
        devices: device names to use (default: all of them; `keras.distribution.list_devices()` on JAX,
            the visible GPUs or else the logical CPUs on TensorFlow).

    Raises:
        ValueError: on the torch backend, or when fewer than one device is named.
    """
    if devices is not None:
        devices = list(devices)
        if not devices:
            raise ValueError("`devices` must name at least one device, got an empty list")
    with impl.data_parallel(devices):
        yield
