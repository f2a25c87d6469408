"""Helpers the per-backend modules share (backend-neutral Keras code)."""

import keras


def call_with_state(network, fn, trainable_values, non_trainable_values, inputs, training):
    """`fn(inputs, training=training)` with `network`'s variables read from the given values, changing none of
    them: Keras's `stateless_call` for any function of the network. Returns `(output, new non-trainable values,
    indices of the non-trainable variables the call assigned)`."""
    state = network.non_trainable_variables
    mapping = list(zip(network.trainable_variables, trainable_values)) + list(zip(state, non_trainable_values))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        given = [scope.get_current_value(v) for v in state]  # as the scope holds them (converted)
        output = fn(inputs, training=training)
    new = [scope.get_current_value(v) for v in state]
    return output, new, [i for i, (n, g) in enumerate(zip(new, given)) if n is not g]


def call_with_values(network, inputs, training, trainable_values, method=None, non_trainable_values=None):
    """`method(inputs)` (None: the network's `call`, as `stateless_call` runs it) with `trainable_values` in place
    of the network's trainable weights and `non_trainable_values` (None: the live ones) in place of its
    non-trainable ones, changing neither (what `kgen.backend.call_network(..., trainable_values=...)` computes)."""
    if non_trainable_values is None:
        non_trainable_values = [v.value for v in network.non_trainable_variables]
    fn = network.call if method is None else method
    return call_with_state(network, fn, trainable_values, non_trainable_values, inputs, training)[0]


def plain_call(network, inputs, training, trainable_values, method, non_trainable_values=None):
    """What `kgen.backend.call_network` computes, run as it is."""
    if trainable_values is not None:
        return call_with_values(network, inputs, training, trainable_values, method, non_trainable_values)
    return network(inputs, training=training) if method is None else method(inputs, training=training)


def portable_config(config):
    """A compile config that trains as it should on any backend: `config` with
    - every optimizer that the torch backend serialized under its own class (`{"module":
      "keras.src.backend.torch.optimizers.torch_adam", "class_name": "Adam", "registered_name": "Adam"}`)
      written as the public optimizer (`{"module": "keras.optimizers", ..., "registered_name": None}`, which is
      how JAX and TF write it);
    - `jit_compile` set back to `"auto"`.

    Keras 3.15 saves what the backend resolved, not what the user chose. On torch, `keras.optimizers.Adam(...)`
    builds `torch_adam.Adam`, and that class's module is saved: loaded on JAX or TF, the file built torch's
    optimizer, whose first `fit` step failed inside torch (or the load failed where torch is not installed).
    `jit_compile="auto"` is saved as the backend's answer: False on torch and on TF without a GPU, True on JAX.
    A file from torch then trained on JAX without `jax.jit` (12× slower per step for the 14×14 animal
    U-Net), and one from JAX trained on torch under `torch.compile`. Whether to compile is the training
    backend's choice, so a reloaded model makes it again (a `jit_compile=False` chosen for debugging comes
    back as "auto"). Other entries are kept as given.
    """
    if not isinstance(config, dict):
        return config
    out = _public_optimizers(config)
    if "jit_compile" in out:
        out["jit_compile"] = "auto"
    return out


def _public_optimizers(config):
    """`config` (nested dicts and lists) with torch's optimizer classes under their public Keras names."""
    if isinstance(config, list):
        return [_public_optimizers(item) for item in config]
    if not isinstance(config, dict):
        return config
    out = {key: _public_optimizers(value) for key, value in config.items()}
    module, name = out.get("module"), out.get("class_name")
    public = getattr(keras.optimizers, name, None) if isinstance(name, str) else None
    if (isinstance(module, str) and module.startswith("keras.src.backend.") and ".optimizers." in module
            and isinstance(public, type) and issubclass(public, keras.optimizers.Optimizer)):
        out["module"], out["registered_name"] = "keras.optimizers", None
    return out
