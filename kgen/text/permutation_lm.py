"""A permutation language model with XLNet's two-stream attention, on kgen's BERT blocks.

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933) presents XLNet's
permutation LM as "a shuffled lower-triangular mask"; XLNet (Yang et al. 2019, arXiv:1906.08237, §2.3) adds the
part the mask alone cannot give: a *query stream* that knows which position it predicts but not its token.

For a factorisation order z (a permutation of the positions; r(j) = rank of position j in z), every layer runs
the same Transformer block (shared weights) on two streams that read the same keys and values, those of the
content stream:

    content h (sees its own token):         h_i ← Block(h_i; K(h), V(h); M_h[i, j] = r(j) ≤ r(i))
    query   g (position, not the token):    g_i ← Block(g_i; K(h), V(h); M_g[i, j] = r(j) < r(i))

h⁰ is BERT's embedding of the tokens; g⁰ replaces the token embedding by one learned `mask` vector (XLNet's
`mask_emb`) and keeps the position and segment embeddings (XLNet's positions enter through relative attention;
with kgen's absolute positions this is the "position without content" of the paper). The logits of position i
come from g_i: log p(x_{z_k} | x_{z_<k}), the permutation LM objective.

Training (`fit(x)` with x a dict of `token_ids` and optional `segment_ids`, or just the `token_ids` array):
one random order per row from the model's SeedGenerator, and XLNet's partial prediction — only the last
`predict_fraction` of each order are targets (the rest is context, visible to them).

Inference (`fill`): fill the blank positions of a sequence in any order. The known tokens come first in the
order, the blanks follow in the order asked for; each blank is predicted from the query stream at its position,
written in, and becomes visible to the later blanks.
"""

import keras
import numpy as np
from keras import ops

from kgen import backend as kb
from kgen._checks import check_int
from kgen.backend import replica_mean
from kgen.endpoint import Endpoint
from kgen.text._checks import check_token_ids
from kgen.text.encoder import BertEncoder
from kgen.text.masks import PermutationMask


