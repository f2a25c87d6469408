"""Helpers the per-backend modules share (backend-neutral Keras code)."""

import keras


def call_with_state(network, method, trainable_values, non_trainable_values, inputs, training):
    """`method(inputs, training=training)` (None: the network's own call) with the network's variables read from
    the given values; returns `(output, new non-trainable values)` and changes no variable. Keras's
    `stateless_call`, for any method of the network."""
    if method is None:
        return network.stateless_call(trainable_values, non_trainable_values, inputs, training=training)
    state = network.non_trainable_variables
    mapping = list(zip(network.trainable_variables, trainable_values)) + list(zip(state, non_trainable_values))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        output = method(inputs, training=training)
    new = [scope.get_current_value(v) for v in state]
    return output, [value if n is None else n for n, value in zip(new, non_trainable_values)]


def call_with_values(network, inputs, training, trainable_values, method=None):
    """`method(inputs)` (None: `network(inputs)`) with `trainable_values` in place of the network's trainable
    weights and its live non-trainable ones, changing neither (`kgen.backend.call_network(...,
    trainable_values=...)` where it is not traced)."""
    non_trainable = [v.value for v in network.non_trainable_variables]
    output, _ = call_with_state(network, method, trainable_values, non_trainable, inputs, training)
    return output


def plain_call(network, inputs, training, trainable_values, method):
    """What `kgen.backend.call_network` computes, run as it is."""
    if trainable_values is not None:
        return call_with_values(network, inputs, training, trainable_values, method)
    return network(inputs, training=training) if method is None else method(inputs, training=training)
