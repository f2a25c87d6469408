"""Keras callbacks shared by every family."""

import os
import threading

import keras
import numpy as np
from keras import ops

from kgen._checks import check_int
from kgen.base import check_value_range
from kgen.images import save_grid


@keras.saving.register_keras_serializable(package="kgen")
class SampleGrid(keras.callbacks.Callback):
    """Save a PNG grid of `model.sample(n, seed=seed)` at the end of every `every` epochs.

    Files are `<directory>/<prefix>_epoch<NNN>.png`. The model must follow kgen's protocol (kgen.base):
    `sample(n, seed=...)` returning images `(n, H, W, C)`, and the grid maps the model's `value_range` to
    black..white unless `value_range` is given here (a model whose range is None is scaled by the grid's own
    min and max). `seed` (default 0) draws the same latents every epoch, so the grids show training progress
    rather than new draws; None draws afresh from the model's generator.

    Example:
        >>> x = np.random.default_rng(0).uniform(size=(128, 4, 4, 1)).astype("float32")
        >>> model = kgen.flows.RealNVP((4, 4, 1), scales=1, filters=8)
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> grid = kgen.callbacks.SampleGrid("runs/realnvp", n=16)
        >>> history = model.fit(x, epochs=2, batch_size=64, verbose=0, callbacks=[grid])
        >>> grid.paths      # ['runs/realnvp/samples_epoch001.png', 'runs/realnvp/samples_epoch002.png']
    """

    def __init__(self, directory, n=64, every=1, prefix="samples", value_range=None, seed=0):
        super().__init__()
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"`n` must be a positive int, got {n!r}")
        if not isinstance(every, int) or every <= 0:
            raise ValueError(f"`every` must be a positive int, got {every!r}")
        self.directory = directory
        self.n = n
        self.every = every
        self.prefix = prefix
        self.value_range = check_value_range(value_range)
        self.seed = None if seed is None else check_int("seed", seed, 0)
        self.paths = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        if not hasattr(self.model, "sample"):
            raise TypeError(f"SampleGrid needs a model with sample(n); {type(self.model).__name__} has none")
        images = ops.convert_to_numpy(self.model.sample(self.n, seed=self.seed))
        value_range = self.value_range or getattr(self.model, "value_range", None)  # None: the grid's own range
        path = os.path.join(self.directory, f"{self.prefix}_epoch{epoch + 1:03d}.png")
        self.paths.append(save_grid(path, images, value_range=value_range))

    def get_config(self):
        return {"directory": self.directory, "n": self.n, "every": self.every, "prefix": self.prefix,
                "value_range": None if self.value_range is None else list(self.value_range), "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


_STOPPING = threading.Lock()  # StopOnNaN._stop's check-and-set (module-level: callbacks stay deep-copyable)


@keras.saving.register_keras_serializable(package="kgen")
class StopOnNaN(keras.callbacks.Callback):
    """Stop training at the first NaN or infinite loss and put back the weights (and optimizer state) of the best
    finished epoch.

    Like `keras.callbacks.TerminateOnNaN`, but the model is not left with the weights that produced the
    NaN: at the end of every epoch the weights are kept if the epoch's mean loss is the best so far, and
    when a batch loss is not finite training stops, a message names the epoch and batch, and the kept
    weights are restored when training ends (`stopped_on_nan` is then True). If no epoch has finished, the
    kept weights are those training started from, and the message says so.

    Reading a loss is a device-to-host copy that waits for the step: on a GPU/TPU the loss is read every
    `check_every` batches (default 50 there, 1 on a CPU). Keras logs the epoch's running mean, which stays NaN
    once a batch was NaN, so a NaN is still caught, at most `check_every − 1` batches late. Reading every k > 1
    batches the callback is `async_safe`: on JAX and torch Keras then runs the batch-end callbacks (and its own
    conversion of every batch's logs to Python floats) in a thread of its own, so the training loop never waits
    for a step, and the stop comes a few batches after the check, at the latest at the epoch's end. Keras keeps
    that thread only if every batch-end callback of the `fit` is async-safe (its `BackupAndRestore` and
    `ModelCheckpoint` are not). Checking every batch, the check is in the training loop and stops at that batch.

    Example:
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
        >>> stop = kgen.callbacks.StopOnNaN()
        >>> x = np.array([[1.0], [1e30]], "float32")      # the second batch overflows the loss
        >>> history = model.fit(x, x, batch_size=1, epochs=3, verbose=0, callbacks=[stop])
        >>> stop.stopped_on_nan       # True: the weights training started from are back
    """

    def __init__(self, monitor="loss", check_every=None):
        super().__init__()
        self.monitor = monitor
        if check_every is not None and (isinstance(check_every, bool) or not isinstance(check_every, int)
                                        or check_every < 1):
            raise ValueError(f"`check_every` must be a positive int or None, got {check_every!r}")
        self.check_every = check_every
        self._every = None  # resolved when `fit` starts (`_period`)
        self._fitting = None
        self.best, self.best_weights, self.stopped_on_nan = np.inf, None, False
        self._epoch = 0

    def set_model(self, model):
        super().set_model(model)
        # What `_stop` flags. Not through `self.model`: on JAX that property syncs the training state into the
        # variables, which from Keras's callback thread races the training loop (buffers donated mid-sync).
        self._fitting = model

    def on_train_begin(self, logs=None):
        # Every fit starts afresh (as Keras's EarlyStopping does): a NaN in its first epoch puts back the weights
        # this fit started from, never those kept by an earlier fit with the same callback.
        self.best, self.stopped_on_nan = np.inf, False
        self.best_weights = self._snapshot()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _period(self):
        if self._every is None:  # resolved when `fit` starts (the backend's device is known by then)
            from kgen.backend import on_accelerator

            self._every = self.check_every or (50 if on_accelerator() else 1)
        return self._every

    @property
    def async_safe(self):
        # Read by Keras when `fit` builds its callback list: a sparse check may run in Keras's callback thread.
        return self._period() > 1

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self._period():
            return
        value = (logs or {}).get(self.monitor)
        if value is not None and not np.isfinite(float(value)):
            self._stop(value, f"batch {batch + 1}" if self._every == 1 else f"by batch {batch + 1}")

    def _stop(self, value, where):
        with _STOPPING:  # in Keras's callback threads two later checks can both see the NaN mean
            if self.stopped_on_nan:
                return
            self.stopped_on_nan = True
        self._fitting.stop_training = True
        if np.isfinite(self.best):
            restoring = f"the weights of the best finished epoch ({self.monitor} {self.best:.6g})"
        else:
            restoring = "the weights training started from (no epoch has finished)"
        print(f"kgen: {self.monitor} is {float(value)} at epoch {self._epoch + 1}, {where}: training "
              f"stopped; restoring {restoring}", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if self.stopped_on_nan or value is None:
            return
        if not np.isfinite(float(value)):  # a NaN in the batches after the last check
            self._stop(value, "end of the epoch")
        elif float(value) < self.best:
            self.best = float(value)
            self.best_weights = self._snapshot()

    def _optimizer_variables(self):
        optimizers = [getattr(self.model, "optimizer", None)]
        optimizers += list(getattr(self.model, "network_optimizers", {}).values())  # kgen's adversarial models
        found, seen = [], set()
        for optimizer in optimizers:
            for variable in getattr(optimizer, "variables", None) or []:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    found.append(variable)
        return found

    def _snapshot(self):
        """(variable, value) pairs of the weights and the optimizers' state (moments a NaN step has poisoned)."""
        return [(v, np.array(ops.convert_to_numpy(v))) for v in list(self.model.weights) + self._optimizer_variables()]

    def on_train_end(self, logs=None):
        if self.stopped_on_nan and self.best_weights is not None:
            kept = {id(variable) for variable, _ in self.best_weights}
            for variable, value in self.best_weights:
                variable.assign(value)
            for variable in self._optimizer_variables():  # created after the snapshot: back to a fresh state
                if id(variable) not in kept:
                    variable.assign(np.zeros(tuple(variable.shape), dtype=variable.dtype))

    def get_config(self):
        return {"monitor": self.monitor, "check_every": self.check_every}
