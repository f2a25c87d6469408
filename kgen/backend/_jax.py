"""JAX glue: pure functions over explicit state, via Keras's StatelessScope.

JAX cannot mutate Keras variables inside a traced function, so every helper here runs the stateful kgen code
inside a `StatelessScope` that starts from the enclosing scope's values and reports what the code assigned.
Those updates (optimizer moments, BatchNorm statistics, seed-generator states, metric totals) are handed back
to the enclosing scope, or assigned when there is none. Nested scopes do not read through to their parent,
hence `_CapturingScope` copies the parent's mapping.
"""

import functools
import math
import os

import jax
import jax.numpy as jnp
import keras

from kgen.backend import _keras_compat as compat
from kgen.backend._common import plain_call
from kgen.backend._keras_compat import StatelessScope


class _CapturingScope(StatelessScope):
    """A StatelessScope that reads the enclosing scope's values and remembers which variables were updated."""

    def __init__(self, overrides=()):
        super().__init__()
        outer = compat.stateless_scope()
        if outer is not None:
            self.state_mapping = dict(outer.state_mapping)
        for variable, value in overrides:
            self.state_mapping[id(variable)] = value
        self.updated = {}

    def add_update(self, update):
        variable, _ = update
        self.updated[id(variable)] = variable
        super().add_update(update)

    def updates(self, exclude=()):
        skip = {id(v) for v in exclude}
        return {key: self.state_mapping[key] for key in self.updated if key not in skip}


def _commit(variables_by_id, values):
    """Hand updates to the enclosing scope, or assign them when running eagerly."""
    outer = compat.stateless_scope()
    for key, value in values.items():
        variable = variables_by_id[key]
        if outer is not None:
            outer.add_update((variable, value))
        else:
            variable.assign(value)


def input_gradient(fn, x):
    x = jnp.asarray(x)
    captured = {}

    def total(t):
        with _CapturingScope() as scope:
            y = fn(t)
        captured.update(scope.updated)
        return jnp.sum(y), scope.updates()

    grad, updates = jax.grad(total, has_aux=True)(x)
    _commit(captured, updates)
    return grad


def gradients(loss_fn, variables):
    variables = list(variables)
    captured = {}

    def loss_of(values):
        with _CapturingScope(zip(variables, values)) as scope:
            loss = loss_fn()
        captured.update(scope.updated)
        return loss, scope.updates(exclude=variables)

    (loss, updates), grads = jax.value_and_grad(loss_of, has_aux=True)([v.value for v in variables])
    _commit(captured, updates)
    return loss, grads


def replica_mean(loss):
    return loss


def apply_gradients(optimizer, grads, variables):
    optimizer.apply(grads, variables)


# XLA CPU (jaxlib 0.10) hands convolutions, matmuls and reductions to YNNPACK, whose convolutions, one at a time, run
# on one core: a stack of three 3x3 convolutions (8x64x64x32) takes 15.5 ms pinned to one core and 15.0 ms on two,
# where XLA's own convolutions take 20.7 and 11.1 ms (2-core AVX-512 machine, 2026-12-05; benchmarks/RESULTS.md). On
# the 2-core AVX2 machines kgen was first tested on, XLA's were 1.5-1.9x faster in use (the shipped 28x28 animal
# U-Net, batch 16: 35 -> 20 ms per call; outputs equal to 4e-7), while YNNPACK's matmuls are faster (UniLM decoding
# without cache: 2.9 s vs 3.6 s with YNNPACK off altogether). So where two or more cores are free, compiled loops and
# fit steps keep YNNPACK for matmuls and reductions only: benchmarks/bench_diffusion_sampler.py measures both
# settings, on every core and on one. KGEN_XLA_CPU_OPTIONS=default compiles with XLA's defaults instead.
CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}


