"""The shipped toy UniLMs (saved_models/unilm_*.keras, trained on JAX by examples/unilm_toy.py) load with
safe_mode on every backend and still solve their task on held-out sources with cached greedy decoding."""

import os

import keras
import pytest

import kgen.text  # noqa: F401  (registers UniLM for load_model until kgen/__init__ imports it)
from kgen.datasets.text import SEP_ID, exact_match, toy_seq2seq
from kgen.metrics.classifiers import saved_models_dir

# Exact match on these 200 held-out sources, measured on JAX after training.
EXPECTED = {"reverse": 1.0, "sort": 0.99}


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_shipped_unilm_solves_its_task_on_held_out_sources(task):
    path = os.path.join(saved_models_dir(), f"unilm_{task}.keras")
    assert os.path.getsize(path) < 2e6
    model = keras.saving.load_model(path, safe_mode=True)
    test = toy_seq2seq(task, 200, split="test", seed=1)
    generated = keras.ops.convert_to_numpy(model.generate(test["source_ids"], test["target_ids"].shape[1],
                                                          end_id=SEP_ID))
    assert exact_match(generated, test["target_ids"]) >= EXPECTED[task]
