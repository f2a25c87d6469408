"""kgen.app.presets: the training-budget helper shared by the CLI, the examples and the benchmarks."""

import warnings

import keras
import numpy as np
import pytest

from kgen.app.presets import fit_steps


def _regression():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


@pytest.mark.parametrize("rows, batch_size, steps, expected", [(40, 16, 6, 6), (40, 16, 2, 2), (48, 16, 7, 6),
                                                                (40, 16, 100, 99)])
def test_fit_steps_reports_the_optimizer_steps_it_took(rows, batch_size, steps, expected):
    # 40 rows in batches of 16: three batches per pass, the last one partial. Passing `steps_per_epoch` with
    # several epochs made Keras run out of data every second epoch (one batch instead of two), so 6 steps were
    # reported while 5 were taken (negative control: the previous fit_steps fails the first case).
    model = _regression()
    x, y = np.zeros((rows, 2), "float32"), np.ones((rows, 1), "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Your input ran out of data" must not happen
        taken, history = fit_steps(model, x, steps, batch_size, y=y, verbose=0)
    assert taken == expected == int(model.optimizer.iterations)
    assert len(history.history["loss"]) == max(1, round(steps / -(-rows // batch_size))) if steps >= 3 else 1
