"""No information flows where the mask forbids it: exact (bit-for-bit) invariance tests, with negative controls.

The models are tiny and untrained (random weights make every allowed dependency visible).
"""

import keras
import numpy as np
from keras import ops

from kgen.text.encoder import BertEncoder
from kgen.text.masks import BidirectionalMask, PermutationMask, UniLMMask, unilm_mask
from text_helpers import tiny_unilm

SEGMENTS = np.array([[0, 0, 0, 0, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1, 1, 1, 0]])
PADDING = np.array([[1] * 8 + [0, 0], [1] * 9 + [0]], bool)


def _tokens(seed=0):
    return np.random.default_rng(seed).integers(3, 13, size=SEGMENTS.shape).astype(np.int32) * PADDING


def _logits(encoder, mask_layer, token_ids, examples=np.arange(2)):
    """Logits of `token_ids` whose row r has the segments and padding of example `examples[r]`."""
    segments, padding = SEGMENTS[examples], PADDING[examples]
    mask = mask_layer(segments, padding) if isinstance(mask_layer, UniLMMask) else mask_layer(padding)
    return ops.convert_to_numpy(encoder(token_ids, segments, attention_mask=mask))


def _worst_backward_leak(encoder, mask_layer):
    """max over target positions j of max |Δ logits at positions < j| when every target token >= j changes.

    All perturbed copies go through the model as one batch.
    """
    tokens = _tokens()
    variants, examples, starts = [], [], []
    for b in range(2):
        for j in np.flatnonzero(SEGMENTS[b] & PADDING[b]):
            changed = tokens[b].copy()
            later = (np.arange(10) >= j) & PADDING[b] & (SEGMENTS[b] == 1)
            changed[later] = 3 + (changed[later] - 3 + 5) % 10  # a different symbol everywhere
            variants.append(changed)
            examples.append(b)
            starts.append(j)
    # Each perturbed copy is compared with its original at the same row of a batch of the same shape: CPU
    # kernels (oneDNN on TF) may round a row differently depending on where it sits in the batch.
    examples = np.array(examples)
    reference = _logits(encoder, mask_layer, tokens[examples], examples)
    perturbed = _logits(encoder, mask_layer, np.stack(variants), examples)
    return max(float(np.max(np.abs(perturbed[r, :j] - reference[r, :j]))) for r, j in enumerate(starts))


def _encoder():
    encoder = BertEncoder(vocab_size=13, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32,
                          max_length=10, initializer_range=0.3)
    encoder.build()
    return encoder


def test_target_tokens_do_not_leak_to_earlier_positions():
    encoder = _encoder()
    assert _worst_backward_leak(encoder, UniLMMask()) == 0.0
    # Negative control: the same model and test with a bidirectional mask leaks.
    assert _worst_backward_leak(encoder, BidirectionalMask()) > 1e-3


def test_pad_tokens_change_nothing():
    encoder = _encoder()
    tokens = _tokens()
    reference = _logits(encoder, UniLMMask(), tokens)
    changed = np.where(PADDING, tokens, 7)
    out = _logits(encoder, UniLMMask(), changed)
    np.testing.assert_array_equal(out[PADDING], reference[PADDING])
    # Negative control: a mask without the padding AND sees the (segment-0) pads.
    no_pad = unilm_mask(SEGMENTS)
    leaked = ops.convert_to_numpy(encoder(changed, SEGMENTS, attention_mask=no_pad))
    reference = ops.convert_to_numpy(encoder(tokens, SEGMENTS, attention_mask=no_pad))
    assert np.max(np.abs(leaked[PADDING] - reference[PADDING])) > 1e-3


def test_a_row_is_the_same_alone_or_in_a_ragged_batch():
    model = tiny_unilm(initializer_range=0.1)
    tokens = _tokens()
    batch = ops.convert_to_numpy(model({"token_ids": tokens, "segment_ids": SEGMENTS, "padding_mask": PADDING}))
    for b in range(2):
        n = PADDING[b].sum()
        alone = ops.convert_to_numpy(model({"token_ids": tokens[b: b + 1, :n], "segment_ids": SEGMENTS[b: b + 1, :n]}))
        np.testing.assert_allclose(batch[b, :n], alone[0], atol=1e-5, rtol=0)


def _two_stream_outputs(attention, embed, positions, token_ids, order):
    """XLNet's two streams through one keras MultiHeadAttention: queries from h (content) or g (position only)."""
    h = embed(token_ids) + positions
    g = ops.zeros_like(h) + positions
    content = attention(h, h, attention_mask=PermutationMask("content")(order))
    query = attention(g, h, attention_mask=PermutationMask("query")(order))
    return ops.convert_to_numpy(content), ops.convert_to_numpy(query)


def test_query_stream_cannot_see_its_own_token_and_no_stream_sees_later_ranks():
    keras.utils.set_random_seed(0)
    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    embed = keras.layers.Embedding(13, 8)
    positions = keras.random.normal((1, 6, 8))
    order = np.array([[0, 4, 2, 5, 3, 1]])  # the article's <s> 迎 京 你 欢 北
    rank = np.argsort(order[0])
    tokens = np.array([[1, 5, 6, 7, 8, 9]])
    content, query = _two_stream_outputs(attention, embed, positions, tokens, order)
    for i in range(1, 6):
        changed = tokens.copy()
        changed[0, i] = 12
        content2, query2 = _two_stream_outputs(attention, embed, positions, changed, order)
        earlier = rank < rank[i]
        # The query stream of rank 0 has no key at all; Keras then attends uniformly, so it is left out.
        blind = (earlier | (rank == rank[i])) & (rank > 0)
        np.testing.assert_array_equal(query2[0, blind], query[0, blind])
        np.testing.assert_array_equal(content2[0, earlier], content[0, earlier])
        # Negative control: the content stream at i does see its own token.
        assert np.max(np.abs(content2[0, i] - content[0, i])) > 1e-4
