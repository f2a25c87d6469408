"""`Endpoint`: one serving function of a model, what `export_endpoints()` returns (a leaf module: models import
it without importing the exporters of `kgen.export`)."""

from typing import Callable, NamedTuple

__all__ = ["Endpoint"]


class Endpoint(NamedTuple):
    """One serving function: `fn(*tensors)` with `input_signature` a list of `keras.InputSpec`.

    `random=True` marks a function that draws noise from the model's seed state (exported with that state as a
    variable of the artifact; never to ONNX).

    Example:
        >>> import keras
        >>> from kgen.endpoint import Endpoint
        >>> double = Endpoint("double", lambda x: 2 * x, [keras.InputSpec(shape=(None, 3), dtype="float32")])
        >>> double.fn(keras.ops.ones((1, 3)))  # [[2., 2., 2.]]
    """

    name: str
    fn: Callable
    input_signature: list
    random: bool = False
