"""A BERT-compatible Transformer encoder that takes any attention mask, with an exact key/value cache.

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933): one BERT serves as
MLM, LM or seq2seq model depending only on the attention mask it is given. BERT: Devlin et al. 2019.

Layout (BERT's, so that loading a BERT checkpoint is a name mapping; HF names in brackets):
    embeddings: token [word_embeddings] + position [position_embeddings] + segment [token_type_embeddings],
        LayerNorm [embeddings.LayerNorm], dropout;
    per layer (post-LN): x ← LN(x + Dropout(O·Attention(Qx, Kx, Vx; M)))  [attention.self.query/key/value,
        attention.output.dense, attention.output.LayerNorm]; x ← LN(x + Dropout(W₂ GELU(W₁x)))
        [intermediate.dense, output.dense, output.LayerNorm]. Every Dense has a bias; kernels are (in, out)
        (HF Linear weights are (out, in): transpose when loading). GELU is the exact erf form, LN ε = 1e-12.
    MLM head [cls.predictions]: Dense(d, GELU) → LN → logits = h Eᵀ + b with E the token embedding (tied).

Masks are boolean `(batch, query, key)`, True = may attend (see `kgen.text.masks`). Masked scores are replaced
by −1e9 before the softmax, so a blocked key gets probability exactly 0: outputs do not depend on blocked keys
at all (the leakage tests check bit-for-bit equality).

Cache. A cache is exact when no computed position attends a position appended later (true for causal and
UniLM target rows). `prefill` runs the whole prompt at once under its mask and returns every layer's keys and
values; `decode_step` runs one new token per row at its own position and attends the prompt's keys (those the
row's source mask allows) and the generated ones so far. The cache is split in two per layer, head-major
`(batch, heads, length, head_dim)`: the prompt part, written once, and the generated part, of a static
`steps` columns, where step t writes column t for every row at once (`slice_update`, O(batch·d) per step,
where a single buffer indexed by each row's own position would rewrite the whole cache). Beam search then
reorders only the generated part: every beam of a row shares the prompt.
"""

import math

import keras
from keras import ops

from kgen._checks import check_int


def _dense(units, name, stddev, activation=None):
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer=keras.initializers.TruncatedNormal(stddev=stddev))


