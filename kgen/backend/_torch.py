"""PyTorch glue: autograd with graphs kept for double backprop; compiled functions run eagerly; stateless
networks replayed from a TorchScript trace (`call_network`)."""

import functools
import warnings
import weakref

import keras
import torch

from kgen.backend import _keras_compat as compat
from kgen.backend._common import call_with_values


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


Trainer = keras.Model  # XLA compiler options are a JAX matter (see _jax.py)


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
# Only *stateless* networks are traced: no non-trainable variables. A trace loses the `torch.no_grad()` around
# Keras's `assign`, so a BatchNorm statistic or spectral-norm vector updated inside a replay would join the
# autograd graph (tests/test_traced_calls.py shows it); seed generators are non-trainable
# variables too, so dropout and noise layers are excluded by the same rule. A trace that reads a tensor as a
# Python number (TracerWarning) or does not reproduce the eager output falls back to eager calls.
_TRACES = weakref.WeakKeyDictionary()  # network -> {(training, listed, n_inputs, signature): ScriptModule | None}
_STATELESS = weakref.WeakKeyDictionary()  # network -> no non-trainable variables (decided once: a hot path)
_MAX_TRACES = 8  # per network; further input shapes run eagerly
_TRACING = {"enabled": True}


class _NetworkCall(torch.nn.Module):
    """`network(inputs, training=training)` with positional tensors, for `torch.jit.trace`; with `n_inputs`, the
    tensors after the first `n_inputs` are values for the network's trainable variables (inputs of the trace)."""

    def __init__(self, network, training, listed, n_inputs=None):
        super().__init__()
        self.network, self.training_flag, self.listed, self.n_inputs = network, training, listed, n_inputs

    def forward(self, *tensors):
        inputs = tensors if self.n_inputs is None else tensors[:self.n_inputs]
        inputs = list(inputs) if self.listed else inputs[0]
        if self.n_inputs is None:
            return self.network(inputs, training=self.training_flag)
        return call_with_values(self.network, inputs, self.training_flag, list(tensors[self.n_inputs:]))


def set_network_tracing(enabled):
    previous = _TRACING["enabled"]
    _TRACING["enabled"] = bool(enabled)
    return previous


def _reads_a_shape(warning):
    # Keras's shape helpers (standardize_shape, shape equality) call int() / bool() on traced sizes. Each
    # trace is specialised to its input shapes, so freezing a size is right; any other read is not.
    return compat.is_keras_shape_read(warning)


def _trace(network, training, listed, tensors, n_inputs=None):
    call = _NetworkCall(network, training, listed, n_inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        try:
            traced = torch.jit.trace(call, tuple(tensors), check_trace=False, strict=False)
        except Exception:  # anything the tracer cannot record: the eager call stays correct
            return None
    if any(issubclass(w.category, torch.jit.TracerWarning) and not _reads_a_shape(w) for w in caught):
        return None
    with torch.no_grad():
        expected = keras.tree.flatten(call(*tensors))
        got = keras.tree.flatten(traced(*tensors))
    if len(expected) != len(got) or not all(
            e.shape == g.shape and torch.allclose(e, g, rtol=1e-5, atol=1e-6) for e, g in zip(expected, got)):
        return None
    return traced


def static_shape(x):
    if not torch.jit.is_tracing():
        return tuple(x.shape)
    with warnings.catch_warnings():  # the trace is keyed by its input shapes (`call_network`)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return tuple(int(d) for d in x.shape)


def _stateless(network):
    if network not in _STATELESS:
        _STATELESS[network] = not network.non_trainable_variables  # a walk over every sub-layer
    return _STATELESS[network]


def call_network(network, inputs, training, trainable_values=None):
    def eager():
        if trainable_values is None:
            return network(inputs, training=training)
        return call_with_values(network, inputs, training, trainable_values)

    if not _TRACING["enabled"] or not network.built or not _stateless(network):
        return eager()
    listed = isinstance(inputs, (list, tuple))
    tensors = [keras.ops.convert_to_tensor(t) for t in (inputs if listed else [inputs])]
    n_inputs = None if trainable_values is None else len(tensors)
    key = (bool(training), listed, n_inputs, tuple((tuple(t.shape), t.dtype, t.device) for t in tensors))
    if trainable_values is not None:
        tensors += [keras.ops.convert_to_tensor(v) for v in trainable_values]
    traces = _TRACES.setdefault(network, {})
    if key not in traces:
        if len(traces) >= _MAX_TRACES:
            return eager()
        traces[key] = _trace(network, bool(training), listed, tensors, n_inputs)
    traced = traces[key]
    return eager() if traced is None else traced(*tensors)


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