@functools.cache
def _accepted(options):
    """Whether this jaxlib compiles with `options` (a tuple of pairs): the flag is experimental."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(options)).lower(jnp.zeros(())).compile()
    except Exception:  # noqa: BLE001 -- an unknown option or value (newer jaxlib): fall back to XLA's defaults
        return False
    return True


def _cpu_flags(path="/proc/cpuinfo"):
    """The x86 feature flags of this machine's first CPU (empty where /proc/cpuinfo is missing)."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _usable_cores(root="/sys/fs/cgroup", proc="/proc/self/cgroup"):
    """How many CPU cores this process may keep busy: its affinity mask where the OS has one, capped by its
    cgroup's CPU quota (a container started with `--cpus=1` sees every core of the host in its mask)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota(root, proc)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def _cgroup_cpu_quota(root, proc):
    """The CPUs per period this process's cgroup may use (quota / period), or None where none is set or readable.
    cgroup v2: `cpu.max` ("max 100000" or "150000 100000"); v1: `cpu.cfs_quota_us` (-1: none) and
    `cpu.cfs_period_us`, under the cpu controller's mount."""
    try:
        with open(proc, encoding="utf-8") as handle:
            entries = [line.rstrip("\n").split(":", 2) for line in handle if line.count(":") >= 2]
    except (OSError, UnicodeDecodeError):
        return None
    for _, controllers, path in entries:
        where = path.lstrip("/")
        if controllers == "":
            values = _read_words(os.path.join(root, where, "cpu.max"))
            quota = _ratio(values[0], values[1]) if len(values) == 2 else None
        elif "cpu" in controllers.split(","):
            quota_us = _read_words(os.path.join(root, "cpu", where, "cpu.cfs_quota_us"))
            period_us = _read_words(os.path.join(root, "cpu", where, "cpu.cfs_period_us"))
            quota = _ratio(quota_us[0], period_us[0]) if quota_us and period_us else None
        else:
            continue
        if quota is not None:
            return quota
    return None


