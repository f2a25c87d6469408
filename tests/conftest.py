"""One pytest process per Keras backend (`KERAS_BACKEND`); `make test` runs all three.

Tests marked `jax`, `tensorflow` or `torch` run only on that backend (`KGEN_TEST_ANY_BACKEND=1` runs them on
the current one anyway). Every test starts from seed 0.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

import kgen  # noqa: E402,F401

BACKEND = keras.backend.backend()
BACKENDS = ("jax", "tensorflow", "torch")


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {BACKEND}"


def pytest_runtest_setup(item):
    wanted = [name for name in BACKENDS if name in item.keywords]
    if wanted and os.environ.get("KGEN_TEST_ANY_BACKEND") == "1":
        return
    if wanted and BACKEND not in wanted:
        pytest.skip(f"runs on {wanted} only; backend is {BACKEND}")


@pytest.fixture(autouse=True)
def _seeded():
    kgen.utils.set_seed(0)
    yield


@pytest.fixture
def float64():
    """Run a test with float64 Keras weights and activations — TensorFlow only.

    Keras 3.15 promotes every 64-bit result type to 32 bits "to be aligned with JAX's default behaviour"
    (keras/src/backend/common/dtypes.py, BIT64_TO_BIT32_DTYPE), so on JAX and torch a float64 Dense layer
    returns float32 matmuls (measured: 1e-7 errors). Exact float64 oracles therefore run on TF; the same
    checks run in float32 with float32 tolerances on every backend.
    """
    if BACKEND != "tensorflow":
        pytest.skip("float64 through keras.ops is exact on the TensorFlow backend only (Keras 3.15 result_type)")
    previous, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(previous)
        keras.config.set_dtype_policy(policy)


@pytest.fixture
def mixed_bfloat16():
    """Run a test under the "mixed_bfloat16" policy (bf16 compute, float32 variables), then restore the policy."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