@keras.saving.register_keras_serializable(package="kgen")
class TransformerBlock(keras.layers.Layer):
    """One post-LN BERT layer: masked multi-head self-attention, then a GELU feed-forward network.

    Args:
        hidden_dim: model width d (a multiple of `num_heads`).
        num_heads: attention heads.
        intermediate_dim: feed-forward width.
        dropout: dropout rate after attention probabilities, attention output and feed-forward output.
        layer_norm_epsilon: LayerNorm ε (BERT: 1e-12).
        initializer_range: standard deviation of the truncated-normal kernel initialiser (BERT: 0.02).

    Call args:
        x: `(batch, length, hidden_dim)`.
        attention_mask: bool `(batch, length, length)` or None (attend everything).

    Example:
        >>> import keras, numpy as np
        >>> from kgen.text import CausalMask, TransformerBlock
        >>> block = TransformerBlock(64, 4, 128)
        >>> y = block(keras.random.normal((2, 5, 64)), attention_mask=CausalMask()(np.ones((2, 5))))
    """

    def __init__(self, hidden_dim, num_heads, intermediate_dim, dropout=0.0, layer_norm_epsilon=1e-12,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, 1)
        self.num_heads = check_int("num_heads", num_heads, 1)
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim, 1)
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"`hidden_dim` ({hidden_dim}) must be a multiple of `num_heads` ({num_heads})")
        self.dropout, self.layer_norm_epsilon = float(dropout), float(layer_norm_epsilon)
        self.initializer_range = float(initializer_range)
        self.head_dim = self.hidden_dim // self.num_heads
        d, std = self.hidden_dim, self.initializer_range
        self.query, self.key, self.value = _dense(d, "query", std), _dense(d, "key", std), _dense(d, "value", std)
        self.attention_output = _dense(d, "attention_output", std)
        self.attention_layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon,
                                                                    name="attention_layer_norm")
        self.intermediate = _dense(self.intermediate_dim, "intermediate", std, activation="gelu")
        self.output_dense = _dense(d, "output", std)
        self.output_layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="output_layer_norm")
        self.attention_dropout = keras.layers.Dropout(self.dropout)
        self.residual_dropout = keras.layers.Dropout(self.dropout)
        self.output_dropout = keras.layers.Dropout(self.dropout)

    def build(self, input_shape=None):
        d = self.hidden_dim
        for layer in (self.query, self.key, self.value, self.attention_output, self.intermediate):
            layer.build((None, None, d))
        self.output_dense.build((None, None, self.intermediate_dim))
        self.attention_layer_norm.build((None, None, d))
        self.output_layer_norm.build((None, None, d))
        self.built = True

    def _heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (batch, length, self.num_heads, self.head_dim))

    def attend(self, x, keys, values, attention_mask, training=None):
        """Attention of the queries of `x` (B, T, d) over projected `keys`/`values` (B, S, d), then the FFN."""
        q = self._heads(self.query(x))
        k, v = self._heads(keys), self._heads(values)
        scores = ops.einsum("bthd,bshd->bhts", q, k) / math.sqrt(self.head_dim)
        if attention_mask is not None:
            mask = ops.cast(attention_mask, "bool")[:, None, :, :]
            scores = ops.where(mask, scores, ops.cast(-1e9, scores.dtype))
        probs = ops.softmax(scores, axis=-1)
        if attention_mask is not None:
            # A query that may attend nothing (the first position of a permutation LM's query stream) gets a
            # zero context rather than a uniform average over the keys it must not see.
            probs = probs * ops.cast(mask, probs.dtype)
        probs = self._drop(self.attention_dropout, probs, training)
        context = ops.einsum("bhts,bshd->bthd", probs, v)
        context = ops.reshape(context, (ops.shape(x)[0], ops.shape(x)[1], self.hidden_dim))
        x = self.attention_layer_norm(x + self._drop(self.residual_dropout, self.attention_output(context), training))
        ffn = self.output_dense(self.intermediate(x))
        return self.output_layer_norm(x + self._drop(self.output_dropout, ffn, training))

    def _drop(self, layer, x, training):
        # With rate 0 the Dropout call is the identity; skipping it saves a Layer call per use in decoding loops.
        return x if self.dropout == 0.0 else layer(x, training=training)

    def call(self, x, attention_mask=None, training=None):
        return self.attend(x, self.key(x), self.value(x), attention_mask, training=training)

    def _head_major(self, x):
        """(B, T, d) -> (B, heads, T, head_dim)."""
        return ops.transpose(self._heads(x), (0, 2, 1, 3))

    def prefill(self, x, attention_mask, steps):
        """Full pass over a prompt that also starts this layer's cache: `(y, cache)`.

        cache = `(prompt keys, prompt values, generated keys, generated values)`, head-major, the generated
        part zeros of `steps` columns."""
        keys, values = self.key(x), self.value(x)
        empty = ops.zeros((ops.shape(x)[0], self.num_heads, steps, self.head_dim), x.dtype)
        return self.attend(x, keys, values, attention_mask), (
            self._head_major(keys), self._head_major(values), empty, empty)

    def decode_step(self, x, cache, index, attention_mask):
        """One new token per row, `x (B, 1, d)`, written at column `index` of the generated cache (inference).

        Args:
            cache: this layer's cache from `prefill` or the previous step.
            index: int scalar, the generated column of this token (the same for every row).
            attention_mask: bool `(B, 1, 1, P + steps)`: the prompt keys each row may attend (its real source
                tokens), then the generated ones (columns ≤ `index`).

        Returns `(y (B, 1, d), cache)`.
        """
        prompt_keys, prompt_values, keys, values = cache
        one_token = (ops.shape(x)[0], self.num_heads, 1, self.head_dim)  # head-major (B, 1, d), one reshape
        keys = ops.slice_update(keys, (0, 0, index, 0), ops.reshape(self.key(x), one_token))
        values = ops.slice_update(values, (0, 0, index, 0), ops.reshape(self.value(x), one_token))
        q = ops.reshape(self.query(x), one_token)
        scores = ops.concatenate([ops.einsum("bhqd,bhkd->bhqk", q, prompt_keys),
                                  ops.einsum("bhqd,bhkd->bhqk", q, keys)], axis=-1) / math.sqrt(self.head_dim)
        probs = ops.softmax(ops.where(attention_mask, scores, ops.cast(-1e9, scores.dtype)), axis=-1)
        length = ops.shape(prompt_keys)[2]
        context = (ops.einsum("bhqk,bhkd->bhqd", probs[..., :length], prompt_values)
                   + ops.einsum("bhqk,bhkd->bhqd", probs[..., length:], values))
        context = ops.reshape(context, (ops.shape(x)[0], 1, self.hidden_dim))
        x = self.attention_layer_norm(x + self.attention_output(context))
        x = self.output_layer_norm(x + self.output_dense(self.intermediate(x)))
        return x, (prompt_keys, prompt_values, keys, values)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim, "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon, "initializer_range": self.initializer_range}


