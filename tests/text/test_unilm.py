"""UniLM: the loss counts target tokens only, the head is tied, the layout is BERT's, reload, bad input."""

import keras
import numpy as np
import pytest
from keras import ops

from text_helpers import packed, tiny_unilm

SOURCES = [[1, 5, 6, 7, 2], [1, 8, 2]]
TARGETS = [[7, 6, 5, 2], [8, 2]]


def _numpy_target_loss(logits, inputs):
    """The article's loss from numpy: CE(token[i+1] | logits[i]) averaged over real target tokens i+1."""
    tokens, segments, padding = inputs["token_ids"], inputs["segment_ids"], inputs["padding_mask"]
    logits = logits.astype(np.float64)
    log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    total, count = 0.0, 0
    for b in range(tokens.shape[0]):
        for i in range(tokens.shape[1] - 1):
            if segments[b, i + 1] == 1 and padding[b, i + 1]:
                total -= log_probs[b, i, tokens[b, i + 1]]
                count += 1
    return total / count


def test_loss_is_cross_entropy_on_target_tokens_only():
    model = tiny_unilm()
    inputs = packed(SOURCES, TARGETS)
    logits = model(inputs)
    loss = float(ops.convert_to_numpy(model.compute_loss(inputs, None, logits)))
    assert abs(loss - _numpy_target_loss(ops.convert_to_numpy(logits), inputs)) < 1e-5
    # Changing the logits where no target token is predicted leaves the loss unchanged.
    weights = ops.convert_to_numpy(model.target_weights(inputs))
    assert weights.sum() == 6  # 4 + 2 target tokens, each predicted from the position before it
    noisy = ops.convert_to_numpy(logits) + 5.0 * (weights == 0)[:, :, None] * np.random.default_rng(0).normal(
        size=logits.shape)
    assert float(ops.convert_to_numpy(model.compute_loss(inputs, None, ops.convert_to_tensor(noisy, "float32")))) \
        == pytest.approx(loss, abs=1e-6)


def test_fit_lowers_the_target_loss():
    model = tiny_unilm(initializer_range=0.1)
    inputs = packed(SOURCES * 8, TARGETS * 8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(inputs, batch_size=16, epochs=15, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_mlm_head_is_tied_to_the_token_embeddings():
    model = tiny_unilm()
    inputs = packed(SOURCES, TARGETS)
    encoder = model.encoder
    mask = model.unilm_mask(inputs["segment_ids"], inputs["padding_mask"])
    hidden = encoder.hidden_states(inputs["token_ids"], inputs["segment_ids"], mask)
    head = ops.convert_to_numpy(encoder.mlm_layer_norm(encoder.mlm_dense(hidden)))
    expected = head @ ops.convert_to_numpy(encoder.token_embedding.embeddings).T + ops.convert_to_numpy(encoder.mlm_bias)
    np.testing.assert_allclose(ops.convert_to_numpy(model(inputs)), expected, atol=1e-5)
    assert len(model.trainable_variables) == 5 + 16 * 2 + 5  # no separate output matrix


def test_weights_have_the_bert_layout():
    model = tiny_unilm()
    shapes = {v.path.split("/", 1)[1]: tuple(v.shape) for v in model.weights}
    d, ff = 16, 32
    expected = {"encoder/token_embedding/embeddings": (13, d), "encoder/position_embedding/embeddings": (24, d),
                "encoder/segment_embedding/embeddings": (2, d), "encoder/embeddings_layer_norm/gamma": (d,)}
    for k in range(2):
        layer = f"encoder/transformer_layer_{k}"
        for name in ("query", "key", "value", "attention_output"):
            expected[f"{layer}/{name}/kernel"], expected[f"{layer}/{name}/bias"] = (d, d), (d,)
        expected.update({f"{layer}/attention_layer_norm/gamma": (d,), f"{layer}/intermediate/kernel": (d, ff),
                         f"{layer}/output/kernel": (ff, d), f"{layer}/output_layer_norm/beta": (d,)})
    for name, shape in expected.items():
        assert shapes[name] == shape, name


def test_unilm_survives_reload(tmp_path):
    model = tiny_unilm()
    inputs = packed(SOURCES, TARGETS)
    path = str(tmp_path / "unilm.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(reloaded(inputs)), ops.convert_to_numpy(model(inputs)))


def test_token_ids_outside_the_vocabulary_raise():
    model = tiny_unilm()
    inputs = packed(SOURCES, TARGETS)
    inputs["token_ids"][0, 2] = 13
    with pytest.raises(ValueError, match="token_ids"):
        model(inputs)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="token_ids"):
        model.fit(inputs, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="source_ids"):
        model.generate([[1, 13, 2]], max_new_tokens=2)


def test_bad_segment_ids_and_shapes_raise():
    model = tiny_unilm()
    inputs = packed(SOURCES, TARGETS)
    inputs["segment_ids"][0, 1] = 1  # a target token inside the source
    with pytest.raises(ValueError, match="segment_ids"):
        model(inputs)
    inputs = packed(SOURCES, TARGETS)
    inputs["segment_ids"] = inputs["segment_ids"][:, :-1]
    with pytest.raises(ValueError, match="segment_ids"):
        model(inputs)
    with pytest.raises(ValueError, match="max_length"):
        model.generate([[1] + [5] * 20 + [2]], max_new_tokens=4)
