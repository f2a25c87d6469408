"""Helpers the per-backend modules share (backend-neutral Keras code)."""


def call_with_values(network, inputs, training, trainable_values):
    """`network(inputs)` with `trainable_values` in place of its trainable weights and its live non-trainable
    ones, changing neither (`kgen.backend.call_network(..., trainable_values=...)` where it is not traced)."""
    non_trainable = [v.value for v in network.non_trainable_variables]
    output, _ = network.stateless_call(trainable_values, non_trainable, inputs, training=training)
    return output
