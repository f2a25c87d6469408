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
"""

import keras
import numpy as np
from keras import ops

from kgen import backend as kb
from kgen.backend import replica_mean
from kgen._checks import check_int
from kgen.text.encoder import BertEncoder
from kgen.text.masks import check_segment_ids, eager_numpy, UniLMMask


def check_token_ids(token_ids, vocab_size, name="token_ids"):
    """Raise ValueError unless every id of the int array `token_ids` lies in [0, vocab_size)."""
    ids = np.asarray(token_ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must be integer token ids, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"`{name}` must lie in [0, vocab_size={vocab_size}); got ids from {ids.min()} to {ids.max()}")


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
        >>> data = kgen.datasets.text.toy_seq2seq("reverse", 20_000)
        >>> model = UniLM(vocab_size=data["vocab_size"], max_length=data["token_ids"].shape[1])
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> model.fit({"token_ids": data["token_ids"], "segment_ids": data["segment_ids"]}, batch_size=64)
        >>> model.generate(data["source_ids"][:4], max_new_tokens=9, end_id=2)
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
        token_ids = eager_numpy(inputs.get("token_ids"))
        if token_ids is None:
            return
        check_token_ids(token_ids, self.vocab_size)
        length = token_ids.shape[1] if token_ids.ndim == 2 else None
        if token_ids.ndim != 2 or length > self.max_length:
            raise ValueError(f"`token_ids` must have shape (batch, length <= max_length={self.max_length}), "
                             f"got {token_ids.shape}")
        segments = eager_numpy(inputs.get("segment_ids"))
        pad = eager_numpy(inputs.get("padding_mask"))
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
        token_ids, segment_ids, padding_mask = self._split_inputs(inputs)
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
                 return_logits=False):
        """Decode targets for `source_ids`; see `kgen.text.decoding.generate`."""
        from kgen.text.decoding import generate

        return generate(self, source_ids, max_new_tokens, sampler=sampler, end_id=end_id, use_cache=use_cache,
                        return_logits=return_logits)

    def export_endpoints(self, max_new_tokens=16, source_length=None, end_id=None, serve_length=None):
        """Endpoints for `kgen.export`:

        - `serve(token_ids, segment_ids)`: the logits `(batch, serve_length, vocab)` (pads = `pad_id`, segments
          0/1; `serve_length` defaults to `max_length`);
        - `generate(source_ids)`: greedy cached decoding of `max_new_tokens` tokens, int32
          `(batch, max_new_tokens)`, for sources `(batch, source_length)` padded at the end with `pad_id`
          (ragged batches as in `generate`; tokens after `end_id` are `pad_id`). `source_length` defaults
          to `max_length - max_new_tokens`.
        """
        from kgen.export import Endpoint
        from kgen.text.decoding import _sample_loop
        from kgen.text.samplers import get_sampler

        steps = check_int("max_new_tokens", max_new_tokens, 1)
        width = self.max_length - steps if source_length is None else check_int("source_length", source_length, 1)
        if width < 1 or width + steps > self.max_length:
            raise ValueError(f"`source_length` ({width}) + `max_new_tokens` ({steps}) must be <= the model's "
                             f"max_length ({self.max_length})")
        end = -1 if end_id is None else check_int("end_id", end_id, 0)
        greedy = get_sampler("greedy")
        if not self.built:
            self.build()

        def logits(token_ids, segment_ids):
            return self({"token_ids": token_ids, "segment_ids": segment_ids}, training=False)

        def generate(source_ids):
            source_ids = ops.cast(source_ids, "int32")
            lengths = ops.sum(ops.cast(ops.not_equal(source_ids, self.pad_id), "int32"), axis=1)
            tail = ops.zeros((ops.shape(source_ids)[0], steps), "int32") + self.pad_id
            tokens = ops.concatenate([source_ids, tail], axis=1)
            segments = ops.cast(ops.arange(width + steps, dtype="int32")[None, :] >= lengths[:, None], "int32")
            end_token = ops.convert_to_tensor(end, "int32")
            return _sample_loop(self, greedy, tokens, segments, lengths, end_token, ops.zeros(()), steps,
                                use_cache=True, return_logits=False)[0]

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
