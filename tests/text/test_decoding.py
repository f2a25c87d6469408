"""Cached decoding is exact: same tokens and logits (≤ 1e-4) as full recomputation, for ragged sources.

Oracles: (1) the uncached loop, which re-runs the whole model at every step; (2) the plain model call on each
finished `source + target` row, whose logits at positions n−1 … n+T−2 must be the ones each step chose from.
"""

import numpy as np
import pytest
from keras import ops

from kgen.text import BeamSampler
from text_helpers import RAGGED_SOURCES, generate_numpy as generate, packed

STEPS = 8
END_ID = 2


def _model_logits_of(model, sources, generated):
    """The model's own logits for each decoded token, from one forward pass over `source + generated`."""
    out = ops.convert_to_numpy(model(packed(sources, [list(g) for g in generated])))
    return np.stack([out[b, len(s) - 1: len(s) - 1 + STEPS] for b, s in enumerate(sources)])


def test_cached_greedy_decoding_equals_full_recomputation_on_ragged_sources(shared_unilm):
    model = shared_unilm
    cached, cached_logits = generate(model, RAGGED_SOURCES, STEPS, return_logits=True)
    full, full_logits = generate(model, RAGGED_SOURCES, STEPS, return_logits=True, use_cache=False)
    np.testing.assert_array_equal(cached, full)
    assert np.max(np.abs(cached_logits - full_logits)) <= 1e-4
    # Independent oracle: the model's forward pass on each finished row (no end token, all steps are real).
    np.testing.assert_allclose(cached_logits, _model_logits_of(model, RAGGED_SOURCES, cached), atol=1e-4, rtol=0)
    # The logits are informative (a random model far from uniform), so the comparison could fail.
    assert np.std(cached_logits) > 0.5 and len({tuple(row) for row in cached}) > 1


def _greedy(model, sources, **kwargs):
    # Always with logits, so that every test reuses the loop compiled for the first one.
    return generate(model, sources, STEPS, return_logits=True, **kwargs)[0]


def test_a_row_decodes_the_same_alone_or_in_a_ragged_batch(shared_unilm):
    batch = _greedy(shared_unilm, RAGGED_SOURCES)
    for b, source in enumerate(RAGGED_SOURCES):
        padded = np.zeros((3, 8), np.int32)  # the same compiled shape, the other rows a copy of row b
        padded[:, : len(source)] = source
        np.testing.assert_array_equal(_greedy(shared_unilm, padded)[0], batch[b])


def test_end_token_stops_a_row_and_pads_the_rest(shared_unilm):
    tokens = _greedy(shared_unilm, RAGGED_SOURCES)
    end = int(tokens[0, 2])  # pretend the third greedy token of row 0 is the end token
    stopped = _greedy(shared_unilm, RAGGED_SOURCES, end_id=end)
    for row, full in zip(stopped, tokens):
        hits = np.flatnonzero(full == end)
        if hits.size:
            np.testing.assert_array_equal(row[: hits[0] + 1], full[: hits[0] + 1])
            assert np.all(row[hits[0] + 1:] == 0)
        else:
            np.testing.assert_array_equal(row, full)


@pytest.mark.parametrize("use_cache", [True, False])
def test_beam_scores_are_the_model_log_probabilities_and_finished_beams_are_frozen(shared_unilm, use_cache):
    model = shared_unilm
    beams, scores = generate(model, RAGGED_SOURCES, STEPS, sampler=BeamSampler(3, return_all_beams=True),
                             end_id=END_ID, use_cache=use_cache)
    assert beams.shape == (3, 3, STEPS) and scores.shape == (3, 3)
    rows = [(b, k, source, beams[b, k]) for b, source in enumerate(RAGGED_SOURCES) for k in range(3)]
    lengths = []
    for _, _, _, row in rows:
        ends = np.flatnonzero(row == END_ID)
        lengths.append(ends[0] + 1 if ends.size else STEPS)
        assert np.all(row[lengths[-1]:] == 0)  # frozen after the end token
    # One forward pass over every finished beam: its summed log-probabilities are the beam's score.
    logits = ops.convert_to_numpy(model(packed([s for _, _, s, _ in rows],
                                               [list(r[:n]) for (_, _, _, r), n in zip(rows, lengths)])))
    log_probs = logits.astype(np.float64) - np.log(np.exp(logits.astype(np.float64)).sum(-1, keepdims=True))
    for r, ((b, k, source, row), n) in enumerate(zip(rows, lengths)):
        oracle = sum(log_probs[r, len(source) - 1 + t, row[t]] for t in range(n))
        assert abs(scores[b, k] - oracle) < 1e-3
    for b in range(3):
        normalized = scores[b] / np.maximum([np.sum(r != 0) for r in beams[b]], 1)
        assert np.all(np.diff(normalized) <= 1e-6)  # best first (length penalty 1)
