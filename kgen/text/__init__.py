"""kgen.text: attention masks as layers, a BERT-compatible encoder, UniLM seq2seq and its decoding.

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933): the attention mask
alone turns one Transformer into an MLM (BERT), an LM (GPT), a permutation LM (XLNet) or a seq2seq model (UniLM).

- `masks`: `BidirectionalMask`, `CausalMask`, `UniLMMask`, `PermutationMask`, `CombineMasks` (Keras layers
  returning boolean `(batch, query, key)` masks, True = may attend).
- `encoder`: `BertEncoder` (BERT weight layout, MLM head tied to the token embeddings) and `TransformerBlock`.
- `unilm`: `UniLM`, trained by plain `fit` with the loss on target tokens only.
- `permutation_lm`: `PermutationLM`, XLNet's two-stream permutation LM; `fill` fills blanks in any order.
- `decoding` / `samplers`: `generate` with greedy, random, top-k, top-p and beam search, exact key/value cache;
  the token samplers derive from `TokenSampler` (`Sampler` is its deprecated old name).
- `plot`: mask pictures as PNG arrays.
"""

from kgen.text.checkpoint import load_bert, minilm_path, unilm_from_bert, unilm_from_minilm
from kgen.text.decoding import generate
from kgen.text.encoder import BertEncoder, TransformerBlock
from kgen.text.masks import BidirectionalMask, CausalMask, CombineMasks, PermutationMask, UniLMMask
from kgen.text.permutation_lm import PermutationLM
from kgen.text.plot import mask_image, save_mask_png
from kgen.text.samplers import (  # noqa: F401  (deprecated_sampler_alias: for __getattr__)
    BeamSampler, GreedySampler, RandomSampler, TokenSampler, TopKSampler, TopPSampler, deprecated_sampler_alias)
from kgen.text.unilm import UniLM
from kgen.text.wordpiece import WordPieceTokenizer

__all__ = [
    "BeamSampler",
    "BertEncoder",
    "BidirectionalMask",
    "CausalMask",
    "CombineMasks",
    "GreedySampler",
    "PermutationLM",
    "PermutationMask",
    "RandomSampler",
    "TokenSampler",
    "TopKSampler",
    "TopPSampler",
    "TransformerBlock",
    "UniLM",
    "UniLMMask",
    "WordPieceTokenizer",
    "generate",
    "load_bert",
    "mask_image",
    "minilm_path",
    "save_mask_png",
    "unilm_from_bert",
    "unilm_from_minilm",
]


def __getattr__(name):
    if name == "Sampler":
        return deprecated_sampler_alias("kgen.text.Sampler")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
