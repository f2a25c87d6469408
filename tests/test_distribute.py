"""Data-parallel training on 4 virtual CPU devices, each run in its own process (tests/distributed_worker.py)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kgen

BACKEND = keras.backend.backend()
WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")


def _run(devices):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    out = subprocess.run([sys.executable, WORKER, BACKEND, str(devices)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def one_and_four():
    if BACKEND == "torch":
        pytest.skip("no data parallelism on torch (see test_torch_refuses_data_parallel)")
    return _run(1), _run(4)


@pytest.mark.jax
@pytest.mark.tensorflow
@pytest.mark.parametrize("family", ["flow", "gan"])
def test_four_devices_train_like_one(one_and_four, family):
    one, four = one_and_four
    assert one["devices"] == 1 and four["devices"] == 4
    np.testing.assert_allclose(four[f"{family}_loss"], one[f"{family}_loss"], rtol=1e-5)
    np.testing.assert_allclose(four[f"{family}_weights"], one[f"{family}_weights"], rtol=1e-5, atol=1e-6)


@pytest.mark.jax
@pytest.mark.tensorflow
def test_the_batch_is_really_split(one_and_four):
    one, four = one_and_four
    if BACKEND == "tensorflow":
        assert four["replicas"] == 4
        assert set(four["traced_batch"]) == {8}  # each replica's step sees 32 / 4 examples
        assert set(one["traced_batch"]) == {32}
    else:
        assert four["batch_axis_devices"] == 4  # the batch axis is sharded over the 4 devices
        assert four["weight_devices"] == 4       # and each holds a replica of the weights


@pytest.mark.torch
def test_torch_refuses_data_parallel():
    with pytest.raises(ValueError, match="JAX or TensorFlow backend"):
        with kgen.distribute.data_parallel():
            pass


def test_empty_device_list_is_refused():
    with pytest.raises(ValueError, match="`devices`"):
        with kgen.distribute.data_parallel(devices=[]):
            pass
