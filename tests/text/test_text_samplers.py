"""Samplers: greedy identities, filtering oracles, seeded reproducibility, Gumbel-max frequencies."""

import numpy as np
import pytest
from keras import ops

from kgen.text import BeamSampler, RandomSampler, TopKSampler, TopPSampler
from text_helpers import RAGGED_SOURCES, generate_numpy as generate

STEPS = 8
LOGITS = np.array([[2.0, 1.0, 0.5, 0.0, -1.0], [0.0, 3.0, 0.1, 2.9, -2.0]], np.float32)


def test_beam_of_one_equals_greedy_equals_top_k_of_one_equals_tiny_top_p(shared_unilm):
    greedy = generate(shared_unilm, RAGGED_SOURCES, STEPS, return_logits=True)[0]
    np.testing.assert_array_equal(generate(shared_unilm, RAGGED_SOURCES, STEPS, sampler=BeamSampler(1)), greedy)
    np.testing.assert_array_equal(generate(shared_unilm, RAGGED_SOURCES, STEPS, sampler=TopKSampler(1, seed=3)), greedy)
    np.testing.assert_array_equal(
        generate(shared_unilm, RAGGED_SOURCES, STEPS, sampler=TopPSampler(1e-6, seed=3)), greedy)


def test_seeded_sampling_is_reproducible(shared_unilm):
    def draw(seed):
        return generate(shared_unilm, RAGGED_SOURCES, STEPS, sampler=TopKSampler(k=6, temperature=2.0, seed=seed))

    first = draw(7)
    np.testing.assert_array_equal(draw(7), first)
    assert not np.array_equal(draw(8), first)  # negative control: another seed draws other tokens


def test_top_k_keeps_exactly_the_k_largest_logits():
    kept = ops.convert_to_numpy(TopKSampler(k=2).filter_logits(ops.convert_to_tensor(LOGITS))) > -1e8
    np.testing.assert_array_equal(kept, np.argsort(-LOGITS, axis=1).argsort(axis=1) < 2)


@pytest.mark.parametrize("p", [0.3, 0.6, 0.9, 0.999])
def test_top_p_keeps_the_smallest_prefix_reaching_p(p):
    kept = ops.convert_to_numpy(TopPSampler(p=p).filter_logits(ops.convert_to_tensor(LOGITS))) > -1e8
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    for row, prob in zip(kept, probs):
        order = np.argsort(-prob)
        size = int(np.searchsorted(np.cumsum(prob[order]), p) + 1)  # first prefix whose mass reaches p
        np.testing.assert_array_equal(np.flatnonzero(row), np.sort(order[:size]))


@pytest.mark.jax
def test_gumbel_max_draws_match_the_softmax_probabilities():
    sampler = RandomSampler(temperature=1.5, seed=0)
    logits = ops.convert_to_tensor(np.repeat(LOGITS[:1], 20_000, axis=0))
    noise = sampler.draw_noise(1, 20_000, LOGITS.shape[1])[0]
    counts = np.bincount(ops.convert_to_numpy(sampler.get_next_token(logits, noise)), minlength=5) / 20_000
    expected = np.exp(LOGITS[0] / 1.5) / np.exp(LOGITS[0] / 1.5).sum()
    assert np.max(np.abs(counts - expected)) < 0.01  # 3.5 standard errors at n = 20,000
    # Negative control: ignoring the temperature gives other frequencies.
    wrong = np.exp(LOGITS[0]) / np.exp(LOGITS[0]).sum()
    assert np.max(np.abs(counts - wrong)) > 0.05


def test_bad_sampler_arguments_raise():
    with pytest.raises(ValueError, match="p"):
        TopPSampler(p=1.5)
    with pytest.raises(ValueError, match="k"):
        TopKSampler(k=0)
    with pytest.raises(ValueError, match="num_beams"):
        BeamSampler(num_beams=0)
    with pytest.raises(ValueError, match="sampler"):
        generate(None, [[1, 2]], 3, sampler="nucleus")
