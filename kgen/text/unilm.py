"""UniLM seq2seq: one BERT encoder with the UniLM mask, trained by `fit` to predict the target token by token.

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933); Dong et al. 2019,
"Unified Language Model Pre-training for Natural Language Understanding and Generation" (UniLM).

The article's recipe (bert4keras `task_seq2seq_autotitle.py`): the input is `[CLS] source [SEP] target [SEP]`
with segment ids 0 on `[CLS] source [SEP]` and 1 on `target [SEP]`; the source attends bidirectionally, the
target left to right (`kgen.text.masks.UniLMMask`); position i predicts token i + 1 and only predictions of
target tokens count:

    loss = Σᵢ CE(token[i+1], logits[i]) · s[i+1] · pad[i+1]  /  Σᵢ s[i+1] · pad[i+1]

so the source `[SEP]` predicts the first target token and the last target token predicts the closing `[SEP]`
(learning to stop). UniLM's own fine-tuning masks target tokens and predicts them in place instead; this is
the article's (and UniLM's `pos_shift`) next-token form.

Decoding (`generate`, run by the model-agnostic loops of `kgen.text.decoding`; this model supplies `prefill`,
`next_logits` and `reorder_cache`). Layout of a batch of sources of different lengths nᵦ (ragged), buffer
length S = max nᵦ + steps:

    position   0 … nᵦ−1          nᵦ … nᵦ+steps−1         (rest)
    token      source (left)     generated y₀, y₁, …      unused
    segment    0                 1                        1

This is exactly the layout the model is trained on, `[CLS] source [SEP] target [SEP]` with no gap, so position
ids are plain 0…S−1 and every row writes its t-th token at its own position nᵦ + t. Logits at position
nᵦ − 1 (the source `[SEP]`) give y₀; feeding y_{t−1} at position nᵦ + t − 1 gives y_t.

Why the cache is exact: a cache is exact iff no computed position attends a position written later. Under the
UniLM mask, source rows see only the source and target rows see only earlier positions, so (1) the whole
source is prefilled at once with the UniLM mask (bidirectional inside the source, never token by token), and
(2) each step's query at position p uses the row `M[p, :]` of the full mask (all source + target ≤ p), with
per-row p. The cache keeps the sources' keys/values apart from the generated ones (`BertEncoder.prefill`): the
t-th generated token of every row goes to column t, whatever the row's source length, so a step writes one
column instead of rewriting a buffer, and the row's mask is its real source tokens plus columns ≤ t.
keras-hub's prefix-LM generation instead re-runs the tails of longer prompts through the causal step path,
which loses their bidirectionality; here no source token ever goes through the step path.
"""

import keras
from keras import ops

from kgen import backend as kb
from kgen._checks import check_int
from kgen.backend import concrete_value, replica_mean
from kgen.endpoint import Endpoint
from kgen.text import decoding
from kgen.text._checks import check_token_ids
from kgen.text.encoder import BertEncoder
from kgen.text.masks import check_segment_ids, unilm_mask, UniLMMask
from kgen.text.samplers import GreedySampler


def _flat(cache):
    """A cache (one tuple of tensors per layer) as one list, for `kb.call_network`'s positional tensors."""
    return [x for layer in cache for x in layer]


def _per_layer(flat, num_layers):
    """The inverse of `_flat`: the cache's tuple of per-layer tuples."""
    width = len(flat) // num_layers
    return tuple(tuple(flat[i:i + width]) for i in range(0, len(flat), width))


