"""Attention masks as Keras layers: bidirectional (BERT), causal (GPT), UniLM seq2seq, XLNet permutation.

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933, 2019): BERT, GPT,
XLNet and UniLM differ mostly in how the n×n attention matrix is masked. Papers: Dong et al. 2019, "Unified
Language Model Pre-training for Natural Language Understanding and Generation" (UniLM); Yang et al. 2019,
"XLNet: Generalized Autoregressive Pretraining for Language Understanding".

Notation. The article draws the attention matrix with rows = outputs (queries) and columns = inputs (keys),
white = blocked. Here `M[b, i, j] = True` iff query i may attend key j, shape `(batch, query, key)`: the
boolean `attention_mask` of `keras.layers.MultiHeadAttention` (UniLM's additive form is `0` where True and
`-inf` elsewhere). With `s` the segment ids (0 = source, 1 = target) and `pad` the padding mask (True = real):

    bidirectional   M[i, j] = pad[i] & pad[j]
    causal          M[i, j] = pad[i] & pad[j] & (j <= i)
    UniLM           M[i, j] = pad[i] & pad[j] & (s[j] == 0  |  (s[i] == 1 & j <= i))
    permutation     content stream: r(j) <= r(i);  query stream: r(j) < r(i)   (r = rank in the factorisation order)

The UniLM rule equals the article's (bert4keras) `cumsum(s)[j] <= cumsum(s)[i]` on unpadded rows, but does not
depend on the segment id given to pads: with the cumsum rule and segment-0 pads, the last target row sees the
pads. Padding is ANDed on keys AND queries, so pad rows are all False (Keras's softmax zeroes such rows).
"""

import keras
import numpy as np
from keras import ops

from kgen._checks import check_choice
from kgen._deprecation import warn_deprecated
from kgen.backend import concrete_value, static_shape


def eager_numpy(x):
    """Deprecated: `kgen.backend.concrete_value(x)` (the same contract, written per backend)."""
    warn_deprecated("`kgen.text.masks.eager_numpy`", "`kgen.backend.concrete_value`")
    return concrete_value(x)


def _static_shape(x):
    # Python ints for tensors inside a torch trace too (kgen.backend.call_network): sizes are not data.
    return static_shape(x) if hasattr(x, "shape") and not isinstance(x, np.ndarray) else tuple(np.shape(x))


def check_same_shape(names, tensors):
    """Raise ValueError naming both arguments when two (batch, length) inputs have different known shapes."""
    shapes = [_static_shape(t) for t in tensors]
    for shape, name in zip(shapes, names):
        if len(shape) != 2:
            raise ValueError(f"`{name}` must have shape (batch, length), got shape {shape}")
    first = shapes[0]
    for shape, name in zip(shapes[1:], names[1:]):
        if any(a is not None and b is not None and a != b for a, b in zip(first, shape)):
            raise ValueError(f"`{name}` must have the shape of `{names[0]}` {first}, got {shape}")


def check_segment_ids(segment_ids, padding_mask=None):
    """Raise ValueError unless every row's real tokens have segment ids 0…0 1…1 (source, then target).

    Args:
        segment_ids: int array `(batch, length)`.
        padding_mask: bool array `(batch, length)`, True = real token; None = every token is real.
    """
    segments = np.asarray(segment_ids)
    real = np.ones(segments.shape, bool) if padding_mask is None else np.asarray(padding_mask).astype(bool)
    bad_values = real & (segments != 0) & (segments != 1)
    if bad_values.any():
        row = int(np.argwhere(bad_values)[0][0])
        raise ValueError(f"`segment_ids` must be 0 (source) or 1 (target); row {row} has {segments[row].tolist()}")
    # A real 0 after a real 1 breaks "source then target".
    seen_target = np.maximum.accumulate(np.where(real, segments, 0), axis=1) == 1
    out_of_order = real & seen_target & (segments == 0)
    if out_of_order.any():
        row = int(np.argwhere(out_of_order)[0][0])
        hint = "" if padding_mask is not None else " (trailing pads with segment 0? pass `padding_mask`)"
        raise ValueError(
            f"`segment_ids` must be source-then-target (0s, then 1s, then padding){hint}; "
            f"row {row} is {segments[row].tolist()}"
        )


def _padding(padding_mask, like):
    if padding_mask is None:
        return ops.ones(ops.shape(like), "bool")
    return ops.cast(padding_mask, "bool")


def _query_rows(values, query_positions):
    """values (B, S) gathered at query_positions (B, T) → (B, T); None positions = every position."""
    if query_positions is None:
        return values
    return ops.take_along_axis(values, ops.cast(query_positions, "int32"), axis=1)


def _key_and_query_padding(mask, pad, query_positions):
    """AND the key padding (B, 1, S) and the query padding (B, T, 1) into mask (B, T, S)."""
    pad_q = _query_rows(pad, query_positions)
    return mask & pad[:, None, :] & pad_q[:, :, None]


