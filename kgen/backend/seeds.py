"""kgen's `SeedGenerator`: Keras's, with the same draws on every backend, and no device read per draw on torch."""

import keras

from kgen.backend._impl import impl as _impl


@keras.saving.register_keras_serializable(package="kgen")
class SeedGenerator(keras.random.SeedGenerator):
    """`keras.random.SeedGenerator`, whose draws on torch neither wait for the device nor copy to it.

    Keras's torch backend seeds every random op with `int(state)`, a read of the generator's state from the
    device, after advancing that state by a counter it copies from the host: on a GPU each is a wait for every
    queued kernel. kgen's models draw every step (times and noise in diffusion, z in GANs, noise in samplers
    and chains), so on torch this generator also keeps the state in host memory: a draw takes its seed from
    there and advances the variable on the device, as Keras does. The variable stays the state that saving,
    `state.assign` and reloading see; a write made elsewhere (`load_weights`, `state.assign`) is noticed from
    the tensor's version counter, and the host copy is read again once. On JAX and TensorFlow, inside a
    stateless scope (a trace), and off the Keras series it was checked on, it is Keras's class unchanged.
    Draws are the same as `keras.random.SeedGenerator`'s for the same seed on every backend, and any int seed is
    taken as `keras.random.normal(..., seed=int)` takes it (its low 32 bits on torch and JAX), where Keras's class
    overflows the state of torch for seeds from 2³¹ on.

    Example:
        >>> seed = kgen.backend.SeedGenerator(0)
        >>> x = keras.random.normal((2, 3), seed=seed)    # the draw keras.random.SeedGenerator(0) gives
    """

    def __init__(self, seed=None, name=None, **kwargs):
        if isinstance(seed, int):  # any int, as `seed=int` takes it (Keras's class overflows its state on torch)
            seed = _impl.seed_value(seed)
        super().__init__(seed=seed, name=name, **kwargs)
        _impl.start_host_seed(self, seed)

    def next(self, ordered=True):
        seed = _impl.next_host_seed(self) if ordered else None
        return super().next(ordered) if seed is None else seed
