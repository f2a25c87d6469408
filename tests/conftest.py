"""One pytest process per Keras backend (`KERAS_BACKEND`); `make test` runs all three.

Tests marked `jax`, `tensorflow` or `torch` run only on that backend. Every test starts from seed 0.
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
    if wanted and BACKEND not in wanted:
        pytest.skip(f"runs on {wanted} only; backend is {BACKEND}")


@pytest.fixture(autouse=True)
def _seeded():
    kgen.utils.set_seed(0)
    yield
