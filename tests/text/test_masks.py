"""The mask layers equal the article's matrices, handle padding and ragged batches, and reject bad input."""

import keras
import numpy as np
import pytest

from kgen.text.masks import BidirectionalMask, CausalMask, CombineMasks, PermutationMask, UniLMMask


def as_int(mask):
    return np.asarray(keras.ops.convert_to_numpy(mask)).astype(int)


def rows(*lines):
    return np.array([[int(c) for c in line] for line in lines])


def cumsum_rule(segment_ids):
    """The article's (bert4keras) UniLM rule, without padding: cumsum(s)[j] <= cumsum(s)[i]."""
    c = np.cumsum(segment_ids, axis=1)
    return (c[:, None, :] <= c[:, :, None]).astype(int)


def test_causal_mask_is_the_4x4_lower_triangle():
    expected = rows("1000", "1100", "1110", "1111")
    np.testing.assert_array_equal(as_int(CausalMask()(np.ones((1, 4), bool)))[0], expected)


def test_unilm_mask_reproduces_the_article_example():
    # [CLS] 你 想 吃 啥 [SEP] 白 切 鸡 [SEP]
    segments = np.array([[0, 0, 0, 0, 0, 0, 1, 1, 1, 1]])
    expected = rows(*["1111110000"] * 6, "1111111000", "1111111100", "1111111110", "1111111111")
    np.testing.assert_array_equal(as_int(UniLMMask()(segments))[0], expected)


def test_unilm_mask_equals_the_cumsum_rule_on_unpadded_rows():
    rng = np.random.default_rng(0)
    boundaries = rng.integers(0, 9, size=6)
    segments = (np.arange(9)[None, :] >= boundaries[:, None]).astype(np.int32)
    np.testing.assert_array_equal(as_int(UniLMMask()(segments)), cumsum_rule(segments))


def test_permutation_query_stream_reproduces_the_article_figure():
    # Positions: <s> 北 京 欢 迎 你; order <s> → 迎 → 京 → 你 → 欢 → 北.
    order = np.array([[0, 4, 2, 5, 3, 1]])
    query = as_int(PermutationMask("query")(order))[0]
    expected = rows("100000",   # <s> is always visible; rows below are 北 京 欢 迎 你, as in the note
                    "101111", "100010", "101011", "100000", "101010")
    np.testing.assert_array_equal(query[1:], expected[1:])
    assert query[0].sum() == 0  # <s> comes first: its query stream sees nothing
    content = as_int(PermutationMask("content")(order))[0]
    np.testing.assert_array_equal(content, query + np.eye(6, dtype=int))


def test_permutation_in_natural_order_is_the_causal_mask():
    order = np.arange(5)[None, :]
    np.testing.assert_array_equal(as_int(PermutationMask("content")(order)), as_int(CausalMask()(np.ones((1, 5)))))


@pytest.mark.parametrize("pad_segment", [0, 1])
def test_padding_blocks_pad_keys_and_pad_queries_whatever_their_segment(pad_segment):
    segments = np.array([[0, 0, 0, 1, 1, pad_segment, pad_segment]])
    padding = np.array([[1, 1, 1, 1, 1, 0, 0]], bool)
    mask = as_int(UniLMMask()(segments, padding))[0]
    np.testing.assert_array_equal(mask[:5, :5], cumsum_rule(segments[:, :5])[0])
    assert mask[5:].sum() == 0 and mask[:, 5:].sum() == 0
    if pad_segment == 0:
        # Negative control: the cumsum rule alone lets the last target row see the segment-0 pads.
        assert cumsum_rule(segments)[0, 4, 5:].all()


def test_ragged_batch_rows_equal_each_row_alone():
    segments = np.array([[0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0, 1]])
    padding = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 0], [1] * 7], bool)
    batch = as_int(UniLMMask()(segments, padding))
    for b in range(3):
        n = padding[b].sum()
        alone = as_int(UniLMMask()(segments[b: b + 1, :n]))[0]
        np.testing.assert_array_equal(batch[b, :n, :n], alone)
        assert batch[b, n:].sum() == 0 and batch[b, :, n:].sum() == 0


