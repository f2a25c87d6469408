"""Every use of Keras's private API in kgen, in one place, each behind a version guard with a public fallback.

kgen is written against public Keras. Eight things it does faster or more robustly by reaching inside Keras 3.15;
each is used only when the installed Keras is the series they were checked on (`PRIVATE`), and otherwise falls
back to public API with the consequence stated (tests/test_keras_compat.py runs every touch point both ways):

| touch point | private (Keras 3.15) | public fallback |
|---|---|---|
| `stateless_scope()` (JAX) | `keras.src…get_stateless_scope()`: the innermost scope, Keras's own included | the innermost scope that kgen opened (`StatelessScope` below); kgen helpers called inside Keras's own stateless calls then assign their state updates directly |
| `trainer_jit(options)` (JAX) | `fit`/`evaluate`/`predict` compiled with kgen's XLA CPU options (swap the trainer module's `jit`) | Keras's own `jax.jit`: XLA's defaults (convolutions on one core, same results) |
| `mark_state_synced(model)` (JAX) | after a failed step, Keras does not sync an older state over the restored one | nothing: the restored values can be replaced by an earlier step's (the failure itself is still reported) |
| `plain_optimizer_update(...)` (torch) | the optimizer's update step without `apply`'s per-call bookkeeping (≈ 0.3 ms per update) | `optimizer.apply` (same update) |
| `sublayers(layer)` | `Layer._flatten_layers()`: every layer Keras tracks inside `layer` | a walk over `Model.layers` and the Layer-valued attributes (lists and dicts too): the same layers for kgen's networks, found by Python's reflection |
| `is_keras_shape_read(warning)` (torch) | a `TracerWarning` from Keras's backend-neutral code (sizes), a torch convolution's padding arithmetic or a constant's `convert_to_tensor` does not forbid a trace | any `TracerWarning` does: such networks run eagerly (same results, slower) |
| `SeedGenerator.next` (torch; `kgen.backend.seeds`) | a draw's seed handed to Keras's torch random ops as a NumPy pair from the host copy of the state (they read it with `int(first + second)`), the state advanced in place on the device | Keras's `next`: the state read back from the device and the counter copied to it, per draw (same draws) |
| `fix_single_example_convolutions()` (torch) | Keras's torch `conv` computes a 2-D convolution with one output channel on a CPU batch of one example as the first half of a batch of that example twice: torch's CPU kernel for that case cannot backpropagate a channels-last input (`RuntimeError: slow_conv2d: grad_weight must be contiguous`, torch 2.13); installed only where a probe of torch shows the fault | torch's error: training with a batch of one example (or a last batch of one) fails, e.g. a grayscale U-Net's output convolution |
"""

import contextlib
import functools
import linecache
import warnings

import keras

TESTED_SERIES = "3.15"
PRIVATE = keras.version().startswith(TESTED_SERIES + ".")

_SCOPES = []  # kgen's own open StatelessScopes, innermost last (the fallback of `stateless_scope`)


class StatelessScope(keras.StatelessScope):
    """`keras.StatelessScope` that `stateless_scope()` can find without private API."""

    def __enter__(self):
        scope = super().__enter__()
        _SCOPES.append(self)
        return scope

    def __exit__(self, *exc_info):
        if _SCOPES and _SCOPES[-1] is self:
            _SCOPES.pop()
        return super().__exit__(*exc_info)


def stateless_scope():
    """The innermost active `keras.StatelessScope`, or None."""
    if PRIVATE:
        from keras.src.backend.common.stateless_scope import get_stateless_scope

        return get_stateless_scope()
    return _SCOPES[-1] if _SCOPES else None


@contextlib.contextmanager
def trainer_jit(options):
    """While Keras builds fit/evaluate/predict functions on JAX, its `jit` is `jax.jit` with `options`.

    Keras's JAX trainer calls its module-level `jit` (jax.jit, or nnx.jit with Flax NNX) with the shardings of the
    active distribution; swapping that one name keeps all of Keras's logic. Left alone under NNX, with no
    options, and off the tested Keras series.
    """
    import jax

    if options is None or not PRIVATE:
        yield
        return
    from keras.src.backend.jax import trainer

    if trainer.jit is not jax.jit:
        yield
        return
    trainer.jit = functools.partial(jax.jit, compiler_options=options)
    try:
        yield
    finally:
        trainer.jit = jax.jit


def mark_state_synced(model):
    """Tell Keras's JAX trainer that the variables already hold the state to keep (after a failed step)."""
    if PRIVATE:
        model._jax_state_synced = True


def plain_optimizer_update(optimizer, grads, variables):
    """One update of `variables` by `optimizer` without `Optimizer.apply`'s per-call bookkeeping, when that is
    all `apply` would do; returns False (nothing done) when it is not, or off the tested Keras series."""
    if not PRIVATE or not hasattr(optimizer, "_backend_update_step"):
        return False
    optimizer._backend_update_step(grads, variables, optimizer.learning_rate)
    optimizer.iterations.assign_add(1)
    return True


def sublayers(layer):
    """`layer` and every layer inside it, nested ones too, each once (Keras's tracking order when private)."""
    if PRIVATE:
        return list(layer._flatten_layers())
    found, seen, stack = [], set(), [layer]
    while stack:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        children = list(current.layers) if isinstance(current, keras.Model) else []
        for value in vars(current).values():
            if isinstance(value, dict):
                value = list(value.values())
            children += [v for v in (value if isinstance(value, (list, tuple)) else [value])
                         if isinstance(v, keras.layers.Layer)]
        stack += children
    return found


