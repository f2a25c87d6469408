"""Exponential moving average (EMA) of network weights, updated inside the compiled training step.

Diffusion models are sampled with an EMA of their weights (DDPM, Ho et al. 2020: decay 0.9999; keras.io DDIM
and DDPM examples: 0.999; Su's Keras-DDPM: 0.9999). After optimizer step k has produced weights w_k,

    ema_k = d · ema_{k−1} + (1 − d) · w_k,        ema_0 = w_0 (the weights before training).

Mechanism (why not the alternatives). Keras's own `optimizer(use_ema=True)` keeps the average inside the
optimizer: it is lost with `compile=False` reloads, has to be copied out by hand, and sharing its variables
with the model breaks JAX's buffer donation. A callback cannot see the weights inside a JAX epoch. So the
model owns the averages (this layer's non-trainable variables, saved with the model) and folds them in from
`compute_loss`, which Keras runs inside the jit-compiled step on every backend, with keras.ops only. The loss
runs before the optimizer, so a step folds in the weights of the *previous* step; a `pending` flag records
that the latest step's weights are not yet folded, and `finish` (called by `DiffusionModel.fit` at the end)
folds them. The result equals the formula above exactly, with each w_k folded once, however `fit` is split.
"""

import keras
from keras import ops

from kgen._checks import check_positive_float


@keras.saving.register_keras_serializable(package="kgen")
class ExponentialMovingAverage(keras.layers.Layer):
    """Non-trainable copies of some variables, moved towards them by `update` / `finish`.

    Args:
        decay: d in (0, 1).

    Call `track(variables)` once (it creates the averages, initialised to the variables' current values).

    Example:

    ```python
    import keras
    from kgen.diffusion import ExponentialMovingAverage

    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    ema = ExponentialMovingAverage(0.9)
    ema.track(dense.trainable_variables)     # averages = the weights now
    ema.update(dense.trainable_variables)    # start of a training step (folds nothing on the first)
    ema.finish(dense.trainable_variables)    # after training: fold in the last step's weights
    ```
    """

    def __init__(self, decay=0.999, **kwargs):
        super().__init__(**kwargs)
        self.decay = check_positive_float("decay", decay)
        if self.decay >= 1.0:
            raise ValueError(f"`decay` must be in (0, 1), got {decay}")
        self.averages = []

    def track(self, variables):
        """Create one average per variable, equal to it now, and the `pending` flag (0)."""
        if self.averages:
            raise ValueError("ExponentialMovingAverage already tracks variables")
        for i, variable in enumerate(variables):
            average = self.add_weight(shape=tuple(variable.shape), initializer="zeros", trainable=False,
                                      dtype=variable.dtype, name=f"average_{i}")
            average.assign(ops.copy(variable.value))  # a copy: JAX must not see one buffer twice
            self.averages.append(average)
        self.pending = self.add_weight(shape=(), initializer="zeros", trainable=False, name="pending")
        self.built = True

    def _fold(self, variables, pending):
        for average, variable in zip(self.averages, variables, strict=True):
            weight = ops.cast(pending, average.dtype) * (1.0 - self.decay)
            average.assign(average + weight * (ops.stop_gradient(variable.value) - average))

    def update(self, variables):
        """Start of a training step: fold in `variables` if a step has changed them since the last fold."""
        self._fold(variables, self.pending.value)
        self.pending.assign(ops.ones_like(self.pending.value))

    def finish(self, variables):
        """After training: fold in the weights of the last optimizer step (nothing if already folded)."""
        self._fold(variables, self.pending.value)
        self.pending.assign(ops.zeros_like(self.pending.value))

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {**super().get_config(), "decay": self.decay}
