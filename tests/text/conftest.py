"""Fixtures of the kgen.text tests."""

import pytest

import kgen
from text_helpers import tiny_unilm


@pytest.fixture(scope="session")
def shared_unilm():
    """One tiny UniLM for the decoding tests, so that its compiled decoding loops are reused across files."""
    kgen.set_seed(0)
    return tiny_unilm()