@keras.saving.register_keras_serializable(package="kgen")
class UniLM(kb.Model):
    """UniLM / BERT-as-seq2seq model (see the module docstring); `fit` needs no `y` and no `loss`.

    Args:
        vocab_size: number of token ids.
        hidden_dim, num_layers, num_heads, intermediate_dim, max_length, dropout, initializer_range:
            `BertEncoder` arguments.
        pad_id: the padding token; `padding_mask` defaults to `token_ids != pad_id`.

    Call args:
        inputs: dict with int `token_ids (batch, length)`, `segment_ids (batch, length)` (0 = source,
            1 = target) and optionally bool `padding_mask (batch, length)` (True = real token).

    Returns:
        Logits `(batch, length, vocab_size)`; `logits[:, i]` predicts token i + 1.

    Raises:
        ValueError: (eagerly, and in `fit`/`evaluate`/`predict` for numpy data) token ids outside
            [0, vocab_size), segment ids not 0s-then-1s, inputs of different shapes.

    Example:
        >>> import keras
        >>> from kgen.datasets.text import SEP_ID, toy_seq2seq
        >>> from kgen.text import UniLM
        >>> data = toy_seq2seq("reverse", 2_000)
        >>> model = UniLM(vocab_size=data["vocab_size"], max_length=data["token_ids"].shape[1])
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> model.fit({"token_ids": data["token_ids"], "segment_ids": data["segment_ids"]}, batch_size=64)
        >>> tokens = model.generate(data["source_ids"][:4], max_new_tokens=9, end_id=SEP_ID)  # int32 (4, 9)
        >>> keras.ops.convert_to_numpy(tokens)  # as NumPy
    """

    def __init__(self, vocab_size, hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128, max_length=64,
                 dropout=0.0, initializer_range=0.02, pad_id=0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = check_int("vocab_size", vocab_size, 2)
        self.pad_id = check_int("pad_id", pad_id, 0)
        if self.pad_id >= self.vocab_size:
            raise ValueError(f"`pad_id` must be < vocab_size ({vocab_size}), got {pad_id}")
        self.encoder = BertEncoder(vocab_size, hidden_dim, num_layers, num_heads, intermediate_dim, max_length,
                                   num_segments=2, dropout=dropout,
                                   initializer_range=initializer_range, name="encoder")
        self.unilm_mask = UniLMMask(name="unilm_mask")
        self.max_length = self.encoder.max_length

    def build(self, input_shape=None):
        self.encoder.build()
        self.built = True

    # -- inputs ------------------------------------------------------------------------------------------
    def _split_inputs(self, inputs):
        if not isinstance(inputs, dict) or "token_ids" not in inputs or "segment_ids" not in inputs:
            raise ValueError("`inputs` must be a dict with 'token_ids' and 'segment_ids' (and optionally "
                             f"'padding_mask'), got {type(inputs).__name__}")
        token_ids, segment_ids = inputs["token_ids"], inputs["segment_ids"]
        padding_mask = inputs.get("padding_mask")
        if padding_mask is None:
            padding_mask = ops.not_equal(token_ids, self.pad_id)
        return token_ids, segment_ids, padding_mask

    def check_inputs(self, inputs):
        """Value checks on inputs whose values are known (numpy or eager tensors); a no-op while tracing."""
        if not isinstance(inputs, dict):
            return
        token_ids = concrete_value(inputs.get("token_ids"))
        if token_ids is None:
            return
        check_token_ids(token_ids, self.vocab_size)
        length = token_ids.shape[1] if token_ids.ndim == 2 else None
        if token_ids.ndim != 2 or length > self.max_length:
            raise ValueError(f"`token_ids` must have shape (batch, length <= max_length={self.max_length}), "
                             f"got {token_ids.shape}")
        segments = concrete_value(inputs.get("segment_ids"))
        pad = concrete_value(inputs.get("padding_mask"))
        if segments is not None:
            if segments.shape != token_ids.shape:
                raise ValueError(f"`segment_ids` must have the shape of `token_ids` {token_ids.shape}, "
                                 f"got {segments.shape}")
            check_segment_ids(segments, token_ids != self.pad_id if pad is None else pad)

    def fit(self, x=None, *args, **kwargs):
        self.check_inputs(x)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self.check_inputs(x)
        return super().evaluate(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self.check_inputs(x)
        return super().predict(x, *args, **kwargs)

    # -- model ---------------------------------------------------------------------------------------------
    def call(self, inputs, training=None):
        self.check_inputs(inputs)
        # Through kb.call_network: on torch one traced replay of the mask and the encoder (Keras's per-layer
        # Python time is most of a small model's step there); elsewhere the plain call.
        return kb.call_network(self, list(self._split_inputs(inputs)), training, method=self._logits)

    def _logits(self, inputs, training=None):
        token_ids, segment_ids, padding_mask = inputs
        mask = self.unilm_mask(segment_ids, padding_mask)
        return self.encoder(token_ids, segment_ids, attention_mask=mask, training=training)

    def target_weights(self, inputs):
        """Loss weights `(batch, length)`: position i counts iff token i + 1 is a real target token."""
        _, segment_ids, padding_mask = self._split_inputs(inputs)
        is_target = ops.cast(segment_ids, "float32") * ops.cast(padding_mask, "float32")
        return ops.concatenate([is_target[:, 1:], ops.zeros_like(is_target[:, :1])], axis=1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is not None:  # the user compiled their own loss and passes targets
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        token_ids = x["token_ids"]
        next_tokens = ops.concatenate([token_ids[:, 1:], ops.zeros_like(token_ids[:, :1])], axis=1)
        weights = self.target_weights(x)
        logits = ops.cast(y_pred, "float32")  # the softmax and the loss in float32 under a mixed policy
        cross_entropy = keras.losses.sparse_categorical_crossentropy(next_tokens, logits, from_logits=True)
        loss = ops.sum(cross_entropy * weights) / ops.maximum(ops.sum(weights), 1.0)
        for extra in self.losses:
            loss = loss + ops.sum(extra)
        return replica_mean(loss)  # data-parallel training (kgen.distribute) sums the replicas' gradients

    # -- decoding ----------------------------------------------------------------------------------------------
    def generate(self, source_ids, max_new_tokens, sampler="greedy", end_id=None, use_cache=True,
                 return_logits=False, seed=None):
        """Decode targets for `source_ids`: backend tensors, see `kgen.text.decoding.generate`."""
        return decoding.generate(self, source_ids, max_new_tokens, sampler=sampler, end_id=end_id,
                                 use_cache=use_cache, return_logits=return_logits, seed=seed)

    def _layout(self, source_ids, lengths, steps, use_cache):
        """Token and segment ids of the decoding buffer (the module docstring's layout), and its padding."""
        source_ids = ops.cast(source_ids, "int32")
        if not use_cache:  # the reference re-runs the whole buffer: room for the `steps` generated tokens
            tail = ops.zeros((ops.shape(source_ids)[0], steps), "int32") + self.pad_id
            source_ids = ops.concatenate([source_ids, tail], axis=1)
        positions = ops.arange(ops.shape(source_ids)[1], dtype="int32")[None, :]
        segments = ops.cast(positions >= lengths[:, None], "int32")
        return source_ids, segments, positions < lengths[:, None]

    def prefill(self, source_ids, lengths, steps, use_cache=True):
        """Run the sources at once under the UniLM mask: the logits of the first target token, and the cache.

        Args:
            source_ids: int `(batch, width)`, end-padded with `pad_id`; lengths: int `(batch,)`.
            steps: number of tokens to be generated (static int).
            use_cache: keep every layer's keys and values, with room for `steps` tokens; False keeps the
                token and segment buffer `(batch, width + steps)` instead, re-run at every step (the reference).

        Returns:
            `(logits (batch, vocab) at each row's last source position, cache)`.
        """
        tokens, segments, pad = self._layout(source_ids, lengths, steps, use_cache)
        mask = unilm_mask(segments, pad)
        if use_cache:
            hidden, cache = self.encoder.prefill(tokens, segments, mask, steps)
        else:
            hidden, cache = self.encoder.hidden_states(tokens, segments, mask), (tokens, segments)
        last = ops.take_along_axis(hidden, (lengths - 1)[:, None, None], axis=1)[:, 0]
        return self.encoder.lm_head(last), cache

    def next_logits(self, token, index, lengths, cache, use_cache=True):
        """Feed `token (batch,)` as generated token `index` (a scalar), at each row's position `lengths + index`.

        Returns `(logits (batch, vocab) of the token after it, cache)`."""
        # Through kb.call_network, as `call`: on torch one traced replay per step (the index is one of its
        # tensor inputs, so every step of a loop replays the same trace); elsewhere the plain call.
        inputs = [token, ops.convert_to_tensor(index, "int32"), lengths]
        if not use_cache:
            tokens, segments = cache
            logits, tokens = kb.call_network(self, inputs + [tokens, segments], False, method=self._full_step)
            return logits, (tokens, segments)
        logits, flat = kb.call_network(self, inputs + _flat(cache), False, method=self._cached_step)
        return logits, _per_layer(flat, len(cache))

    def _cached_step(self, inputs, training=None):
        """`next_logits` with the cache: `inputs` = token, index, lengths, then every layer's cache flattened."""
        token, index, lengths, *flat = inputs
        cache = _per_layer(flat, self.encoder.num_layers)
        prompt_mask = ops.arange(ops.shape(cache[0][0])[2], dtype="int32")[None, :] < lengths[:, None]
        hidden, cache = self.encoder.decode_step(token, ops.ones_like(token), lengths + index, index, cache,
                                                 prompt_mask)
        return self.encoder.lm_head(hidden), _flat(cache)

    def _full_step(self, inputs, training=None):
        """`next_logits` without the cache (the reference): the token buffer re-run whole."""
        token, index, lengths, tokens, segments = inputs
        position = lengths + index
        seen = ops.arange(ops.shape(tokens)[1], dtype="int32")[None, :] <= position[:, None]
        slot = ops.one_hot(position, ops.shape(tokens)[1], dtype="bool")
        tokens = ops.where(slot, token[:, None], tokens)
        hidden = self.encoder.hidden_states(tokens, segments, unilm_mask(segments, seen))
        hidden = ops.take_along_axis(hidden, position[:, None, None], axis=1)[:, 0]
        return self.encoder.lm_head(hidden), tokens

    def reorder_cache(self, cache, indices, use_cache=True):
        """The cache of rows `indices` (beam search): the beams of a row share its source, so only the generated
        keys and values (or the token buffer) follow their parents."""
        if use_cache:
            return tuple(layer[:2] + tuple(ops.take(x, indices, axis=0) for x in layer[2:]) for layer in cache)
        tokens, segments = cache
        return ops.take(tokens, indices, axis=0), segments

    def export_endpoints(self, max_new_tokens=16, source_length=None, end_id=None, serve_length=None):
        """Endpoints for `kgen.export`:

        - `serve(token_ids, segment_ids)`: the logits `(batch, serve_length, vocab)` (pads = `pad_id`, segments
          0/1; `serve_length` defaults to `max_length`);
        - `generate(source_ids)`: greedy cached decoding of `max_new_tokens` tokens, int32
          `(batch, max_new_tokens)`, for sources `(batch, source_length)` padded at the end with `pad_id`
          (ragged batches as in `generate`; tokens after `end_id` are `pad_id`). `source_length` defaults
          to `max_length - max_new_tokens`.
        """
        steps = check_int("max_new_tokens", max_new_tokens, 1)
        width = self.max_length - steps if source_length is None else check_int("source_length", source_length, 1)
        if width < 1 or width + steps > self.max_length:
            raise ValueError(f"`source_length` ({width}) + `max_new_tokens` ({steps}) must be <= the model's "
                             f"max_length ({self.max_length})")
        end = -1 if end_id is None else check_int("end_id", end_id, 0)
        greedy = GreedySampler()
        if not self.built:
            self.build()

        def logits(token_ids, segment_ids):
            return self({"token_ids": token_ids, "segment_ids": segment_ids}, training=False)

        def generate(source_ids):
            source_ids = ops.cast(source_ids, "int32")
            lengths = ops.sum(ops.cast(ops.not_equal(source_ids, self.pad_id), "int32"), axis=1)
            end_token = ops.convert_to_tensor(end, "int32")
            return decoding.sample_loop(self, greedy, source_ids, lengths, end_token, ops.zeros(()), steps)[0]

        length = self.max_length if serve_length is None else check_int("serve_length", serve_length, 1)
        if length > self.max_length:
            raise ValueError(f"`serve_length` must be <= max_length ({self.max_length}), got {length}")
        ids = keras.InputSpec(shape=(None, length), dtype="int32")
        return [Endpoint("serve", logits, [ids, ids]),
                Endpoint("generate", generate, [keras.InputSpec(shape=(None, width), dtype="int32")])]

    def get_config(self):
        encoder = self.encoder
        return {**super().get_config(), "vocab_size": self.vocab_size, "hidden_dim": encoder.hidden_dim,
                "num_layers": encoder.num_layers, "num_heads": encoder.num_heads,
                "intermediate_dim": encoder.intermediate_dim, "max_length": encoder.max_length,
                "dropout": encoder.dropout, "initializer_range": encoder.initializer_range, "pad_id": self.pad_id}
