"""Which thread Keras runs the batch-end callbacks in: `from callback_threads import ThreadRecorder` (pytest puts
tests/ on sys.path for tests/conftest.py)."""

import threading

import keras


class ThreadRecorder(keras.callbacks.Callback):
    """Records, per batch, whether Keras ran the batch-end callbacks in the training thread. Async-safe itself, so
    it leaves Keras's choice (its callback thread or the training thread) to the other callbacks of the `fit`."""

    async_safe = True

    def __init__(self):
        super().__init__()
        self.batches, self.in_training_thread = [], set()

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)
        self.in_training_thread.add(threading.current_thread() is threading.main_thread())
