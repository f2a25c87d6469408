"""Keras callbacks shared by every family."""

import os

import keras
from keras import ops

from kgen.images import save_grid


@keras.saving.register_keras_serializable(package="kgen")
class SampleGrid(keras.callbacks.Callback):
    """Save a PNG grid of `model.sample(n)` at the end of every `every` epochs.

    Files are `<directory>/<prefix>_epoch<NNN>.png`. The model must have `sample(n)` returning images
    `(n, H, W, C)` with values in `value_range`.

    Example:
        >>> model.fit(x, epochs=10, callbacks=[kgen.callbacks.SampleGrid("runs/glow", n=64)])
    """

    def __init__(self, directory, n=64, every=1, prefix="samples", value_range=(0.0, 1.0)):
        super().__init__()
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"`n` must be a positive int, got {n!r}")
        if not isinstance(every, int) or every <= 0:
            raise ValueError(f"`every` must be a positive int, got {every!r}")
        self.directory = directory
        self.n = n
        self.every = every
        self.prefix = prefix
        self.value_range = tuple(value_range)
        self.paths = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        if not hasattr(self.model, "sample"):
            raise TypeError(f"SampleGrid needs a model with sample(n); {type(self.model).__name__} has none")
        images = ops.convert_to_numpy(self.model.sample(self.n))
        path = os.path.join(self.directory, f"{self.prefix}_epoch{epoch + 1:03d}.png")
        self.paths.append(save_grid(path, images, value_range=self.value_range))

    def get_config(self):
        return {"directory": self.directory, "n": self.n, "every": self.every, "prefix": self.prefix,
                "value_range": list(self.value_range)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