@keras.saving.register_keras_serializable(package="kgen")
class PermutationLM(kb.Model):
    """XLNet-style two-stream permutation LM (see the module docstring); `fit` needs no `y` and no `loss`.

    Args:
        vocab_size: number of token ids.
        hidden_dim, num_layers, num_heads, intermediate_dim, max_length, dropout, initializer_range:
            `BertEncoder` arguments (the blocks are shared by both streams).
        predict_fraction: fraction of each order (its end) that is predicted in training (XLNet: 1/K,
            K = 6 or 7); 1.0 predicts every position.
        pad_id: padding token (never a target, never attended).
        seed: seed of the SeedGenerator that draws the training orders.

    Call args:
        inputs: dict with int `token_ids (batch, length)`, int `order (batch, length)` (a permutation of
            0 … length − 1 per row) and optionally `segment_ids`; without `order` (as in `fit`) one random
            order per row is drawn.

    Returns:
        Logits `(batch, length, vocab_size)` from the query stream: `logits[:, i]` predicts token i from
        the tokens that precede position i in the order. When the order was drawn: a dict with `logits`
        and that `order`.

    Example:
        >>> import keras, numpy as np
        >>> from kgen.datasets.text import palindromes
        >>> from kgen.text import PermutationLM
        >>> data = palindromes(2_000)
        >>> model = PermutationLM(data["vocab_size"], max_length=data["token_ids"].shape[1])
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> model.fit(data["token_ids"], batch_size=64, epochs=1)
        >>> x = palindromes(4, split="test")["token_ids"]
        >>> blanks = np.zeros(x.shape, bool); blanks[:, [1, 6]] = True  # two blanks per row
        >>> order = np.tile(np.arange(x.shape[1])[::-1], (4, 1))  # fill right to left
        >>> filled = model.fill(x, blanks, order=order)  # int32 (4, 8), a backend tensor
    """

    def __init__(self, vocab_size, hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128, max_length=64,
                 dropout=0.0, initializer_range=0.02, predict_fraction=1.0, pad_id=0, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = check_int("vocab_size", vocab_size, 2)
        self.pad_id = check_int("pad_id", pad_id, 0)
        if self.pad_id >= self.vocab_size:
            raise ValueError(f"`pad_id` must be < vocab_size ({vocab_size}), got {pad_id}")
        if not 0.0 < float(predict_fraction) <= 1.0:
            raise ValueError(f"`predict_fraction` must be in (0, 1], got {predict_fraction}")
        self.predict_fraction = float(predict_fraction)
        self.encoder = BertEncoder(vocab_size, hidden_dim, num_layers, num_heads, intermediate_dim, max_length,
                                   num_segments=2, dropout=dropout, initializer_range=initializer_range,
                                   name="encoder")
        self.content_mask = PermutationMask("content", name="content_mask")
        self.query_mask = PermutationMask("query", name="query_mask")
        self.max_length = self.encoder.max_length
        self.seed = int(seed)
        self.seed_generator = kb.SeedGenerator(self.seed)

    def build(self, input_shape=None):
        self.encoder.build()
        self.mask_embedding = self.add_weight(
            shape=(self.encoder.hidden_dim,), name="mask_embedding",
            initializer=keras.initializers.TruncatedNormal(stddev=self.encoder.initializer_range))
        self.built = True

    # -- the two streams ---------------------------------------------------------------------------------
    def _query_embedding(self, token_ids, segment_ids, training=None):
        encoder = self.encoder
        positions = ops.arange(ops.shape(token_ids)[1], dtype="int32")[None, :]
        g = (self.mask_embedding + encoder.position_embedding(positions) + encoder.segment_embedding(segment_ids))
        return encoder.embeddings_dropout(encoder.embeddings_layer_norm(g), training=training)

    def streams(self, token_ids, order, segment_ids=None, training=None):
        """Final `(content, query)` hidden states, each `(batch, length, hidden_dim)`."""
        token_ids = ops.cast(token_ids, "int32")
        segment_ids = ops.zeros_like(token_ids) if segment_ids is None else ops.cast(segment_ids, "int32")
        padding = ops.not_equal(token_ids, self.pad_id)
        content_mask = self.content_mask(order, padding)
        query_mask = self.query_mask(order, padding)
        h = self.encoder.embed(token_ids, segment_ids, training=training)
        g = self._query_embedding(token_ids, segment_ids, training=training)
        for block in self.encoder.blocks:
            keys, values = block.key(h), block.value(h)
            h, g = (block.attend(h, keys, values, content_mask, training=training),
                    block.attend(g, keys, values, query_mask, training=training))
        return h, g

    def call(self, inputs, training=None):
        token_ids, segment_ids = self._tokens(inputs)
        order = inputs.get("order") if isinstance(inputs, dict) else None
        drawn = order is None
        if drawn:
            order = self.random_order(ops.shape(token_ids)[0], ops.shape(token_ids)[1])
        _, g = self.streams(token_ids, order, segment_ids, training=training)
        logits = self.encoder.lm_head(g)
        return {"logits": logits, "order": order} if drawn else logits

    # -- training ----------------------------------------------------------------------------------------
    def _tokens(self, x):
        if isinstance(x, dict):
            if "token_ids" not in x:
                raise ValueError("`inputs` must be the token_ids array or a dict with 'token_ids' (and optionally "
                                 "'order' and 'segment_ids')")
            return x["token_ids"], x.get("segment_ids")
        return x, None

    def random_order(self, batch, length):
        """One uniformly random permutation of 0 … length − 1 per row, from the model's SeedGenerator."""
        noise = keras.random.uniform((batch, length), seed=self.seed_generator)
        return ops.cast(ops.argsort(noise, axis=1), "int32")

    def target_weights(self, token_ids, order):
        """1.0 where a position is a training target: in the last `predict_fraction` of its row's order, not pad."""
        length = ops.shape(token_ids)[1]
        rank = ops.cast(ops.argsort(order, axis=1), "float32")
        first_target = ops.floor(ops.cast(length, "float32") * (1.0 - self.predict_fraction))
        return ops.cast(rank >= first_target, "float32") * ops.cast(ops.not_equal(token_ids, self.pad_id), "float32")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        token_ids, _ = self._tokens(x)
        if isinstance(y_pred, dict):  # fit: the order was drawn in `call`
            logits, order = y_pred["logits"], y_pred["order"]
        else:
            logits, order = y_pred, x["order"]
        token_ids = ops.cast(token_ids, "int32")
        weights = self.target_weights(token_ids, order)
        cross_entropy = keras.losses.sparse_categorical_crossentropy(token_ids, logits, from_logits=True)
        loss = ops.sum(cross_entropy * weights) / ops.maximum(ops.sum(weights), 1.0)
        for extra in self.losses:
            loss = loss + ops.sum(extra)
        return replica_mean(loss)  # data-parallel training (kgen.distribute) sums the replicas' gradients

    # -- inference ---------------------------------------------------------------------------------------
    def fill(self, token_ids, blanks, order=None, segment_ids=None):
        """Fill the `blanks` of `token_ids` greedily, one blank at a time in the given order.

        Args:
            token_ids: int `(batch, length)`; values at blank positions are ignored.
            blanks: bool `(batch, length)`, True = to fill.
            order: optional int `(batch, length)`: a permutation per row whose blank positions, read left to
                right, give the filling order (known positions may appear anywhere; they are moved first).
                Default: blanks left to right.
            segment_ids: optional int `(batch, length)`.

        Returns:
            int32 `(batch, length)` with every blank filled, a backend tensor (`keras.ops.convert_to_numpy`
            gives NumPy). The filling loop runs on the host, one model call per blank.
        """
        tokens = np.array(ops.convert_to_numpy(token_ids), copy=True)
        check_token_ids(tokens, self.vocab_size)
        blanks = np.asarray(ops.convert_to_numpy(blanks)).astype(bool)
        if tokens.ndim != 2 or blanks.shape != tokens.shape:
            raise ValueError(f"`token_ids` and `blanks` must both be (batch, length), got {tokens.shape} and "
                             f"{blanks.shape}")
        batch, length = tokens.shape
        if order is None:
            order = np.tile(np.arange(length), (batch, 1))
        order = np.asarray(ops.convert_to_numpy(order))
        if order.shape != tokens.shape or np.any(np.sort(order, axis=1) != np.arange(length)):
            raise ValueError("`order` must hold a permutation of 0 … length − 1 per row")
        # Known positions first (their own order is irrelevant to the blanks), then blanks in the asked order.
        full = np.stack([np.concatenate([row[~b[row]], row[b[row]]]) for row, b in zip(order, blanks)])
        tokens = np.where(blanks, self.pad_id + 1 if self.pad_id + 1 < self.vocab_size else 0, tokens)
        known = (~blanks).sum(axis=1)
        for step in range(int(blanks.sum(axis=1).max())):
            inputs = {"token_ids": tokens.astype("int32"), "order": full.astype("int32")}
            if segment_ids is not None:
                inputs["segment_ids"] = np.asarray(ops.convert_to_numpy(segment_ids), "int32")
            logits = ops.convert_to_numpy(self(inputs, training=False))
            for row in range(batch):
                k = known[row] + step
                if k < length and blanks[row, full[row, k]]:
                    position = full[row, k]
                    tokens[row, position] = int(np.argmax(logits[row, position]))
        return ops.convert_to_tensor(tokens, "int32")

    def export_endpoints(self, serve_length=None):
        """Endpoints for `kgen.export`: `serve(token_ids, order, segment_ids)`, the query-stream logits
        `(batch, serve_length, vocab)` for a given factorisation order (what `call` returns with `order`;
        deterministic). `serve_length` defaults to `max_length`. `fill` is a host loop and is not exported:
        a server fills blanks by calling `serve` once per blank, as `fill` does.
        """
        length = self.max_length if serve_length is None else check_int("serve_length", serve_length, 1)
        if length > self.max_length:
            raise ValueError(f"`serve_length` must be <= max_length ({self.max_length}), got {length}")
        if not self.built:
            self.build()

        def logits(token_ids, order, segment_ids):
            return self({"token_ids": token_ids, "order": order, "segment_ids": segment_ids}, training=False)

        ids = keras.InputSpec(shape=(None, length), dtype="int32")
        return [Endpoint("serve", logits, [ids, ids, ids])]

    def get_config(self):
        encoder = self.encoder
        return {**super().get_config(), "vocab_size": self.vocab_size, "hidden_dim": encoder.hidden_dim,
                "num_layers": encoder.num_layers, "num_heads": encoder.num_heads,
                "intermediate_dim": encoder.intermediate_dim, "max_length": encoder.max_length,
                "dropout": encoder.dropout, "initializer_range": encoder.initializer_range,
                "predict_fraction": self.predict_fraction, "pad_id": self.pad_id, "seed": self.seed}
