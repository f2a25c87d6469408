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


def call_with_values(network, inputs, training, trainable_values, method=None):
    """`method(inputs)` (None: the network's `call`, as `stateless_call` runs it) with `trainable_values` in place
    of the network's trainable weights and its live non-trainable ones, changing neither (what
    `kgen.backend.call_network(..., trainable_values=...)` computes)."""
    non_trainable = [v.value for v in network.non_trainable_variables]
    fn = network.call if method is None else method
    return call_with_state(network, fn, trainable_values, non_trainable, inputs, training)[0]


def plain_call(network, inputs, training, trainable_values, method):
    """What `kgen.backend.call_network` computes, run as it is."""
    if trainable_values is not None:
        return call_with_values(network, inputs, training, trainable_values, method)
    return network(inputs, training=training) if method is None else method(inputs, training=training)
