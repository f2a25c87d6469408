"""BERT's WordPiece tokenizer in pure Python, reading a `vocab.txt` (for the MiniLM checkpoint, `checkpoint.py`).

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933) fine-tunes a BERT as
seq2seq on `[CLS] source [SEP] target [SEP]`; this turns text into those ids. Devlin et al. 2019 (BERT);
Wu et al. 2016 (WordPiece).

Two stages, as BERT's reference tokenizer:
1. basic tokenisation: drop control characters, map whitespace to " ", put spaces around CJK ideographs,
   lowercase, strip accents (NFD, drop combining marks), split on whitespace and punctuation (ASCII
   symbols and every Unicode `P*` category);
2. WordPiece: greedy longest-match-first pieces from the vocabulary, continuation pieces prefixed `##`; a word
   with no segmentation (or longer than `max_chars_per_word`) becomes `[UNK]` as a whole.

The article's `keep_tokens` (a task-sized vocabulary, bert4keras) is `WordPieceTokenizer.subset`: for texts
whose pieces all lie in the subset, greedy longest match gives the same pieces as with the full vocabulary.
"""

import json
import unicodedata
from pathlib import Path

import numpy as np

from kgen._checks import check_int
from kgen.text.checkpoint import minilm_path

_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _is_punctuation(char):
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _clean(char):
    """"" for characters BERT drops (NUL, U+FFFD, controls), " " for whitespace, else the character."""
    if char in " \t\n\r" or unicodedata.category(char) == "Zs":
        return " "
    if ord(char) in (0, 0xFFFD) or unicodedata.category(char).startswith("C"):
        return ""
    return char


