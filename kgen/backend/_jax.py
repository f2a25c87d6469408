"""JAX glue: pure functions over explicit state, via Keras's StatelessScope.

JAX cannot mutate Keras variables inside a traced function, so every helper here runs the stateful kgen code
inside a `StatelessScope` that starts from the enclosing scope's values and reports what the code assigned.
Those updates (optimizer moments, BatchNorm statistics, seed-generator states, metric totals) are handed back
to the enclosing scope, or assigned when there is none. Nested scopes do not read through to their parent,
hence `_CapturingScope` copies the parent's mapping.
"""

import jax
import jax.numpy as jnp
import keras
from keras.src.backend.common.stateless_scope import get_stateless_scope


class _CapturingScope(keras.StatelessScope):
    """A StatelessScope that reads the enclosing scope's values and remembers which variables were updated."""

    def __init__(self, overrides=()):
        super().__init__()
        outer = get_stateless_scope()
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
    outer = get_stateless_scope()
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


class AdversarialTrainer(keras.Model):
    """JAX `train_step(state, data)`: the whole stateful step inside one StatelessScope over fit's state."""

    def train_step(self, state, data):
        groups = (
            self.trainable_variables,
            self.non_trainable_variables,
            self.optimizer.variables,
            self.metrics_variables,
        )
        mapping = [pair for variables, values in zip(groups, state) for pair in zip(variables, values)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self._adversarial_train_step(data)
        new_state = tuple(
            [scope.get_current_value(v) for v in variables] for variables in groups
        )
        return logs, new_state


def compile_function(fn, variables, jit_compile="auto"):
    variables = list(variables)
    if not jit_compile:
        return fn
    cache = {}

    def pure(values, args, static):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            out = fn(*args, **dict(static))
        return out, [scope.get_current_value(v) for v in variables]

    def call(*args, **kwargs):
        static = tuple(sorted(kwargs.items()))
        if static not in cache:
            cache[static] = jax.jit(pure, static_argnums=2)
        out, new_values = cache[static]([v.value for v in variables], args, static)
        for variable, value in zip(variables, new_values):
            variable.assign(value)
        return out

    return call


def num_devices():
    return len(keras.distribution.list_devices())


def data_parallel(devices):
    distribution = keras.distribution.DataParallel(devices=devices or keras.distribution.list_devices())
    return distribution.scope()


def call_network(network, inputs, training):
    return network(inputs, training=training)  # compiled by fit / compile_function already


def set_network_tracing(enabled):
    return False
