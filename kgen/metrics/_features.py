"""Feature-model plumbing shared by the sample-based Keras metrics (private).

A *feature model* maps a batch of inputs to a (batch, d) feature matrix: a Keras model (e.g. an Inception
or a small trained classifier), any callable on tensors, or `None` for the identity (the inputs already are
features; each example is flattened to a row).
"""

import keras

from kgen._checks import check_int


def check_feature_model(feature_model):
    """Raise TypeError unless `feature_model` is None or callable."""
    if feature_model is not None and not callable(feature_model):
        raise TypeError(f"`feature_model` must be None or a callable (e.g. a keras.Model), got {feature_model!r}")
    return feature_model


def infer_feature_dim(feature_model, feature_dim, required):
    """Resolve the feature dimension from the explicit `feature_dim` or the model's `output_shape[-1]`.

    Returns an int, or None when neither gives it and `required` is False. Raises ValueError when the
    two disagree, or when neither gives it and `required` is True.
    """
    if feature_dim is not None:
        feature_dim = check_int("feature_dim", feature_dim, 1)
    inferred = None
    if feature_model is not None:
        try:
            shape = feature_model.output_shape
        except (AttributeError, ValueError, RuntimeError):  # unbuilt or multi-output models, plain callables
            shape = None
        if isinstance(shape, (tuple, list)) and len(shape) >= 2 and isinstance(shape[-1], int):
            if all(isinstance(s, int) for s in shape[1:]):
                inferred = 1
                for s in shape[1:]:
                    inferred *= s
    if feature_dim is not None and inferred is not None and feature_dim != inferred:
        raise ValueError(
            f"`feature_dim`={feature_dim} disagrees with the feature model's output_shape "
            f"{feature_model.output_shape} (flattened size {inferred})"
        )
    resolved = feature_dim if feature_dim is not None else inferred
    if resolved is None and required:
        raise ValueError(
            "`feature_dim` is required: pass `feature_dim=d` (the number of features per example after "
            "flattening) or a built Keras model as `feature_model` whose `output_shape` gives it"
        )
    return resolved


def compute_features(feature_model, inputs, name, feature_dim=None):
    """Apply the feature model (or identity) and return a float32 (batch, d) tensor.

    Checks the statically known shape against `feature_dim` and raises ValueError naming `name`.
    """
    x = keras.ops.convert_to_tensor(inputs)
    if len(x.shape) < 1:
        raise ValueError(f"`{name}` must have a leading batch axis, got a scalar")
    if feature_model is not None:
        if isinstance(feature_model, keras.Layer):
            x = feature_model(x, training=False)
        else:
            x = feature_model(x)
        x = keras.ops.convert_to_tensor(x)
        if len(x.shape) < 1:
            raise ValueError(f"the feature model returned a scalar for `{name}`; it must return (batch, d)")
    x = keras.ops.cast(x, "float32")
    if len(x.shape) == 1:
        x = keras.ops.expand_dims(x, -1)
    elif len(x.shape) > 2:
        x = keras.ops.reshape(x, (-1, _static_size(x.shape[1:], name)))
    if x.shape[0] is not None and x.shape[0] < 1:
        raise ValueError(f"`{name}` is an empty batch")
    d = x.shape[-1]
    if feature_dim is not None and d is not None and d != feature_dim:
        raise ValueError(f"`{name}` gives {d} features per example, but the metric was built for {feature_dim}")
    return x


def _static_size(shape, name):
    size = 1
    for s in shape:
        if s is None:
            raise ValueError(f"`{name}` needs known non-batch dimensions to be flattened, got shape {shape}")
        size *= s
    return size


def serialize_feature_model(feature_model):
    """Config entry for the feature model: None for the identity, else Keras' serialization of it.

    Only the architecture of a Keras model is serialized, not its weights.
    """
    if feature_model is None:
        return None
    return keras.saving.serialize_keras_object(feature_model)


def deserialize_feature_model(config):
    """Inverse of `serialize_feature_model`; passes live callables through unchanged."""
    if config is None or callable(config):
        return config
    return keras.saving.deserialize_keras_object(config)