class WordPieceTokenizer:
    """BERT tokenizer: basic tokenisation then greedy longest-match WordPiece over a fixed vocabulary.

    Args:
        vocabulary: path of a `vocab.txt` (one token per line, id = line number) or a list of tokens.
        lowercase: lowercase the text (uncased BERT: True).
        strip_accents: remove accents; None = same as `lowercase` (BERT's rule).
        max_chars_per_word: longer words become `[UNK]` (BERT: 100).

    Example:
        >>> from kgen.text import WordPieceTokenizer
        >>> tokenizer = WordPieceTokenizer.from_pretrained()  # MiniLM's vocab.txt
        >>> tokenizer.tokenize("Héllo, unaffable world!")  # ['hello', ',', 'una', '##ffa', '##ble', 'world', '!']
        >>> tokenizer.encode("hello")  # [7592]
    """

    def __init__(self, vocabulary, lowercase=True, strip_accents=None, max_chars_per_word=100):
        if isinstance(vocabulary, (str, Path)):
            with open(vocabulary, encoding="utf-8") as f:
                vocabulary = [line.rstrip("\n") for line in f]
        tokens = list(vocabulary)
        if not tokens or not all(isinstance(t, str) and t for t in tokens):
            raise ValueError("`vocabulary` must be a vocab.txt path or a non-empty list of non-empty strings")
        if "[UNK]" not in tokens:
            raise ValueError("`vocabulary` must contain the token '[UNK]'")
        self.vocabulary = tokens
        self.token_ids = {token: k for k, token in enumerate(tokens)}
        if len(self.token_ids) != len(tokens):
            raise ValueError("`vocabulary` has duplicate tokens")
        self.lowercase = bool(lowercase)
        self.strip_accents = self.lowercase if strip_accents is None else bool(strip_accents)
        self.max_chars_per_word = check_int("max_chars_per_word", max_chars_per_word, 1)

    @classmethod
    def from_pretrained(cls, path=None):
        """The tokenizer of a HF BERT directory (`vocab.txt`, `tokenizer_config.json`); None = MiniLM."""
        path = minilm_path() if path is None else Path(path)
        config_file = path / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        return cls(path / "vocab.txt", lowercase=config.get("do_lower_case", True),
                   strip_accents=config.get("strip_accents"))

    @property
    def vocab_size(self):
        return len(self.vocabulary)

    def token_to_id(self, token):
        return self.token_ids[token]

    def id_to_token(self, token_id):
        return self.vocabulary[token_id]

    # -- tokenisation ------------------------------------------------------------------------------------
    def basic_tokenize(self, text):
        """Words and punctuation marks of `text` after cleaning, lowercasing and accent stripping."""
        if not isinstance(text, str):
            raise TypeError(f"`text` must be a str, got {type(text).__name__}")
        chars = []
        for char in text:
            char = _clean(char)
            if char and any(lo <= ord(char) <= hi for lo, hi in _CJK):
                char = f" {char} "
            chars.append(char)
        words = []
        for word in unicodedata.normalize("NFC", "".join(chars)).split():
            if self.lowercase:
                word = word.lower()
            if self.strip_accents:
                word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
            piece = ""
            for char in word:
                if _is_punctuation(char):
                    words += [piece, char] if piece else [char]
                    piece = ""
                else:
                    piece += char
            if piece:
                words.append(piece)
        return words

    def wordpiece(self, word):
        """Greedy longest-match-first pieces of one word (`##` marks a continuation); ["[UNK]"] if none."""
        if len(word) > self.max_chars_per_word:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.token_ids:
                    break
            else:
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text):
        """Word pieces of `text` (no `[CLS]`/`[SEP]`)."""
        return [piece for word in self.basic_tokenize(text) for piece in self.wordpiece(word)]

    def encode(self, text):
        """Token ids of `text` (no `[CLS]`/`[SEP]`)."""
        return [self.token_ids[piece] for piece in self.tokenize(text)]

    def decode(self, token_ids, skip_special=True):
        """Text of `token_ids`: pieces joined by spaces, `##` continuations glued, special tokens dropped."""
        tokens = [self.vocabulary[int(k)] for k in np.asarray(token_ids).reshape(-1)]
        if skip_special:
            tokens = [t for t in tokens if t not in SPECIAL_TOKENS or t == "[UNK]"]
        return " ".join(tokens).replace(" ##", "")

    # -- the article's task-sized vocabulary -------------------------------------------------------------------
    def keep_tokens(self, texts, always=SPECIAL_TOKENS):
        """Sorted ids of the tokens in `always` and in the pieces of `texts` (`[PAD]` = 0 stays first)."""
        ids = {self.token_ids[t] for t in always if t in self.token_ids}
        for text in texts:
            ids.update(self.encode(text))
        return np.array(sorted(ids), dtype=np.int32)

    def subset(self, keep_tokens):
        """A tokenizer over `vocabulary[keep_tokens]` (token k = old id `keep_tokens[k]`), same settings."""
        keep_tokens = np.asarray(keep_tokens).reshape(-1)
        return WordPieceTokenizer([self.vocabulary[int(k)] for k in keep_tokens], self.lowercase,
                                  self.strip_accents, self.max_chars_per_word)

    # -- the article's seq2seq layout ---------------------------------------------------------------------------
    def seq2seq_batch(self, sources, targets=None, length=None):
        """Pack pairs as `[CLS] source [SEP] target [SEP]`, segment ids 0 then 1, end-padded with `[PAD]`.

        Args:
            sources: list of str. targets: list of str, or None (then only `source_ids` is returned).
            length: row length of `token_ids`; None = the longest pair. Longer pairs raise ValueError.

        Returns:
            dict of int32 arrays: `token_ids`, `segment_ids` `(n, length)`; `source_ids` (`[CLS] source [SEP]`,
            end-padded: the input of `UniLM.generate`); `target_ids` (`target [SEP]`, end-padded).
        """
        cls_id, sep_id, pad_id = (self.token_ids[t] for t in ("[CLS]", "[SEP]", "[PAD]"))
        source_rows = [[cls_id] + self.encode(s) + [sep_id] for s in sources]
        result = {"source_ids": _pad(source_rows, pad_id)}
        if targets is None:
            return result
        if len(targets) != len(sources):
            raise ValueError(f"`targets` must have one text per source ({len(sources)}), got {len(targets)}")
        target_rows = [self.encode(t) + [sep_id] for t in targets]
        longest = max(len(s) + len(t) for s, t in zip(source_rows, target_rows))
        if length is not None and check_int("length", length, 1) < longest:
            raise ValueError(f"`length` ({length}) is shorter than the longest packed pair ({longest} tokens)")
        token_ids = _pad([s + t for s, t in zip(source_rows, target_rows)], pad_id, length or longest)
        segment_ids = _pad([[0] * len(s) + [1] * len(t) for s, t in zip(source_rows, target_rows)], 0,
                           length or longest)
        return {**result, "token_ids": token_ids, "segment_ids": segment_ids, "target_ids": _pad(target_rows, pad_id)}


def _pad(rows, pad_id, length=None):
    array = np.full((len(rows), length or max(map(len, rows))), pad_id, np.int32)
    for k, row in enumerate(rows):
        array[k, : len(row)] = row
    return array
