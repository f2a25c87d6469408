"""Toy seq2seq tasks for UniLM-style models: reverse or sort a sequence of symbols (numpy in, numpy out).

The article's data layout (Su Jianlin, https://kexue.fm/archives/6933; bert4keras `task_seq2seq_autotitle.py`):
`[CLS] source [SEP] target [SEP]` with segment ids 0 on `[CLS] source [SEP]` and 1 on `target [SEP]`, padded
at the end with `[PAD]` (segment 0). Token ids: `[PAD]` = 0, `[CLS]` = 1, `[SEP]` = 2, symbols 3 … 2 + num_symbols.

Held-out sets are disjoint from training sets by construction: a source sequence belongs to the test split
iff the CRC-32 of its symbols is divisible by 10 (about 10 % of all sequences), so no test source is ever
drawn for training, whatever the sizes.
"""

import zlib

import keras
import numpy as np

from kgen._checks import check_choice, check_int

PAD_ID, CLS_ID, SEP_ID = 0, 1, 2
SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]")
TEXT_TASKS = ("reverse", "sort")


def toy_vocab(num_symbols=10):
    """Token strings by id: the special tokens, then symbols "0", "1", … (as many as `num_symbols`)."""
    num_symbols = check_int("num_symbols", num_symbols, 1)
    return list(SPECIAL_TOKENS) + [str(k) for k in range(num_symbols)]


def _is_test(symbols):
    return zlib.crc32(np.asarray(symbols, np.uint8).tobytes()) % 10 == 0


def _solve(task, symbols):
    return symbols[::-1] if task == "reverse" else np.sort(symbols)


def toy_seq2seq(task, n, split="train", min_length=3, max_length=8, num_symbols=10, seed=0):
    """`n` examples of a toy seq2seq task in the article's UniLM layout.

    Args:
        task: "reverse" (target = source reversed) or "sort" (target = source in increasing order).
        n: number of examples.
        split: "train" or "test" (disjoint sets of source sequences, see the module docstring).
        min_length, max_length: range of the number of symbols per source (uniform).
        num_symbols: alphabet size (< 256).
        seed: NumPy seed.

    Returns:
        dict of numpy arrays (int32 unless noted):
        - `token_ids`, `segment_ids` `(n, 2·max_length + 3)`: `[CLS] x [SEP] y [SEP] [PAD]…` and `0…0 1…1 0…`;
        - `source_ids` `(n, max_length + 2)`: `[CLS] x [SEP]`, end-padded (the input of `generate`);
        - `target_ids` `(n, max_length + 1)`: `y [SEP]`, end-padded (what greedy decoding should return);
        - `vocab_size` (int).

    Example:
        >>> data = toy_seq2seq("reverse", 4, seed=0)
        >>> data["token_ids"][0]  # e.g. [1, 7, 4, 9, 2, 9, 4, 7, 2, 0, ...]
    """
    check_choice("task", task, TEXT_TASKS)
    check_choice("split", split, ("train", "test"))
    n = check_int("n", n, 1)
    min_length = check_int("min_length", min_length, 1)
    max_length = check_int("max_length", max_length, min_length)
    num_symbols = check_int("num_symbols", num_symbols, 2)
    if num_symbols > 256 - len(SPECIAL_TOKENS):
        raise ValueError(f"`num_symbols` must be <= {256 - len(SPECIAL_TOKENS)}, got {num_symbols}")
    rng = np.random.default_rng(seed)
    want_test = split == "test"
    token_ids = np.full((n, 2 * max_length + 3), PAD_ID, np.int32)
    segment_ids = np.zeros_like(token_ids)
    source_ids = np.full((n, max_length + 2), PAD_ID, np.int32)
    target_ids = np.full((n, max_length + 1), PAD_ID, np.int32)
    k = 0
    while k < n:
        symbols = rng.integers(0, num_symbols, size=rng.integers(min_length, max_length + 1))
        if _is_test(symbols) != want_test:
            continue
        source = np.concatenate([[CLS_ID], symbols + len(SPECIAL_TOKENS), [SEP_ID]])
        target = np.concatenate([_solve(task, symbols) + len(SPECIAL_TOKENS), [SEP_ID]])
        token_ids[k, : source.size + target.size] = np.concatenate([source, target])
        segment_ids[k, source.size: source.size + target.size] = 1
        source_ids[k, : source.size] = source
        target_ids[k, : target.size] = target
        k += 1
    return {"token_ids": token_ids, "segment_ids": segment_ids, "source_ids": source_ids,
            "target_ids": target_ids, "vocab_size": len(SPECIAL_TOKENS) + num_symbols}


def exact_match(generated, target_ids):
    """Fraction of rows whose generated tokens equal `target_ids` exactly (both end-padded with `[PAD]`).

    Args:
        generated: int `(n, steps)` from `kgen.text.generate(..., end_id=SEP_ID)` (pads after `[SEP]`): a NumPy
            array or a backend tensor (copied to the host).
        target_ids: int `(n, length)`; the shorter array is compared after padding it with `[PAD]`.
    """
    generated, target_ids = (np.asarray(keras.ops.convert_to_numpy(a)) for a in (generated, target_ids))
    if generated.ndim != 2 or target_ids.ndim != 2 or generated.shape[0] != target_ids.shape[0]:
        raise ValueError(f"`generated` {generated.shape} and `target_ids` {target_ids.shape} must be (n, ·) "
                         "arrays with the same n")
    width = max(generated.shape[1], target_ids.shape[1])

    def pad(a):
        return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=PAD_ID)

    return float(np.mean(np.all(pad(generated) == pad(target_ids), axis=1)))


def palindromes(n, half=4, num_symbols=8, split="train", seed=0):
    """Palindromes `s + reversed(s)` for the permutation-LM toy task: fill blanks in any order.

    `s` holds `half` symbols drawn uniformly from ids 1 … num_symbols (0 is padding, unused here). Train and
    test are disjoint by the same rule as `toy_seq2seq` (a hash of the first half). A blank whose mirror is
    known has one right answer; when both of a mirror pair are blank, the first filled is free and the second
    must match it — which only works if the model conditions on what it filled before.

    Returns:
        dict with `token_ids` int32 `(n, 2 * half)` and `vocab_size` (num_symbols + 1).
    """
    n, half, num_symbols = check_int("n", n, 1), check_int("half", half, 1), check_int("num_symbols", num_symbols, 2)
    check_choice("split", split, ("train", "test"))
    rng = np.random.default_rng([seed, 1 if split == "test" else 0])
    rows = []
    while len(rows) < n:
        s = rng.integers(1, num_symbols + 1, size=(2 * n, half))
        rows.extend(row for row in s if _is_test(row) == (split == "test"))
    s = np.stack(rows[:n]).astype(np.int32)
    return {"token_ids": np.concatenate([s, s[:, ::-1]], axis=1), "vocab_size": num_symbols + 1}