def _positions(pad, query_positions):
    """Key indices (1, 1, S) and query indices (B|1, T, 1)."""
    keys = ops.arange(ops.shape(pad)[1], dtype="int32")
    queries = keys[None, :] if query_positions is None else ops.cast(query_positions, "int32")
    return keys[None, None, :], queries[:, :, None]


@keras.saving.register_keras_serializable(package="kgen")
class BidirectionalMask(keras.layers.Layer):
    """BERT/MLM mask: every real token attends every real token, `M[i, j] = pad[i] & pad[j]`.

    Call args:
        padding_mask: bool or 0/1 `(batch, length)`, True = real token.

    Returns:
        bool `(batch, length, length)`.

    Example:
        >>> import numpy as np
        >>> from kgen.text import BidirectionalMask
        >>> BidirectionalMask()(np.array([[1, 1, 0]]))[0]  # rows: queries, columns: keys
        [[True, True, False], [True, True, False], [False, False, False]]
    """

    def call(self, padding_mask):
        check_same_shape(["padding_mask"], [padding_mask])
        pad = ops.cast(padding_mask, "bool")
        return pad[:, :, None] & pad[:, None, :]


@keras.saving.register_keras_serializable(package="kgen")
class CausalMask(keras.layers.Layer):
    """Left-to-right LM mask, `M[i, j] = pad[i] & pad[j] & (j <= i)`, optionally for the rows of a cache step.

    With a key/value cache the queries are the `query_length` tokens starting at `cache_index` (a Python int,
    a scalar tensor, or one index per row `(batch,)`): the mask is bottom-right aligned, rows
    `cache_index … cache_index + query_length − 1` of the full mask. (Keras's `use_causal_mask` is top-left
    aligned, wrong for a cache.)

    Call args:
        padding_mask: bool or 0/1 `(batch, length)` over the keys (the whole cache), True = real token.
        cache_index: index of the first query; 0 for a full forward pass.
        query_length: number of queries (static int); None = `length` (full pass).

    Returns:
        bool `(batch, query_length, length)`.

    Example:
        >>> import numpy as np
        >>> from kgen.text import CausalMask
        >>> CausalMask()(np.ones((1, 4)))[0]  # the 4×4 lower triangle
        >>> CausalMask()(np.ones((1, 4)), cache_index=2, query_length=1)[0]  # [[True, True, True, False]]
    """

    def call(self, padding_mask, cache_index=0, query_length=None):
        check_same_shape(["padding_mask"], [padding_mask])
        pad = ops.cast(padding_mask, "bool")
        if query_length is None:
            query_positions = None
        else:
            start = ops.reshape(ops.cast(cache_index, "int32"), (-1, 1))
            query_positions = start + ops.arange(int(query_length), dtype="int32")[None, :]
            query_positions = ops.broadcast_to(query_positions, (ops.shape(pad)[0], int(query_length)))
        keys, queries = _positions(pad, query_positions)
        return _key_and_query_padding(keys <= queries, pad, query_positions)


@keras.saving.register_keras_serializable(package="kgen")
class UniLMMask(keras.layers.Layer):
    """UniLM seq2seq mask from segment ids: the source attends bidirectionally, the target left to right.

    `M[i, j] = pad[i] & pad[j] & (s[j] == 0 | (s[i] == 1 & j <= i))`: source rows see the whole source, target
    rows see the whole source and the target up to themselves. Each row has its own source/target boundary,
    so a batch of sources of different lengths needs no other input. For `[CLS] 你 想 吃 啥 [SEP] 白 切 鸡 [SEP]`
    with `s = 0 0 0 0 0 0 1 1 1 1` rows 0–5 are `1111110000`, row 6 `1111111000`, …, row 9 all ones.

    Call args:
        segment_ids: int `(batch, length)`, 0 = source, 1 = target, source before target in every row.
        padding_mask: bool or 0/1 `(batch, length)`, True = real token; None = no padding (then a trailing pad
            with segment 0 after the target is rejected: pass the padding mask).
        query_positions: optional int `(batch, queries)`: return only those rows `M[p, :]` (one decoding step
            per row at its own position).

    Returns:
        bool `(batch, length, length)`, or `(batch, queries, length)` with `query_positions`.

    Raises:
        ValueError: shapes differ, or (for values known eagerly) segment ids are not 0s then 1s.

    Example:
        >>> import numpy as np
        >>> from kgen.text import UniLMMask
        >>> segments = np.array([[0, 0, 0, 1, 1]])
        >>> UniLMMask()(segments)[0]  # rows 0-2: 11100; row 3: 11110; row 4: 11111
    """

    def call(self, segment_ids, padding_mask=None, query_positions=None):
        if padding_mask is None:
            check_same_shape(["segment_ids"], [segment_ids])
        else:
            check_same_shape(["segment_ids", "padding_mask"], [segment_ids, padding_mask])
        segments, pad_values = concrete_value(segment_ids), concrete_value(padding_mask)
        if segments is not None and (padding_mask is None or pad_values is not None):
            check_segment_ids(segments, pad_values)
        return unilm_mask(segment_ids, padding_mask, query_positions)