def _ratio(quota, period):
    """quota / period for positive integers, else None ("max", -1, or anything unreadable: no quota)."""
    try:
        quota, period = int(quota), int(period)
    except (TypeError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read_words(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().split()
    except (OSError, UnicodeDecodeError):
        return []


def _options_pay_off(flags, cores):
    """Whether `CPU_COMPILER_OPTIONS` are faster than XLA's defaults on a CPU with these feature flags, given how
    many cores the process may use.

    The gain is parallelism: YNNPACK's convolutions (XLA's default) use one core, XLA's own use them all. Measured
    with benchmarks/bench_diffusion_sampler.py (JAX, shipped U-Net, DDIM 50) and bench_backend.py: on 2-core AVX2
    machines ×1.74 faster; on a 2-core AVX-512 machine with AMX ×1.15-1.29 for that loop, ×1.14-1.23 for the
    U-Net's fit step and even for the Glow and GAN fit steps (×0.90-1.10, medians 0.97 and 1.01: the runs'
    noise), while pinned to one core the defaults won for all of them (×0.85-0.97: YNNPACK's kernels are the
    faster ones). So: on x86 CPUs with AVX2 (AVX-512 included) and at least two free cores; XLA's defaults on one
    core, elsewhere, and where /proc/cpuinfo cannot be read."""
    return "avx2" in flags and cores >= 2


def compiler_options():
    """The XLA options `compile_function` uses: `CPU_COMPILER_OPTIONS` on a CPU backend whose CPU they speed up
    (`_options_pay_off`; `KGEN_XLA_CPU_OPTIONS=kgen` forces them, `=default` never uses them), else None."""
    choice = os.environ.get("KGEN_XLA_CPU_OPTIONS", "")
    if jax.default_backend() != "cpu" or choice == "default":
        return None
    if choice != "kgen" and not _options_pay_off(_cpu_flags(), _usable_cores()):
        return None
    options = tuple(sorted(CPU_COMPILER_OPTIONS.items()))
    return dict(options) if _accepted(options) else None


def _keras_jit_with_options():
    """While Keras builds fit/evaluate/predict functions, its `jit` is `jax.jit` with `compiler_options()`."""
    return compat.trainer_jit(compiler_options())


def _restoring_state_on_error(model, function, groups):
    """`function(state, iterator)` (a Keras step function) that, when it raises, puts `state` back in place.

    Keras's JAX fit/evaluate/predict take every variable's value out of the variable (`_purge_model_variables`)
    before the first step of an epoch, pass the values to the step as `state`, and put back those of the last
    step that returned (`jax_state_sync`, from `_jax_state`). When the first step raises (an input of the
    wrong shape fails while it is traced), Keras 3.15 leaves the variables without a value, or, after an
    earlier fit, with that fit's last values: every later use fails with "'NoneType' object is not callable",
    in a new model built on the same networks too. `state` holds the values the variables had.
    """
    if getattr(function, "restores_state_on_error", False):
        return function

    def call(state, iterator):
        try:
            return function(state, iterator)
        except BaseException:
            for variables, values in zip(groups(), state):
                for variable, value in zip(variables, values):
                    if not value.is_deleted():  # a buffer donated to a step that failed while running is gone
                        variable.assign(value)
            compat.mark_state_synced(model)  # Keras's own sync would put back an older step's state
            raise

    call.restores_state_on_error = True
    return call


class Trainer(keras.Model):
    """`keras.Model` whose compiled fit/evaluate/predict steps use `compiler_options()` and, when one raises,
    leave every variable as it was before that step (`_restoring_state_on_error`)."""

    def make_train_function(self, force=False):
        with _keras_jit_with_options():
            super().make_train_function(force)
        self.train_function = _restoring_state_on_error(self, self.train_function, lambda: (
            self.trainable_variables, self.non_trainable_variables, self.optimizer.variables,
            self.metrics_variables))

    def make_test_function(self, force=False):
        with _keras_jit_with_options():
            super().make_test_function(force)
        self.test_function = _restoring_state_on_error(self, self.test_function, lambda: (
            self.trainable_variables, self.non_trainable_variables, self.metrics_variables))

    def make_predict_function(self, force=False):
        with _keras_jit_with_options():
            super().make_predict_function(force)
        self.predict_function = _restoring_state_on_error(self, self.predict_function, lambda: (
            self.trainable_variables, self.non_trainable_variables))


class AdversarialTrainer(Trainer):
    """JAX `train_step(state, data)`: the whole stateful step inside one StatelessScope over fit's state."""

    def train_step(self, state, data):
        groups = (
            self.trainable_variables,
            self.non_trainable_variables,
            self.optimizer.variables,
            self.metrics_variables,
        )
        mapping = [pair for variables, values in zip(groups, state) for pair in zip(variables, values)]
        with StatelessScope(state_mapping=mapping) as scope:
            logs = self._adversarial_train_step(data)
        new_state = tuple(
            [scope.get_current_value(v) for v in variables] for variables in groups
        )
        return logs, new_state

    def test_step(self, state, data):
        groups = (self.trainable_variables, self.non_trainable_variables, self.metrics_variables)
        mapping = [pair for variables, values in zip(groups, state) for pair in zip(variables, values)]
        with StatelessScope(state_mapping=mapping) as scope:
            logs = self._adversarial_test_step(data)
        return logs, tuple([scope.get_current_value(v) for v in variables] for variables in groups)


def compile_function(fn, variables, jit_compile="auto"):
    variables = list(variables)
    if not jit_compile:
        return fn
    cache = {}
    options = compiler_options()

    def pure(values, args, static):
        with StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            out = fn(*args, **dict(static))
        return out, [scope.get_current_value(v) for v in variables]

    def call(*args, **kwargs):
        static = tuple(sorted(kwargs.items()))
        if static not in cache:
            cache[static] = jax.jit(pure, static_argnums=2, compiler_options=options)
        out, new_values = cache[static]([v.value for v in variables], args, static)
        for variable, value in zip(variables, new_values):
            variable.assign(value)
        return out

    return call


def on_accelerator():
    return jax.default_backend() != "cpu"


def num_devices():
    return len(keras.distribution.list_devices())


def data_parallel(devices):
    distribution = keras.distribution.DataParallel(devices=devices or keras.distribution.list_devices())
    return distribution.scope()


def call_network(network, inputs, training, trainable_values=None, method=None, non_trainable_values=None):
    # compiled by fit / compile_function
    return plain_call(network, inputs, training, trainable_values, method, non_trainable_values)


def set_network_tracing(enabled):
    return False


def saved_model_refusal():
    return None


def saved_model_endpoint_options(random):
    return {"is_static": not random}


def fused_move_towards(variables, targets, weight):
    return False  # the assigns are compiled with the step


def static_shape(x):
    return tuple(x.shape)


def concrete_value(x):
    # A Tracer (jit, grad, vmap, scan bodies) has no value to read; a jax.Array always has one.
    if isinstance(x, jax.core.Tracer):
        return None
    return keras.ops.convert_to_numpy(x)


def sync_state(model):
    sync = getattr(model, "jax_state_sync", None)  # JAXTrainer's: a no-op outside fit or when already synced
    if sync is not None:
        sync()


def seed_value(seed):
    """An int seed as the uint32 state of Keras's JAX generators holds it: its low 32 bits."""
    return seed if 0 <= seed < 2**32 else seed & 0xFFFFFFFF


def start_host_seed(generator, seed):
    return None  # the seed state is traced with the step: nothing to keep on the host


def next_host_seed(generator):
    return None  # Keras's own `next`
