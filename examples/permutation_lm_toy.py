"""XLNet's two-stream permutation LM fills blanks in any order (Su, kexue.fm/archives/6933; arXiv:1906.08237).

    python examples/permutation_lm_toy.py --backend jax --epochs 1 --out runs/permutation_lm

Trains `kgen.text.PermutationLM` by plain `fit` on palindromes `s + reversed(s)` (random factorisation orders,
the last half of each order predicted), then blanks half the positions of held-out palindromes and fills them
in a random order. A blank whose mirror is known has one right answer; when both of a pair are blank the
second must copy whatever the model chose for the first — the query stream conditions on filled tokens.
Prints both rates and a few filled rows, saves the model to <out>/permutation_lm_palindromes.keras.
"""

import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), choices=["jax", "tensorflow", "torch"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--n", type=int, default=20_000, help="training palindromes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/permutation_lm")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # before Keras is imported

    import keras
    import numpy as np

    import kgen
    from kgen.datasets.text import palindromes
    from kgen.text import PermutationLM

    kgen.set_seed(args.seed)
    train, test = palindromes(args.n, seed=args.seed), palindromes(500, split="test", seed=args.seed + 1)
    model = PermutationLM(train["vocab_size"], hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128,
                          max_length=train["token_ids"].shape[1], initializer_range=0.1, predict_fraction=0.5,
                          seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(train["token_ids"], batch_size=64, epochs=args.epochs, verbose=2)
    x, rng = test["token_ids"], np.random.default_rng(args.seed)
    blanks = rng.random(x.shape) < 0.5
    order = np.argsort(rng.random(x.shape), axis=1)
    filled = keras.ops.convert_to_numpy(model.fill(x, blanks, order=order))
    mirror_known = blanks & ~blanks[:, ::-1]
    pairs = np.any(blanks & blanks[:, ::-1], axis=1)
    print(f"blanks with a known mirror filled right: {(filled == x)[mirror_known].mean():.4f}")
    print(f"rows with a blank pair that came out palindromes: {np.all(filled == filled[:, ::-1], axis=1)[pairs].mean():.4f}")
    for row in range(3):
        shown = " ".join("_" if b else str(t) for t, b in zip(x[row], blanks[row]))
        print(f"{shown}  → {' '.join(map(str, filled[row]))}")
    os.makedirs(args.out, exist_ok=True)
    model.save(os.path.join(args.out, "permutation_lm_palindromes.keras"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