def unilm_mask(segment_ids, padding_mask=None, query_positions=None):
    """`UniLMMask` without the value checks (for decoding loops, whose segment ids are built correctly)."""
    pad = _padding(padding_mask, segment_ids)
    is_target = ops.equal(ops.cast(segment_ids, "int32"), 1)
    keys, queries = _positions(pad, query_positions)
    query_is_target = _query_rows(is_target, query_positions)[:, :, None]
    allowed = ops.logical_not(is_target)[:, None, :] | (query_is_target & (keys <= queries))
    return _key_and_query_padding(allowed, pad, query_positions)


def check_permutation(order):
    """Raise ValueError unless every row of `order` (batch, length) is a permutation of 0 … length − 1."""
    order = np.asarray(order)
    expected = np.arange(order.shape[1])
    for row, values in enumerate(order):
        if not np.array_equal(np.sort(values), expected):
            raise ValueError(f"`order` must be a permutation of 0..{order.shape[1] - 1} in every row; "
                             f"row {row} is {values.tolist()}")


@keras.saving.register_keras_serializable(package="kgen")
class PermutationMask(keras.layers.Layer):
    """XLNet permutation-LM masks for a factorisation order.

    `order[b, k]` is the position predicted at step k; `r(j)` the rank of position j in it. The content stream
    (sees its own token) has `M[i, j] = r(j) <= r(i)`, the query stream (knows its position, not its token)
    `M[i, j] = r(j) < r(i)`; both ANDed with padding. The article's example puts `<s>` first: order
    `<s> 迎 京 你 欢 北` over positions `<s> 北 京 欢 迎 你` gives the query-stream row of 迎 = `100000`.

    Args:
        stream: "content" or "query".

    Call args:
        order: int `(batch, length)`, a permutation of positions in every row.
        padding_mask: bool or 0/1 `(batch, length)`, True = real token.

    Returns:
        bool `(batch, length, length)`, rows and columns in the original (position) order.

    Example:
        >>> import numpy as np
        >>> from kgen.text import PermutationMask
        >>> PermutationMask("query")(np.array([[0, 4, 2, 5, 3, 1]]))[0]
    """

    def __init__(self, stream="content", **kwargs):
        super().__init__(**kwargs)
        self.stream = check_choice("stream", stream, ("content", "query"))

    def call(self, order, padding_mask=None):
        if padding_mask is None:
            check_same_shape(["order"], [order])
        else:
            check_same_shape(["order", "padding_mask"], [order, padding_mask])
        values = concrete_value(order)
        if values is not None:
            check_permutation(values)
        pad = _padding(padding_mask, order)
        rank = ops.cast(ops.argsort(ops.cast(order, "int32"), axis=1), "int32")
        query_rank, key_rank = rank[:, :, None], rank[:, None, :]
        allowed = key_rank <= query_rank if self.stream == "content" else key_rank < query_rank
        return _key_and_query_padding(allowed, pad, None)

    def get_config(self):
        return {**super().get_config(), "stream": self.stream}


@keras.saving.register_keras_serializable(package="kgen")
class CombineMasks(keras.layers.Layer):
    """Combine boolean masks of one shape elementwise: "and" (default; e.g. a task mask with padding) or "or".

    Args:
        mode: "and" or "or".

    Call args:
        masks: a list of bool tensors, all `(batch, query, key)`.

    Example:
        >>> import numpy as np
        >>> from kgen.text import BidirectionalMask, CausalMask, CombineMasks
        >>> causal = CausalMask()(np.ones((1, 4)))
        >>> CombineMasks()([causal, BidirectionalMask()(np.array([[1, 1, 1, 0]]))])
    """

    def __init__(self, mode="and", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_choice("mode", mode, ("and", "or"))

    def call(self, masks):
        if not isinstance(masks, (list, tuple)) or not masks:
            raise ValueError(f"`masks` must be a non-empty list of boolean tensors, got {type(masks).__name__}")
        shapes = [_static_shape(m) for m in masks]
        for k, shape in enumerate(shapes):
            if len(shape) != 3 or any(a is not None and b is not None and a != b for a, b in zip(shape, shapes[0])):
                raise ValueError(f"`masks` must all have the shape (batch, query, key) {shapes[0]}; "
                                 f"mask {k} has shape {shape}")
        combined = ops.cast(masks[0], "bool")
        for mask in masks[1:]:
            mask = ops.cast(mask, "bool")
            combined = combined & mask if self.mode == "and" else combined | mask
        return combined

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