@keras.saving.register_keras_serializable(package="kgen")
class BertEncoder(keras.layers.Layer):
    """BERT: embeddings, `num_layers` post-LN blocks under a given mask, MLM head tied to the token embeddings.

    Args:
        vocab_size: number of token ids.
        hidden_dim, num_layers, num_heads, intermediate_dim: BERT sizes (base: 768, 12, 12, 3072).
        max_length: number of position embeddings.
        num_segments: number of segment (token type) embeddings (BERT: 2).
        dropout: dropout rate (BERT: 0.1).
        layer_norm_epsilon: LayerNorm ε (BERT: 1e-12).
        initializer_range: standard deviation of the truncated-normal initialisers (BERT: 0.02; small models
            trained from scratch learn faster with ~0.1).

    Call args:
        token_ids: int `(batch, length)`.
        segment_ids: int `(batch, length)`.
        attention_mask: bool `(batch, length, length)`; None = attend everything.
        position_ids: int `(batch, length)`; None = 0 … length − 1.

    Returns:
        Logits `(batch, length, vocab_size)`.

    Example:
        >>> import numpy as np
        >>> from kgen.text import BertEncoder, BidirectionalMask
        >>> encoder = BertEncoder(vocab_size=100, hidden_dim=32, num_layers=2, num_heads=4, intermediate_dim=64)
        >>> ids = np.array([[5, 6, 7, 0]]); segments = np.zeros_like(ids)
        >>> logits = encoder(ids, segments, attention_mask=BidirectionalMask()(ids != 0))  # (1, 4, 100)
    """

    def __init__(self, vocab_size, hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128, max_length=128,
                 num_segments=2, dropout=0.0, layer_norm_epsilon=1e-12, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = check_int("vocab_size", vocab_size, 1)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, 1)
        self.num_layers = check_int("num_layers", num_layers, 1)
        self.num_heads = check_int("num_heads", num_heads, 1)
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim, 1)
        self.max_length = check_int("max_length", max_length, 1)
        self.num_segments = check_int("num_segments", num_segments, 1)
        self.dropout, self.layer_norm_epsilon = float(dropout), float(layer_norm_epsilon)
        self.initializer_range = float(initializer_range)
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        d = self.hidden_dim
        self.token_embedding = keras.layers.Embedding(vocab_size, d, embeddings_initializer=init, name="token_embedding")
        self.position_embedding = keras.layers.Embedding(max_length, d, embeddings_initializer=init,
                                                         name="position_embedding")
        self.segment_embedding = keras.layers.Embedding(num_segments, d, embeddings_initializer=init,
                                                        name="segment_embedding")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon,
                                                                     name="embeddings_layer_norm")
        self.embeddings_dropout = keras.layers.Dropout(self.dropout)
        self.blocks = [TransformerBlock(d, num_heads, intermediate_dim, dropout, layer_norm_epsilon,
                                        self.initializer_range, name=f"transformer_layer_{k}")
                       for k in range(self.num_layers)]
        self.mlm_dense = _dense(d, "mlm_dense", self.initializer_range, activation="gelu")
        self.mlm_layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="mlm_layer_norm")

    def build(self, input_shape=None):
        d = self.hidden_dim
        for embedding in (self.token_embedding, self.position_embedding, self.segment_embedding):
            embedding.build((None, None))
        self.embeddings_layer_norm.build((None, None, d))
        for block in self.blocks:
            block.build((None, None, d))
        self.mlm_dense.build((None, None, d))
        self.mlm_layer_norm.build((None, None, d))
        self.mlm_bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="mlm_bias")
        self.built = True

    def embed(self, token_ids, segment_ids, position_ids=None, training=None):
        """Token + position + segment embeddings, LayerNorm, dropout: `(batch, length, hidden_dim)`."""
        if position_ids is None:
            position_ids = ops.arange(ops.shape(token_ids)[1], dtype="int32")[None, :]
        x = (self.token_embedding(token_ids) + self.position_embedding(position_ids)
             + self.segment_embedding(segment_ids))
        x = self.embeddings_layer_norm(x)
        return x if self.dropout == 0.0 else self.embeddings_dropout(x, training=training)

    def lm_head(self, hidden):
        """MLM head: logits `(…, vocab_size)` from final hidden states `(…, hidden_dim)`."""
        h = self.mlm_layer_norm(self.mlm_dense(hidden))
        return ops.matmul(h, ops.transpose(self.token_embedding.embeddings)) + self.mlm_bias

    def hidden_states(self, token_ids, segment_ids, attention_mask=None, position_ids=None, training=None):
        x = self.embed(token_ids, segment_ids, position_ids, training=training)
        for block in self.blocks:
            x = block(x, attention_mask=attention_mask, training=training)
        return x

    def call(self, token_ids, segment_ids, attention_mask=None, position_ids=None, training=None):
        return self.lm_head(self.hidden_states(token_ids, segment_ids, attention_mask, position_ids, training))

    def prefill(self, token_ids, segment_ids, attention_mask, steps):
        """Inference pass over a prompt `(B, P)`: `(hidden (B, P, d), cache)`, cache = one tuple per layer
        (see `TransformerBlock.prefill`) with room for `steps` generated tokens."""
        x = self.embed(token_ids, segment_ids)
        cache = []
        for block in self.blocks:
            x, layer = block.prefill(x, attention_mask, steps)
            cache.append(layer)
        return x, tuple(cache)

    def decode_step(self, token_ids, segment_ids, positions, index, cache, prompt_mask):
        """One token per row at its own position, the `index`-th generated token of every row.

        Args:
            token_ids, segment_ids, positions: int `(batch,)`.
            index: int scalar, the column of this token in the generated part of the cache.
            cache: from `prefill` or the last step.
            prompt_mask: bool `(batch, P)`, the prompt keys each row may attend (the row `M[p, :P]` of the
                full mask; the generated keys it may attend are the columns ≤ `index`).

        Returns:
            `(hidden (batch, hidden_dim), cache)`.
        """
        x = self.embed(token_ids[:, None], segment_ids[:, None], positions[:, None])
        steps = ops.shape(cache[0][2])[2]
        generated = ops.broadcast_to(ops.arange(steps, dtype="int32") <= index, (ops.shape(prompt_mask)[0], steps))
        mask = ops.concatenate([ops.cast(prompt_mask, "bool"), generated], axis=-1)[:, None, None, :]
        layers = []
        for block, layer in zip(self.blocks, cache):
            x, layer = block.decode_step(x, layer, index, mask)
            layers.append(layer)
        return x[:, 0], tuple(layers)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim, "max_length": self.max_length,
                "num_segments": self.num_segments, "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon, "initializer_range": self.initializer_range}
