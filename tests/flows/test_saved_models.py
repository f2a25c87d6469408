"""The shipped flows (saved_models/<model>_digits.keras) load with safe_mode on every backend and reproduce
the test bits/dim that `KERAS_BACKEND=jax python benchmarks/bench_flows_digits.py --save saved_models` reported."""

import os

import keras
import numpy as np
import pytest

from kgen.datasets import DIGIT_LEVELS, dequantize, load_digits
from kgen.metrics.classifiers import saved_models_dir

# Measured on JAX with dequantize(test, 17, seed=0) (the demo's noise); the benchmark's own noise seed gave
# 2.710 / 2.238 / 2.279.
EXPECTED = {"nice": 2.712, "realnvp": 2.240, "glow": 2.285}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_flow_reproduces_its_test_bits_per_dim(name):
    model = keras.saving.load_model(os.path.join(saved_models_dir(), f"{name}_digits.keras"), safe_mode=True)
    x = dequantize(load_digits("test")[0], DIGIT_LEVELS, seed=0).reshape((-1,) + model.data_shape)
    assert not model.needs_initialization()
    assert abs(model.bits_per_dim(x, DIGIT_LEVELS) - EXPECTED[name]) < 2e-3
    # And the shipped model inverts itself on real data.
    back = keras.ops.convert_to_numpy(model.decode(model.encode(x[:16])))
    np.testing.assert_allclose(back, x[:16], atol=1e-4)


def test_shipped_glow_animals_reproduces_its_test_bits_per_dim():
    """saved_models/glow_animals.keras (7 epochs on an H200, then 60 on a CPU: saved_models/glow_animals.json)
    reproduces the test bits/dim recorded next to it, on every backend, and is below the issue's 3.0 goal."""
    import json

    from kgen.datasets import ANIMAL_LEVELS, load_animals

    with open(os.path.join(saved_models_dir(), "glow_animals.json")) as f:
        recorded = json.load(f)["test_bits_per_dim"]
    model = keras.saving.load_model(os.path.join(saved_models_dir(), "glow_animals.keras"), safe_mode=True)
    x = dequantize(load_animals("test")[0], ANIMAL_LEVELS, seed=10_000)
    assert not model.needs_initialization()
    assert abs(model.bits_per_dim(x, ANIMAL_LEVELS) - recorded) < 2e-3
    assert recorded <= 3.0
