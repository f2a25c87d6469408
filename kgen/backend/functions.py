"""Gradients, Jacobians and compiled functions, dispatched to the active backend."""

import functools
import types

import keras
import numpy as np
from keras import ops

from kgen.backend import _keras_compat as compat
from kgen.backend._impl import impl


def input_gradient(fn, x):
    """Gradient of a per-example function with respect to its input, differentiable again.

    Computes ∇ₓ Σᵢ fn(x)ᵢ. When fn acts on each example independently (no batch statistics), row i of
    the result is ∇ fn(x)ᵢ with respect to xᵢ. The result keeps its graph, so a loss built from it (a gradient
    penalty ‖∇ₓD(x)‖²) can be differentiated again with respect to the weights inside fn.

    State updates made by fn (BatchNorm statistics, spectral-norm vectors, seed generators) are kept on every
    backend, JAX included.

    Args:
        fn: callable mapping a tensor of shape `x.shape` to a tensor of shape `(batch,)` or `(batch, ...)`.
        x: tensor of shape `(batch, ...)`.

    Returns:
        A tensor of the shape of `x`.

    Example:
        >>> x = keras.ops.convert_to_tensor([[1.0, 2.0]])
        >>> kgen.backend.input_gradient(lambda t: keras.ops.sum(t**2, axis=-1), x)  # [[2., 4.]]
    """
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {type(fn).__name__}")
    return impl.input_gradient(fn, x)


def gradients(loss_fn, variables):
    """Value and gradient of a scalar `loss_fn()` with respect to Keras `variables`.

    Returns `(loss, grads)`, `grads` aligned with `variables` (zeros where the loss does not depend on one).
    Works eagerly and inside a kgen training step on every backend; on JAX the state updates made by
    `loss_fn` are carried out of the differentiated function.
    """
    if not callable(loss_fn):
        raise TypeError(f"`loss_fn` must be callable, got {type(loss_fn).__name__}")
    return impl.gradients(loss_fn, variables)


def minimize(loss_fn, variables, optimizer):
    """One step of `optimizer` on `variables` to decrease the scalar `loss_fn()`; returns the loss."""
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"`optimizer` must be a keras.optimizers.Optimizer, got {type(optimizer).__name__}")
    variables = list(variables)
    loss, grads = gradients(loss_fn, variables)
    impl.apply_gradients(optimizer, grads, variables)
    return loss


def call_network(network, inputs, training=False, trainable_values=None, method=None, non_trainable_values=None):
    """`network(inputs, training=training)`, the way kgen's models call their networks in training and sampling.

    With `trainable_values` (tensors aligned with `network.trainable_variables`) the network runs with those in
    place of its trainable weights, its live non-trainable weights (or `non_trainable_values`, aligned with
    `network.non_trainable_variables`), and no change to either (`stateless_call`; how an EMA's averages and
    their standing BatchNorm statistics are used). With `method` (a bound method of `network`, e.g. `flow._log_prob`),
    `method(inputs, training=training)` is called instead of the network itself: the network's variables are
    the ones it reads.

    On JAX and TensorFlow this is the plain call (the step is compiled as a whole). On torch the call is traced
    once per (training, input shapes and dtypes, with or without `trainable_values`, method) with
    `torch.jit.trace` and replayed: the same Parameters (or the given values, inputs of the trace), autograd and
    double backprop, without Keras's per-layer Python time (×1.7–3.8 per step at batch 2 on a CPU:
    benchmarks/bench_backend.py). A network with state (BatchNorm statistics, spectral-norm vectors, ActNorm:
    non-trainable variables) is traced as `stateless_call`, its state passed in and the part the call assigns
    passed out and written back, detached. Traces that read a tensor as a Python number (a dropout seed) or do
    not reproduce the eager call on their inputs and on perturbed ones are not used: such networks run
    eagerly. A network whose `call` depends on Python attributes changed between steps must not be traced:
    switch tracing off with `set_network_tracing(False)`.

    Example:
        >>> net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> y = kgen.backend.call_network(net, keras.ops.ones((4, 3)), training=True)       # (4, 2)
        >>> zeros = [keras.ops.zeros(v.shape) for v in net.trainable_variables]
        >>> kgen.backend.call_network(net, keras.ops.ones((4, 3)), trainable_values=zeros)  # (4, 2) zeros
    """
    if not isinstance(network, keras.layers.Layer):
        raise TypeError(f"`network` must be a keras Layer or Model, got {type(network).__name__}")
    if trainable_values is not None:  # their count is checked by `stateless_call` (not here: a walk per call)
        trainable_values = list(trainable_values)
    if non_trainable_values is not None:
        if trainable_values is None:
            raise ValueError("`non_trainable_values` needs `trainable_values` (a call with given weights changes "
                             "no variable; a live call updates the live state)")
        non_trainable_values = list(non_trainable_values)
    if method is not None and getattr(method, "__self__", None) is not network:
        raise ValueError("`method` must be a bound method of `network`")
    return impl.call_network(network, inputs, training, trainable_values, method, non_trainable_values)