def optimizer_knows(optimizer, variables):
    """Whether `optimizer` was built on `variables` (so its slots line up with them)."""
    if not PRIVATE:
        return False
    try:
        optimizer._check_variables_are_known(variables)
    except (KeyError, ValueError, AttributeError):
        return False
    return True


# Keras's backend-neutral code (ops, layers, models, backend/common) also runs under `jax.jit` and `tf.function`,
# where sizes are Python ints and data are not: any Python number it reads from a tensor is a size. Its torch
# backend is not bound by that, so only these lines of it are known to read sizes (a convolution's padding and
# grouping, a transposed convolution's crop, a split into equal sections, and torch's own split given that
# size), matched by their text: a Keras whose code differs makes such networks run eagerly instead of tracing
# wrongly.
_NEUTRAL = ("keras/src/ops/", "keras/src/layers/", "keras/src/models/", "keras/src/backend/common/")
_SHAPE_READ_LINES = {
    "keras/src/backend/torch/nn.py": ("if all(left == right for left, right in padding):",
                                      "total_padding = max(",
                                      "if in_channels % kernel_in_channels != 0:",
                                      "needs_zero_pad = any(cl < 0 or cr < 0 for cl, cr in crops)",
                                      "start = max(0, crop_left)",
                                      "end = -crop_right if crop_right > 0 else None"),
    "keras/src/backend/torch/numpy.py": ("if dim % indices_or_sections != 0:",  # ops.split into equal sections
                                         "if dim == 0 and isinstance(indices_or_sections, int):"),
    "torch/_tensor.py": ("split_size = int(split_size)",),  # torch's Tensor.split, given that size
}


def is_keras_shape_read(warning):
    """Whether a torch `TracerWarning` is harmless in a trace specialised to its input shapes: a Python number
    read by Keras's backend-neutral code (sizes, see above) or by the listed size arithmetic of its torch
    backend, or `convert_to_tensor` of a constant (`torch.as_tensor` of a NumPy array a layer holds; a value
    computed from traced data would have raised its own warning first)."""
    if not PRIVATE:
        return False
    filename = warning.filename.replace("\\", "/")
    message = str(warning.message)
    if any(part in filename for part in _NEUTRAL):
        return message.startswith("Converting a tensor to a Python")
    if filename.endswith("keras/src/backend/torch/core.py"):
        return message.startswith("torch.as_tensor results are registered as constants")
    for suffix, lines in _SHAPE_READ_LINES.items():
        if filename.endswith(suffix):
            return linecache.getline(warning.filename, warning.lineno).strip() in lines
    return False


_OWN_TRACES = []  # open `own_trace()` blocks


@contextlib.contextmanager
def own_trace():
    """Marks a `torch.jit.trace` of kgen's own, specialised to its input shapes (`fix_single_example_convolutions`
    records its fix only there, never in another capture)."""
    _OWN_TRACES.append(True)
    try:
        yield
    finally:
        _OWN_TRACES.pop()


def _torch_single_example_conv_fails():
    """Whether torch's CPU convolution cannot backpropagate what Keras hands it for a batch of one example and
    one output channel (a channels-last input and the kernel permuted from Keras's (h, w, in, out) layout)."""
    import torch

    inputs = torch.zeros(1, 2, 3, 3).contiguous(memory_format=torch.channels_last)
    kernel = torch.zeros(3, 3, 2, 1, requires_grad=True)
    try:
        torch.nn.functional.conv2d(inputs, kernel.permute(3, 2, 0, 1), padding=1).sum().backward()
    except RuntimeError as error:
        return "contiguous" in str(error)
    return False


def fix_single_example_convolutions():
    """On the torch backend, make Keras's `conv` route a CPU batch of one example with one output channel around
    torch's failing kernel (module docstring), once per process and only where torch has the fault. The
    convolution of the example twice has the same first half, and the same gradients for the kernel and the
    input (the second half's are zero). Returns whether the fix is active."""
    if not PRIVATE:
        return False
    from keras.src.backend.torch import nn

    if getattr(nn.conv, "kgen_single_example_fix", False):
        return True
    if not _torch_single_example_conv_fails():
        return False
    import torch

    stock = nn.conv

    @functools.wraps(stock)
    def conv(inputs, kernel, *args, **kwargs):
        # Not inside anyone else's capture (an ONNX export's trace, torch.export, torch.compile): those graphs keep
        # a dynamic batch, which a duplicated first example would silently cut to one. kgen's own traces are
        # specialised to their input shapes (kgen.backend.call_network), so there the fix is recorded.
        if torch.compiler.is_compiling() or (torch.jit.is_tracing() and not _OWN_TRACES):
            return stock(inputs, kernel, *args, **kwargs)
        inputs = nn.convert_to_tensor(inputs)
        # Sizes, read as Python numbers: a torch trace (kgen.backend.call_network) is specialised to its input
        # shapes, so its TracerWarning for these reads is silenced (any other still refuses the trace).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            single = (inputs.ndim == 4 and int(inputs.shape[0]) == 1 and int(kernel.shape[-1]) == 1
                      and inputs.device.type == "cpu")
        if single:
            return stock(torch.cat([inputs, inputs]), kernel, *args, **kwargs)[:1]
        return stock(inputs, kernel, *args, **kwargs)

    conv.kgen_single_example_fix = True
    conv.kgen_stock = stock
    nn.conv = conv
    return True
