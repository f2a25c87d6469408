"""PyTorch glue: autograd with graphs kept for double backprop; compiled functions run eagerly; stateless
networks replayed from a TorchScript trace (`call_network`)."""

import contextlib
import functools
import warnings
import weakref

import keras
import numpy as np
import torch

from kgen.backend import _keras_compat as compat
from kgen.backend._common import call_with_state, plain_call

compat.fix_single_example_convolutions()  # torch's CPU kernel for a batch of one (see _keras_compat)


def input_gradient(fn, x):
    x = keras.ops.convert_to_tensor(x)
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = fn(x).sum()
        (grad,) = torch.autograd.grad(y, x, create_graph=True, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def gradients(loss_fn, variables):
    variables = list(variables)
    with torch.enable_grad():
        loss = loss_fn()
        # autograd.grad, not backward(): only these variables get gradients, nothing accumulates elsewhere.
        grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
    grads = [torch.zeros_like(v.value) if g is None else g for g, v in zip(grads, variables)]
    return loss.detach(), grads


def replica_mean(loss):
    return loss


def apply_gradients(optimizer, grads, variables):
    # The update itself must not be recorded by autograd.
    with torch.no_grad():
        # What `Optimizer.apply` ends up doing when nothing else is configured, without its per-call
        # bookkeeping (name scopes, filtering, checks): ≈ 0.3 ms per update of a toy GAN's network.
        if not (_plain_update(optimizer, variables) and compat.plain_optimizer_update(optimizer, grads, variables)):
            optimizer.apply(grads, variables)


_PLAIN = weakref.WeakKeyDictionary()  # optimizer -> set of variable-id tuples checked for the direct update


def _plain_update(optimizer, variables):
    """True when `optimizer.apply(grads, variables)` reduces to its update step and the iteration count: the
    stock `apply`, built on these variables, and no clipping, weight decay, EMA, accumulation, loss scaling,
    constraints or overwrite-with-gradient variables."""
    key = tuple(id(v) for v in variables)
    checked = _PLAIN.setdefault(optimizer, set())
    if key in checked:
        return not _configured(optimizer)
    if (not optimizer.built or type(optimizer).apply is not keras.optimizers.Optimizer.apply
            or _configured(optimizer)
            or any(v.constraint is not None or getattr(v, "overwrite_with_gradient", False) for v in variables)):
        return False
    if not compat.optimizer_knows(optimizer, variables):
        return False
    checked.add(key)
    return True


def _configured(optimizer):
    return bool(optimizer.gradient_accumulation_steps or optimizer.use_ema or optimizer.clipnorm is not None
                or optimizer.clipvalue is not None or optimizer.global_clipnorm is not None
                or optimizer.weight_decay is not None or optimizer.loss_scale_factor is not None)


class Trainer(keras.Model):
    """`keras.Model` whose `compile(jit_compile=True)` steps are `torch.compile(..., dynamic=False)`.

    Keras compiles them with torch's default, shapes made dynamic after the first recompilation, and dynamo
    recompiles Keras's layer `forward` for every layer of another shape: then inductor fails on a symbolic size
    inside the network (kgen's U-Net: "cannot determine truth value of Relational: 1 < s69", torch 2.13). Each
    batch size compiles once instead. kgen leaves `jit_compile` off on torch ("auto"): on a CPU the compiled
    step is slower than the traced replays (benchmarks/RESULTS.md)."""

    def make_train_function(self, force=False):
        with _static_torch_compile():
            return super().make_train_function(force)

    def make_test_function(self, force=False):
        with _static_torch_compile():
            return super().make_test_function(force)

    def make_predict_function(self, force=False):
        with _static_torch_compile():
            return super().make_predict_function(force)


@contextlib.contextmanager
def _static_torch_compile():
    """While Keras builds its fit/evaluate/predict function, `torch.compile` (what it calls) specialises to the
    shapes it sees."""
    original = torch.compile
    torch.compile = functools.partial(original, dynamic=False)
    try:
        yield
    finally:
        torch.compile = original


class AdversarialTrainer(Trainer):
    def train_step(self, data):
        return self._adversarial_train_step(data)

    def test_step(self, data):
        return self._adversarial_test_step(data)


def fused_move_towards(variables, targets, weight):
    # Written into the variables' tensors directly, so not inside a StatelessScope (whose assigns are recorded
    # instead), nor where `value` is an autocast copy, nor across dtypes: then `move_towards` assigns one by one.
    if compat.stateless_scope() is not None or not variables:
        return False
    values = [v.value for v in variables]
    dtype = values[0].dtype
    if any(value.dtype != dtype or keras.backend.standardize_dtype(value.dtype) != v.dtype
           for value, v in zip(values, variables)):
        return False
    targets = [keras.ops.convert_to_tensor(t).detach() for t in targets]
    if any(t.dtype != dtype or t.shape != value.shape for t, value in zip(targets, values)):
        return False
    with torch.no_grad():
        steps = torch._foreach_sub(targets, values)
        torch._foreach_mul_(steps, keras.ops.convert_to_tensor(weight).to(dtype))
        torch._foreach_add_(values, steps)
    return True


def compile_function(fn, variables, jit_compile="auto"):
    # torch.compile is slower than eager for these small loops on CPU (keras#21851); eager without autograd.
    @functools.wraps(fn)
    def call(*args, **kwargs):
        with torch.no_grad():
            return fn(*args, **kwargs)

    return call


# kgen.backend.SeedGenerator on torch: the seed state also in host memory. Keras's torch random ops take a draw's
# seed with `int(first + second)` (a device read) and advance the state by a counter converted from NumPy (a copy
# to the device); checked on Keras 3.15 (compat.PRIVATE). generator -> (host state, (id, version) of the variable's
# tensor after kgen's last write): a write made elsewhere changes the version, and the state is read again once.
_HOST_SEEDS = weakref.WeakKeyDictionary()
_SEED_STEPS = {}  # (dtype, device) -> the tensor [0, 1], made once per device


def _seed_tensor(generator):
    value = generator.state.value
    if (not compat.PRIVATE or compat.stateless_scope() is not None or torch.jit.is_tracing()
            or torch.compiler.is_compiling() or not isinstance(value, torch.Tensor) or value.is_meta):
        return None
    return value


def seed_value(seed):
    """An int seed as the int32 state of Keras's torch generators holds it: its low 32 bits, read as signed (what
    Keras's `seed=int` path does, so `SeedGenerator(seed)` draws as `seed=seed` does for any seed)."""
    return seed if -2**31 <= seed < 2**31 else ((seed & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000


def start_host_seed(generator, seed):
    value = _seed_tensor(generator)
    if value is not None and isinstance(seed, int):  # `seed_value(seed)`: what the variable was given
        _HOST_SEEDS[generator] = (np.array([seed, 0], np.int64), (id(value), value._version))


def next_host_seed(generator):
    """The seed of one draw (a NumPy pair, as Keras's torch ops read it), the variable advanced on its device;
    None where Keras's own `next` must run (stateless scopes, traces, the meta device, other Keras series)."""
    value = _seed_tensor(generator)
    if value is None:
        return None
    host, seen = _HOST_SEEDS.get(generator, (None, None))
    if seen != (id(value), value._version):  # first draw, or written elsewhere: read it once
        host = keras.ops.convert_to_numpy(value).astype(np.int64)
    key = (value.dtype, value.device)
    if key not in _SEED_STEPS:
        _SEED_STEPS[key] = torch.tensor([0, 1], dtype=value.dtype, device=value.device)
    with torch.no_grad():
        value.add_(_SEED_STEPS[key])  # in place: a new version, on the device
    _HOST_SEEDS[generator] = (host + np.array([0, 1], np.int64), (id(value), value._version))
    return host


def on_accelerator():
    return torch.cuda.is_available()


def num_devices():
    return torch.cuda.device_count() or 1


def data_parallel(devices):
    raise ValueError("kgen.distribute.data_parallel needs the JAX or TensorFlow backend: Keras 3.15 has no "
                     "distribution support for torch (wrap a custom loop in torch DistributedDataParallel)")


# ---------------------------------------------------------------- traced network calls
# Keras-on-torch spends most of a small network's call in Python: Layer.__call__ bookkeeping, argument binding,
# dtype checks and the functional graph walk (≈ 70 % of a toy GAN step, 3× its arithmetic). A TorchScript trace
# records the aten ops of one call and replays them with the same Parameters, so autograd, double backprop
# (gradient penalties) and in-place optimizer updates all act on the Keras variables.
#
# A network with state (BatchNorm statistics, spectral-norm vectors: non-trainable variables) is traced as a
# function, `stateless_call(live weights, state) -> (output, new state)`: the state goes in and out of the trace as
# tensors and is written back after the replay, detached, as Keras's eager `assign` does under `torch.no_grad()`.
# (Traced as a plain call instead, the assign inside would lose that `no_grad` and pull the statistics into the
# autograd graph: tests/test_traced_calls.py shows it.) Seed generators are state too, but a dropout or noise layer
# reads its seed as a Python number: such traces are refused, like any trace that reads a tensor as a Python
# number (TracerWarning) or does not reproduce the eager output, and the network runs eagerly.
# network -> {(training, listed, n_inputs, signature, method): (trace, the state variables it updates) | None}
_TRACES = weakref.WeakKeyDictionary()
_STATE = weakref.WeakKeyDictionary()  # network -> its non-trainable variables (listed once: a walk per call)
_MAX_TRACES = 8  # per network; further input shapes run eagerly
_TRACING = {"enabled": True}


class _NetworkCall(torch.nn.Module):
    """One network call with positional tensors, for `torch.jit.trace`: the first `n_inputs` tensors are the
    inputs; with `values`, the next ones stand for the trainable variables (else the live Parameters are used);
    the last `n_state` are the non-trainable variables, and then the output is `(output, new state)`. `method`:
    the network's method to call (None: the network itself)."""

    def __init__(self, network, training, listed, n_inputs, values, n_state, method=None):
        super().__init__()
        self.network, self.training_flag, self.listed = network, training, listed
        self.n_inputs, self.values, self.n_state = n_inputs, values, n_state
        self.method_name = None if method is None else method.__name__

    def forward(self, *tensors):
        inputs = tensors[:self.n_inputs]
        inputs = list(inputs) if self.listed else inputs[0]
        method = None if self.method_name is None else getattr(self.network, self.method_name)
        if not self.values and not self.n_state:
            return plain_call(self.network, inputs, self.training_flag, None, method)
        rest = tensors[self.n_inputs:len(tensors) - self.n_state]
        trainable = list(rest) if self.values else [v.value for v in self.network.trainable_variables]
        state = list(tensors[len(tensors) - self.n_state:])
        # What the eager call runs: the method; else with given weights `call` (as `stateless_call` does), and
        # the network itself (Layer.__call__) for a live call.
        fn = method or (self.network.call if self.values else self.network)
        output, new_state, self.updated = call_with_state(self.network, fn, trainable, state, inputs,
                                                          self.training_flag)
        # Only the state the call assigned goes out (and is written back): a value the graph still needs for
        # backprop (a flow's fixed permutation, say) must not be overwritten in place, even by itself.
        return (output, tuple(new_state[i] for i in self.updated)) if self.n_state else output


def set_network_tracing(enabled):
    previous = _TRACING["enabled"]
    _TRACING["enabled"] = bool(enabled)
    return previous


def _reads_a_shape(warning):
    # Keras's shape helpers (standardize_shape, shape equality) call int() / bool() on traced sizes. Each
    # trace is specialised to its input shapes, so freezing a size is right; any other read is not.
    return compat.is_keras_shape_read(warning)


def _trace(call, tensors):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        try:
            with compat.own_trace():
                traced = torch.jit.trace(call, tuple(tensors), check_trace=False, strict=False)
        except Exception:  # anything the tracer cannot record: the eager call stays correct
            return None
    if any(issubclass(w.category, torch.jit.TracerWarning) and not _reads_a_shape(w) for w in caught):
        return None
    # The eager call and the replay must agree on these inputs and on perturbed ones (a Python number read from
    # the data and frozen into the trace would show there). Neither changes a variable: the network is
    # stateless, or its state is passed in and out. The noise comes from a generator of its own, so that
    # tracing leaves torch's global random stream where it was.
    generator = torch.Generator().manual_seed(0)
    perturbed = [t + 0.5 * torch.randn(t.shape, generator=generator).to(t.device, t.dtype) * (t.std() + 1.0)
                 if i < call.n_inputs and t.is_floating_point() and t.numel() > 1 else t
                 for i, t in enumerate(tensors)]
    with torch.no_grad():
        for args in (tensors, perturbed):
            expected = keras.tree.flatten(call(*args))
            got = keras.tree.flatten(traced(*args))
            if len(expected) != len(got) or not all(
                    e.shape == g.shape and torch.allclose(e, g, rtol=1e-5, atol=1e-5, equal_nan=True)
                    for e, g in zip(expected, got)):
                return None
    return traced


def static_shape(x):
    if not torch.jit.is_tracing():
        return tuple(x.shape)
    with warnings.catch_warnings():  # the trace is keyed by its input shapes (`call_network`)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return tuple(int(d) for d in x.shape)


def _state(network):
    if network not in _STATE:
        _STATE[network] = list(network.non_trainable_variables)  # a walk over every sub-layer
    return _STATE[network]


def call_network(network, inputs, training, trainable_values=None, method=None, non_trainable_values=None):
    # Inside a StatelessScope the variables' values are the scope's, which a replay would not read; inside a
    # trace (a network called by a traced one) or a torch.compile / torch.export capture, the outer one records
    # the call.
    if (not _TRACING["enabled"] or not network.built or compat.stateless_scope() is not None
            or torch.jit.is_tracing() or torch.compiler.is_compiling()):
        return plain_call(network, inputs, training, trainable_values, method, non_trainable_values)
    state = _state(network)
    listed = isinstance(inputs, (list, tuple))
    tensors = [keras.ops.convert_to_tensor(t) for t in (inputs if listed else [inputs])]
    n_inputs, values = len(tensors), trainable_values is not None
    key = (bool(training), listed, n_inputs if values else None,
           tuple((tuple(t.shape), t.dtype, t.device) for t in tensors), None if method is None else method.__name__)
    if values:
        tensors += [keras.ops.convert_to_tensor(v) for v in trainable_values]
    if non_trainable_values is None:
        tensors += [v.value for v in state]
    else:  # the same trace: the state is an input of it either way
        tensors += [keras.ops.convert_to_tensor(v) for v in non_trainable_values]
    traces = _TRACES.setdefault(network, {})
    if key not in traces:
        if len(traces) >= _MAX_TRACES:
            return plain_call(network, inputs, training, trainable_values, method, non_trainable_values)
        call = _NetworkCall(network, bool(training), listed, n_inputs, values, len(state), method)
        traced = _trace(call, tensors)
        traces[key] = None if traced is None else (traced, [state[i] for i in getattr(call, "updated", [])])
    if traces[key] is None:
        return plain_call(network, inputs, training, trainable_values, method, non_trainable_values)
    traced, updated = traces[key]
    if not state:
        return traced(*tensors)
    output, new_state = traced(*tensors)
    if updated and not values:  # a live call updates the state (one with given weights, like stateless_call, not)
        with torch.no_grad():
            torch._foreach_copy_([v.value for v in updated], [t.detach() for t in new_state])
    return output


def saved_model_refusal():
    return ("the torch backend cannot write a SavedModel in Keras 3.15 (it needs torch-xla, which has no wheel "
            "for this torch)")


def saved_model_endpoint_options(random):
    return {}


def concrete_value(x):
    # Meta and fake tensors (torch.export, shape inference) have no data; a torch.jit / torch.compile trace
    # would bake the value read now into the graph as a constant.
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return None
    if isinstance(x, torch.Tensor) and (x.is_meta or isinstance(x, torch._subclasses.fake_tensor.FakeTensor)):
        return None
    return keras.ops.convert_to_numpy(x)


def sync_state(model):
    return None  # the variables hold the current values at every step