def sublayers(network):
    """`network` and every layer inside it (nested ones too, e.g. the BatchNorm inside a self-modulated one),
    each once: what to search for layers of a kind.

    Example:
        >>> net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization()])
        >>> [type(l).__name__ for l in kgen.backend.sublayers(net)][1:]   # ['Dense', 'BatchNormalization']
    """
    if not isinstance(network, keras.layers.Layer):
        raise TypeError(f"`network` must be a keras Layer or Model, got {type(network).__name__}")
    return compat.sublayers(network)


def static_shape(x):
    """The shape of `x` as a tuple of Python ints (None where a compiled function leaves a size unknown), for
    shape checks inside `call`.

    Inside a torch trace (`call_network`) sizes are recorded as tensors, and reading one as a Python number
    would make the network run eagerly; the trace is specialised to its input shapes, so this reads them as
    the numbers they are for it.

    Example:
        >>> kgen.backend.static_shape(keras.ops.zeros((2, 3)))   # (2, 3)
    """
    return impl.static_shape(x)


def move_towards(variables, targets, weight):
    """variables[i] ← variables[i] + weight · (targets[i] − variables[i]) for every i (exponential moving averages).

    `weight` is a scalar tensor (a traced value: no host round-trip), `targets` tensors of the variables'
    shapes, not differentiated. On JAX and TensorFlow these are `assign`s inside the compiled step. On torch,
    which runs the step eagerly, it is three multi-tensor ops for all the variables (`torch._foreach_*`, as
    Keras's own torch optimizers update their slots) instead of four Keras ops per variable: the same
    arithmetic in the same order, so the same values.
    """
    variables, targets = list(variables), list(targets)
    if len(variables) != len(targets):
        raise ValueError(f"got {len(variables)} variables and {len(targets)} targets")
    if impl.fused_move_towards(variables, targets, weight):
        return
    for variable, target in zip(variables, targets):
        variable.assign(variable + ops.cast(weight, variable.dtype) * (ops.stop_gradient(target) - variable))


def set_network_tracing(enabled):
    """Switch `call_network`'s torch traces on or off (default on); returns the previous setting (False off torch)."""
    return impl.set_network_tracing(enabled)


def replica_mean(loss):
    """Scale a per-replica mean loss for data-parallel training; the identity without replicas.

    A model that overrides `compute_loss` returns the mean over its slice of the batch. Under TensorFlow's
    MirroredStrategy the optimizer sums the replicas' gradients, so each replica's loss must be divided by
    the number of replicas (Keras's compiled losses do this themselves). On JAX (one SPMD program over the
    global batch) and torch this returns `loss` unchanged.
    """
    return impl.replica_mean(loss)


