"""The one place in kgen that names a backend.

Model code in kgen is written in `keras.ops`; what `keras.ops` cannot say lives here, with one small module
per backend (`_jax.py`, `_tensorflow.py`, `_torch.py`) chosen when Keras's backend is known:

- `input_gradient(fn, x)`: ∇ₓ Σ fn(x), itself differentiable (gradient penalties, score functions).
- `gradients(loss_fn, variables)` / `minimize(loss_fn, variables, optimizer)`: one optimizer step on a subset
  of variables, from inside a training step or eagerly.
- `AdversarialModel`: a `keras.Model` with several networks, one optimizer each, trained by plain `fit`.
- `state_of(fn)`: the Layers / SeedGenerators / Variables a callable reads (the `state` compiled loops need).
- `compile_function(fn, state)`: compile a sampling loop (tf.function + XLA on TF, jax.jit on JAX, eager
  without autograd on torch), threading the variables it reads and writes on JAX.
- `call_network(network, inputs, training, trainable_values=None, method=None, non_trainable_values=None)`: how
  models call their networks in training and sampling (a traced replay on torch, state passed through;
  `set_network_tracing(False)` turns it off).
- `move_towards(variables, targets, weight)`: the moving-average update of `kgen.ema` (fused on torch).
- `static_shape(x)`: `x`'s shape as Python ints, also inside a torch trace (shape checks in `call`).
- `sublayers(network)`: the network and every layer nested in it (e.g. to find its BatchNorms).
- `on_accelerator()`: whether the backend computes on a GPU/TPU (how often callbacks may sync with it).
- `saved_model_refusal()` / `saved_model_endpoint_options(random)`: what `kgen.export` may ask of the backend
  when writing a SavedModel (torch cannot; JAX exports random endpoints with their seed state).
- `replica_mean(loss)`: the per-replica loss scaling of data-parallel training (`kgen.distribute`).
- `concrete_value(x)`: `x` as a NumPy array when its value exists now, None for tracers and symbolic tensors
  (value checks that must not run while tracing).
- `sync_state(model)`: bring the state a running `fit` holds off the variables back into them (JAX), e.g.
  before a callback reads weights mid-epoch.
- `jacobian(fn, x)`: per-example Jacobians built on `input_gradient` (log-det oracles for flows).
- `Model`: the base of kgen's models, a `keras.Model` whose compiled `fit`/`evaluate`/`predict` steps use
  `compile_function`'s XLA CPU options on JAX and put every variable's value back when one raises (plain
  `keras.Model` on TF and torch, which never take the values out of the variables), and whose compile config
  is portable.
- `SeedGenerator(seed)`: `keras.random.SeedGenerator` with the same draws, which on torch keeps its state on
  the host as well, so a draw neither reads from nor copies to the device (kgen's models own one each).
- `portable_config(config)`: a compile config with torch's optimizer classes written under their public Keras
  names and `jit_compile="auto"`, so that a `.keras` file saved on one backend loads and trains on the others
  as a fresh model does there (`Model` and `AdversarialModel` save and load through it).
"""

import keras

from kgen.backend._common import portable_config
from kgen.backend._impl import impl as _impl
from kgen.backend.adversarial import AdversarialModel  # noqa: F401
from kgen.backend.seeds import SeedGenerator  # noqa: F401
from kgen.backend.functions import (  # noqa: F401
    call_network, compile_function, concrete_value, gradients, input_gradient, jacobian, minimize, move_towards,
    on_accelerator, replica_mean, saved_model_endpoint_options, saved_model_refusal, set_network_tracing, state_of,
    static_shape, sublayers, sync_state)

BACKEND = keras.backend.backend()


class Model(_impl.Trainer):
    """The base of kgen's models (see the module docstring). Its compile config goes through `portable_config`:
    optimizers under their public Keras names and `jit_compile="auto"`, so that a `.keras` file saved on one
    backend trains on the others as a fresh model does there.

    Example:
        >>> model = kgen.flows.RealNVP((2,), num_couplings=2, hidden=(8,))    # every kgen model is one
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> config = model.get_compile_config()
        >>> config["optimizer"]["module"], config["jit_compile"]                # ('keras.optimizers', 'auto')
    """

    def get_compile_config(self):
        return portable_config(super().get_compile_config())

    def compile_from_config(self, config):
        super().compile_from_config(portable_config(config))
