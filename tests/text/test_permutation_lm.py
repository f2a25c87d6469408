"""The XLNet two-stream permutation LM: what each stream may see, training by fit, filling blanks in any order."""

import keras
import numpy as np
import pytest
from keras import ops

import kgen
from kgen.datasets.text import palindromes
from kgen.text import PermutationLM


def _tiny(**kwargs):
    settings = dict(vocab_size=11, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32, max_length=8,
                    initializer_range=0.3)
    settings.update(kwargs)
    model = PermutationLM(**settings)
    model.build()
    return model


def _logits(model, tokens, order):
    return ops.convert_to_numpy(model({"token_ids": tokens, "order": order}))


def test_query_stream_sees_exactly_the_earlier_ranks():
    model = _tiny()
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 11, size=(3, 8)).astype("int32")
    order = np.stack([rng.permutation(8) for _ in range(3)]).astype("int32")
    rank = np.argsort(order, axis=1)
    base = _logits(model, tokens, order)
    for p in range(8):
        changed = tokens.copy()
        changed[:, p] = np.where(changed[:, p] == 10, 1, changed[:, p] + 1)
        out = _logits(model, changed, order)
        for b in range(3):
            blind = rank[b] <= rank[b, p]  # earlier ranks and position p itself
            np.testing.assert_array_equal(out[b, blind], base[b, blind])
            if rank[b, p] < 7:  # some later rank reads token p
                assert np.abs(out[b, ~blind] - base[b, ~blind]).max() > 1e-6
    # Negative control: the content stream of position p does see its own token.
    h, _ = model.streams(tokens, order)
    h2, _ = model.streams(changed, order)
    assert np.abs(ops.convert_to_numpy(h)[:, 7] - ops.convert_to_numpy(h2)[:, 7]).max() > 1e-4


def test_pads_are_never_attended_and_never_targets():
    model = _tiny()
    tokens = np.array([[3, 4, 5, 6, 0, 0, 0, 0]], "int32")
    order = np.array([[6, 2, 0, 5, 3, 1, 7, 4]], "int32")
    other = tokens.copy()
    other[0, 4:] = 0
    base = _logits(model, tokens, order)
    weights = ops.convert_to_numpy(model.target_weights(tokens, order))
    assert weights[0, 4:].sum() == 0 and weights[0, :4].sum() == 4
    model_half = _tiny(predict_fraction=0.5)
    half = ops.convert_to_numpy(model_half.target_weights(np.full((1, 8), 3, "int32"), order))
    np.testing.assert_array_equal(half[0], (np.argsort(order[0]) >= 4).astype("float32"))
    np.testing.assert_array_equal(base[0, :4], _logits(model, other, order)[0, :4])


def test_fit_draws_orders_and_the_model_reloads(tmp_path):
    kgen.set_seed(0)
    data = palindromes(64, half=4, num_symbols=10)
    model = _tiny(predict_fraction=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(data["token_ids"], batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    drawn = model({"token_ids": data["token_ids"][:4]})
    assert sorted(drawn) == ["logits", "order"]
    np.testing.assert_array_equal(np.sort(ops.convert_to_numpy(drawn["order"]), axis=1), np.tile(np.arange(8), (4, 1)))
    path = str(tmp_path / "plm.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    order = np.tile(np.arange(8)[::-1], (4, 1)).astype("int32")
    np.testing.assert_allclose(_logits(reloaded, data["token_ids"][:4], order),
                               _logits(model, data["token_ids"][:4], order), atol=1e-6)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="predict_fraction"):
        PermutationLM(11, predict_fraction=0.0)
    model = _tiny()
    tokens = np.ones((1, 8), "int32")
    with pytest.raises(ValueError, match="`order` must hold a permutation"):
        model.fill(tokens, np.zeros((1, 8), bool), order=np.zeros((1, 8), "int32"))
    with pytest.raises(ValueError, match="`blanks`"):
        model.fill(tokens, np.zeros((1, 7), bool))
    with pytest.raises(ValueError, match="vocab_size"):
        model.fill(tokens * 99, np.zeros((1, 8), bool))


@pytest.mark.jax
def test_palindrome_blanks_are_filled_in_any_order():
    """JAX gate: one epoch of permutation-LM training, then fill half the positions in random orders."""
    kgen.set_seed(0)
    train, test = palindromes(20_000), palindromes(500, split="test", seed=1)
    model = PermutationLM(train["vocab_size"], hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128,
                          max_length=8, initializer_range=0.1, predict_fraction=0.5, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(train["token_ids"], batch_size=64, epochs=1, verbose=0)
    x, rng = test["token_ids"], np.random.default_rng(0)
    blanks = rng.random(x.shape) < 0.5
    order = np.argsort(rng.random(x.shape), axis=1)
    filled = ops.convert_to_numpy(model.fill(x, blanks, order=order))
    mirror_known = blanks & ~blanks[:, ::-1]
    assert (filled == x)[mirror_known].mean() >= 0.99      # one right answer: the mirror's token
    assert (filled == x)[~blanks].all()                     # known tokens are kept
    both_blank = np.any(blanks & blanks[:, ::-1], axis=1)
    assert both_blank.sum() > 100
    assert np.all(filled == filled[:, ::-1], axis=1)[both_blank].mean() >= 0.99  # the second of a pair follows the first
    # Negative control: predicting every blank from one pass (nothing filled is ever conditioned on) breaks pairs.
    full = np.stack([np.concatenate([row[~b[row]], row[b[row]]]) for row, b in zip(order, blanks)])
    one_pass = _logits(model, np.where(blanks, 1, x).astype("int32"), full.astype("int32")).argmax(-1)
    guessed = np.where(blanks, one_pass, x)
    assert np.all(guessed == guessed[:, ::-1], axis=1)[both_blank].mean() < 0.6