def jacobian(fn, x):
    """Per-example Jacobian ∂fn(x)ᵢ/∂xᵢ of a function that maps each example on its own.

    Built from `input_gradient`, one output coordinate at a time: exact (autodiff), meant for tests and
    small dimensions (log-det oracles for flows).

    Args:
        fn: callable, `(batch, *in_shape) -> (batch, *out_shape)`, acting on each example independently.
        x: tensor `(batch, *in_shape)`.

    Returns:
        Tensor `(batch, prod(out_shape), prod(in_shape))`.
    """
    x = ops.convert_to_tensor(x)
    batch = ops.shape(x)[0]
    out_dim = int(ops.size(fn(x)) // batch)
    rows = []
    for k in range(out_dim):
        grad = input_gradient(lambda t, k=k: ops.reshape(fn(t), (batch, -1))[:, k], x)
        rows.append(ops.reshape(grad, (batch, -1)))
    return ops.stack(rows, axis=1)


_KERAS_STATE = (keras.layers.Layer, keras.random.SeedGenerator, keras.Variable)


def state_of(fn):
    """The Layers / SeedGenerators / Variables a callable reads, in order, without repeats.

    A compiled loop (`compile_function`) must be told the Keras state the functions it runs read: on JAX the
    variables are threaded through the compiled function, which otherwise keeps the values of its first call.
    Diffusion samplers and guidance, and `kgen.gans.LatentMCMC`, find it with this, so no one passes it by hand.
    Found: a Layer/Model, SeedGenerator or Variable itself; the owner of a bound method (`model.eps_fn`,
    `gan.energy`); the function of a `functools.partial`; what a closure (a lambda or nested function) reads
    from its enclosing scope (Layers, SeedGenerators, and callables, searched in turn); and the `state` list of
    kgen's wrappers (`ClassifierFreeGuidance`, `UpsampleGuidance`, `EpsFunction`). Not found: a model that a
    plain function reads through a global variable (wrap it in a Layer, or use a closure).

    Example:
        >>> net = keras.layers.Dense(2)
        >>> kgen.backend.state_of(lambda x: 2.0 * net(x)) == [net]
        True
    """
    found = []
    _collect_state(fn, found, set())
    return found


def _collect_state(fn, found, seen):
    if id(fn) in seen:
        return
    seen.add(id(fn))
    if isinstance(fn, _KERAS_STATE):
        found.append(fn)
        return
    if isinstance(fn, functools.partial):
        _collect_state(fn.func, found, seen)
        return
    owner = getattr(fn, "__self__", None)  # a bound method: its object holds the state
    if owner is not None and not isinstance(owner, (type, types.ModuleType)):
        _collect_state(owner, found, seen)
        return
    state = getattr(fn, "state", None)  # kgen's wrappers
    if isinstance(state, (list, tuple)):
        for item in state:
            _collect_state(item, found, seen)
        return
    for cell in getattr(fn, "__closure__", None) or ():  # a lambda or nested function: what it closes over
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell (a name not yet bound)
            continue
        if isinstance(value, _KERAS_STATE) or callable(value):
            _collect_state(value, found, seen)


def _collect_variables(state):
    if state is None:
        return []
    if isinstance(state, (keras.layers.Layer, keras.Variable)):
        state = [state]
    variables, seen = [], set()
    for item in state:
        if isinstance(item, keras.layers.Layer):
            found = item.variables
        elif isinstance(item, keras.random.SeedGenerator):
            found = [item.state]
        elif isinstance(item, keras.Variable):
            found = [item]
        else:
            raise TypeError(
                "`state` must be a Layer, Model, SeedGenerator, Variable, or a list of them; "
                f"got {type(item).__name__}"
            )
        for variable in found:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def on_accelerator():
    """True when the active backend computes on a GPU/TPU: host round-trips per step then cost a device sync
    (callbacks such as kgen.callbacks.StopOnNaN read losses less often)."""
    return impl.on_accelerator()


def compile_function(fn, state=None, jit_compile="auto"):
    """Compile `fn(*arrays, **static)` for the active backend: sampling loops, MCMC chains, decoding.

    - TensorFlow: `tf.function`, with XLA when `jit_compile=True`, or with `"auto"` when a GPU is visible
      (on CPU, XLA ran the benchmark loop ~10× slower than a plain graph, the choice Keras's "auto" makes).
    - JAX: `jax.jit`, with the variables of `state` passed in and their updates (seed generators, caches)
      assigned back after each call, so every call sees the current weights and draws fresh noise.
    - torch: eager, under `torch.no_grad()`.

    Positional arguments are tensors (traced); keyword arguments are static Python values (one compilation
    per distinct value). Write the loop with `keras.ops.fori_loop` / `while_loop`. Randomness on JAX: draw
    all the noise before the loop with `keras.random.*(seed=seed_generator)` and index it in the body (a seed
    generator cannot advance inside a JAX loop body).

    Args:
        fn: the function to compile. It must not create variables (build models first).
        state: the Layers, Models, SeedGenerators or Variables that `fn` reads or updates.
        jit_compile: "auto" (default), True (XLA on TF as well), or False to run `fn` as it is (debugging).

    Returns:
        A callable with the signature of `fn`.

    Example:
        >>> seed = keras.random.SeedGenerator(0)
        >>> def walk(x0, steps):
        ...     noise = keras.random.normal((steps,) + tuple(x0.shape), seed=seed)
        ...     return keras.ops.fori_loop(0, steps, lambda i, x: x + noise[i], x0)
        >>> run = kgen.backend.compile_function(walk, state=[seed])
        >>> run(keras.ops.zeros((4,)), steps=10)
    """
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {type(fn).__name__}")
    if jit_compile not in ("auto", True, False):
        raise ValueError(f"`jit_compile` must be 'auto', True or False, got {jit_compile!r}")
    return impl.compile_function(fn, _collect_variables(state), jit_compile=jit_compile)


def saved_model_refusal():
    """None when the active backend can write a TensorFlow SavedModel (`kgen.export`); else why it cannot."""
    return impl.saved_model_refusal()


def saved_model_endpoint_options(random):
    """Keyword options of `keras.export.ExportArchive.add_endpoint` for an endpoint that draws noise (`random`)
    or not: on JAX (through jax2tf) a random endpoint is exported with `is_static=False`, so the seed state is a
    variable of the artifact; TensorFlow needs none."""
    return impl.saved_model_endpoint_options(bool(random))


def concrete_value(x):
    """`x` as a NumPy array when its value exists now, None when it is symbolic.

    Value checks (token ranges, segment order, permutations) run only when this returns an array: under
    `jax.jit`, `tf.function`, a torch trace or Keras's symbolic build (`keras.KerasTensor`) the values do not
    exist yet. NumPy arrays and Python scalars/lists come back as arrays; eager tensors are copied to the host
    (bfloat16 as float32, as `keras.ops.convert_to_numpy` does).

    Example:
        >>> import keras, kgen
        >>> kgen.backend.concrete_value(keras.ops.ones((2,)))  # array([1., 1.], dtype=float32)
        >>> kgen.backend.concrete_value(keras.KerasTensor((2,)))  # None
    """
    if x is None or isinstance(x, keras.KerasTensor):
        return None
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple, int, float, bool, np.generic)):
        return np.asarray(x)
    if isinstance(x, keras.Variable):
        x = x.value
    value = impl.concrete_value(x)
    # Only an array is a value: once, in a long TF run, a traced call gave back `{}` (not reproduced alone).
    return value if isinstance(value, np.ndarray) else None


def sync_state(model):
    """Put the values a running `fit` holds outside `model`'s variables back into them; returns `model`.

    On JAX, `fit` keeps the weights, optimizer and metric state off the Keras variables during an epoch
    (Keras's `jax_state_sync` writes them back); a callback that reads weights mid-epoch calls this first. It
    costs one pass over the variables. On TensorFlow and torch the variables are always current: a no-op.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"`model` must be a keras Model, got {type(model).__name__}")
    impl.sync_state(model)
    return model