@pytest.mark.parametrize("cache_index", [0, 2, np.array([1, 3])])
def test_causal_mask_with_a_cache_offset_gives_rows_of_the_full_mask(cache_index):
    padding = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]], bool)
    full = as_int(CausalMask()(padding))
    step = as_int(CausalMask()(padding, cache_index=cache_index, query_length=2))
    starts = np.broadcast_to(cache_index, (2,))
    for b in range(2):
        np.testing.assert_array_equal(step[b], full[b, starts[b]: starts[b] + 2])


def test_unilm_query_positions_give_rows_of_the_full_mask():
    segments = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    full = as_int(UniLMMask()(segments))
    positions = np.array([[4, 1], [2, 5]])
    step = as_int(UniLMMask()(segments, query_positions=positions))
    for b in range(2):
        np.testing.assert_array_equal(step[b], full[b, positions[b]])


def test_bidirectional_mask_is_the_outer_product_of_padding():
    padding = np.array([[1, 1, 0], [1, 1, 1]], bool)
    expected = (padding[:, :, None] & padding[:, None, :]).astype(int)
    np.testing.assert_array_equal(as_int(BidirectionalMask()(padding)), expected)


def test_combine_masks_is_elementwise_and_or():
    causal = CausalMask()(np.ones((1, 4), bool))
    padded = BidirectionalMask()(np.array([[1, 1, 1, 0]], bool))
    a, b = as_int(causal), as_int(padded)
    np.testing.assert_array_equal(as_int(CombineMasks()([causal, padded])), a & b)
    np.testing.assert_array_equal(as_int(CombineMasks("or")([causal, padded])), a | b)


def test_masks_plug_into_keras_multi_head_attention_and_survive_reload(tmp_path):
    token_ids = keras.Input((6,), dtype="int32", name="token_ids")
    segment_ids = keras.Input((6,), dtype="int32", name="segment_ids")
    x = keras.layers.Embedding(10, 8)(token_ids)
    mask = UniLMMask()(segment_ids, keras.ops.not_equal(token_ids, 0))
    y = keras.layers.MultiHeadAttention(2, 4)(x, x, attention_mask=mask)
    model = keras.Model([token_ids, segment_ids], y)
    data = [np.array([[1, 2, 3, 4, 5, 0]]), np.array([[0, 0, 0, 1, 1, 0]])]
    path = str(tmp_path / "mask_model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(reloaded(data)), keras.ops.convert_to_numpy(model(data)))


@pytest.mark.parametrize("segments", [[[0, 1, 0, 1]], [[0, 0, 2, 2]], [[1, 1, 0, 0]]])
def test_segment_ids_that_are_not_source_then_target_raise(segments):
    with pytest.raises(ValueError, match="segment_ids"):
        UniLMMask()(np.array(segments))


def test_trailing_segment_zero_pads_need_the_padding_mask():
    segments = np.array([[0, 0, 1, 1, 0, 0]])
    with pytest.raises(ValueError, match="padding_mask"):
        UniLMMask()(segments)
    UniLMMask()(segments, np.array([[1, 1, 1, 1, 0, 0]], bool))  # fine with it


def test_mask_shape_mismatch_raises():
    with pytest.raises(ValueError, match="padding_mask"):
        UniLMMask()(np.zeros((2, 5), np.int32), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="masks"):
        CombineMasks()([np.ones((1, 3, 3), bool), np.ones((1, 4, 4), bool)])
    with pytest.raises(ValueError, match="padding_mask"):
        CausalMask()(np.ones((2, 3, 3), bool))


def test_an_order_that_is_not_a_permutation_raises():
    with pytest.raises(ValueError, match="order"):
        PermutationMask("query")(np.array([[0, 1, 1, 3]]))
    with pytest.raises(ValueError, match="stream"):
        PermutationMask("both")
