"""kgen.gans.layers: spectral norm (vs NumPy SVD, in fit on every backend, the stock layer's JAX failure),
conditional / self-modulated BatchNorm (plain BN at init, NumPy oracles), SAGAN attention (identity at init,
NumPy oracle), the projection head, and safe_mode reloads."""

import keras
import numpy as np
import pytest
from keras import ops

from kgen import backend as kb
from kgen.gans.layers import (
    ConditionalBatchNorm,
    ProjectionHead,
    SelfAttention2D,
    SelfModulatedBatchNorm,
    SpectralNormalization,
)

RNG = np.random.default_rng(0)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _sigma_max(kernel):
    kernel = _np(kernel)
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


def _data(input_shape, n=64):
    return RNG.normal(size=(n,) + input_shape).astype("float32"), RNG.normal(size=(n, 1)).astype("float32")


# ------------------------------------------------------------------------------------------ spectral norm
def test_spectral_norm_after_fit_from_a_random_u_sigma_max_in_1_to_1_01_and_modes_agree():
    """One model, two wrapped layers (Conv2D, Dense), u restarted at random, 48 `fit` steps."""
    inputs = keras.Input((6, 6, 2))
    h = SpectralNormalization(keras.layers.Conv2D(4, 3, strides=2, padding="same"))(inputs)
    h = SpectralNormalization(keras.layers.Dense(8, kernel_initializer=keras.initializers.RandomNormal(0.0, 1.0)))(
        keras.layers.Flatten()(h))
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    wrapped = [layer for layer in model.layers if isinstance(layer, SpectralNormalization)]
    for sn in wrapped:  # forget the build-time power iterations: a random start
        sn.u.assign(RNG.normal(size=sn.u.shape))
    fresh = [_sigma_max(sn.normalized_kernel()) for sn in wrapped]
    x, y = _data((6, 6, 2), n=64)
    model.fit(x, y, batch_size=4, epochs=3, verbose=0)  # 48 steps, one power iteration each

    inference = _np(model(x, training=False))
    training = _np(model(x, training=True))  # one more power iteration first: u has converged
    np.testing.assert_allclose(training, inference, rtol=1e-3, atol=1e-4)
    for sn, sigma_fresh in zip(wrapped, fresh):
        assert 1.0 - 1e-5 <= _sigma_max(sn.normalized_kernel()) <= 1.01
        assert sigma_fresh > 1.05, "negative control: a random u must not already normalize the kernel"
        # Oracle: the kernel is divided by σ̂ = ‖M û‖ computed in NumPy from the stored u.
        kernel = _np(sn.layer.kernel)
        matrix, u = kernel.reshape(-1, kernel.shape[-1]), _np(sn.u)
        sigma_hat = np.linalg.norm(matrix @ (u / np.linalg.norm(u)))
        np.testing.assert_allclose(_np(sn.normalized_kernel()), kernel / sigma_hat, rtol=1e-5, atol=1e-7)


@pytest.mark.jax
def test_stock_keras_spectral_normalization_disagrees_after_fit_on_jax():
    """Negative control, documenting why kgen has its own layer: Keras's wrapper normalizes by assigning
    to the kernel in training mode only, and JAX `fit` drops that assignment (research note §1.3)."""
    inputs = keras.Input((8,))
    dense = keras.layers.Dense(16, kernel_initializer=keras.initializers.RandomNormal(0.0, 1.0))
    h = keras.layers.SpectralNormalization(dense)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x, y = _data((8,), n=32)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert _sigma_max(dense.kernel) > 3.0  # the stored kernel was never normalized ...
    features = keras.Model(inputs, h)
    inference = np.abs(_np(features(x, training=False))).mean()
    training = np.abs(_np(features(x, training=True))).mean()  # ... until an eager training call assigns W/σ
    assert inference / training > 3.0


def test_spectral_norm_is_invariant_to_kernel_scale_and_its_gradient_is_orthogonal_to_the_kernel():
    """W ↦ W/σ(W) is 0-homogeneous, so ⟨∇_W L, W⟩ = 0 (Euler): the gradient includes σ's Jacobian.
    The same loss through the un-normalized layer does not have this property (negative control)."""
    sn = SpectralNormalization(keras.layers.Dense(5, use_bias=False))
    x = ops.convert_to_tensor(RNG.normal(size=(7, 4)).astype("float32"))
    before = _np(sn(x))
    kernel = sn.layer.kernel
    kernel.assign(3.0 * kernel)
    np.testing.assert_allclose(_np(sn(x)), before, rtol=1e-5, atol=1e-6)

    def loss(layer):
        return lambda: ops.sum(ops.square(layer(x) - 1.0))

    _, (grad,) = kb.gradients(loss(sn), [kernel])
    _, (plain_grad,) = kb.gradients(loss(sn.layer), [kernel])
    w = _np(kernel)
    assert abs(np.sum(_np(grad) * w)) < 1e-4 * np.linalg.norm(_np(grad)) * np.linalg.norm(w)
    assert abs(np.sum(_np(plain_grad) * w)) > 1e-2 * np.linalg.norm(_np(plain_grad)) * np.linalg.norm(w)


def test_spectral_norm_updates_u_only_in_training():
    sn = SpectralNormalization(keras.layers.Dense(3))
    x = ops.ones((2, 4))
    sn(x)
    sn.u.assign(RNG.normal(size=3))
    u0 = _np(sn.u)
    sn(x, training=False)
    np.testing.assert_array_equal(_np(sn.u), u0)
    sn(x, training=True)
    assert not np.allclose(_np(sn.u), u0)
    assert sn.u.trainable is False and len(sn.trainable_weights) == 2  # kernel and bias only


def test_spectral_norm_rejects_layers_without_a_kernel_and_bad_iterations():
    with pytest.raises(ValueError, match="kernel"):
        SpectralNormalization(keras.layers.ReLU())(ops.ones((2, 3)))
    with pytest.raises(ValueError, match="power_iterations"):
        SpectralNormalization(keras.layers.Dense(2), power_iterations=0)


# ------------------------------------------------------------------------------------------ normalizations
def _bn_reference_pair(conditional):
    x = ops.convert_to_tensor(RNG.normal(1.0, 2.0, size=(6, 4, 4, 5)).astype("float32"))
    plain = keras.layers.BatchNormalization()
    if conditional:
        layer = ConditionalBatchNorm(num_classes=3)
        condition = ops.convert_to_tensor([0, 1, 2, 2, 1, 0], "int32")
    else:
        layer = SelfModulatedBatchNorm(hidden=8)
        condition = ops.convert_to_tensor(RNG.normal(size=(6, 7)).astype("float32"))
    return x, plain, layer, condition


@pytest.mark.parametrize("conditional", [True, False], ids=["conditional", "self_modulated"])
def test_modulated_batchnorm_equals_plain_batchnorm_at_init(conditional):
    x, plain, layer, condition = _bn_reference_pair(conditional)
    for _ in range(3):  # training outputs, and moving statistics updated identically
        np.testing.assert_allclose(_np(layer([x, condition], training=True)), _np(plain(x, training=True)),
                                   rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(layer([x, condition], training=False)), _np(plain(x, training=False)),
                               rtol=1e-5, atol=1e-5)


def _batch_normalized(x, epsilon=1e-3):
    x = _np(x)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + epsilon)


def test_conditional_batchnorm_scales_and_shifts_by_class():
    x, _, layer, labels = _bn_reference_pair(conditional=True)
    layer([x, labels])
    gamma, beta = RNG.normal(size=(3, 5)), RNG.normal(size=(3, 5))
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    y = _np(labels).astype(int)
    expected = _batch_normalized(x) * gamma[y][:, None, None, :] + beta[y][:, None, None, :]
    np.testing.assert_allclose(_np(layer([x, labels], training=True)), expected, rtol=1e-4, atol=1e-4)


def test_self_modulated_batchnorm_follows_the_mlp_of_z():
    x, _, layer, z = _bn_reference_pair(conditional=False)
    layer([x, z])
    for head in (layer.gamma_head, layer.beta_head):
        head.kernel.assign(RNG.normal(size=head.kernel.shape))
    w1, b1 = _np(layer.hidden_layer.kernel), _np(layer.hidden_layer.bias)
    hidden = np.maximum(_np(z) @ w1 + b1, 0.0)
    gamma = hidden @ _np(layer.gamma_head.kernel) + 1.0  # γ bias starts at 1
    beta = hidden @ _np(layer.beta_head.kernel)
    expected = _batch_normalized(x) * gamma[:, None, None, :] + beta[:, None, None, :]
    np.testing.assert_allclose(_np(layer([x, z], training=True)), expected, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------ attention
@pytest.mark.parametrize("size,spectral_norm", [(7, False), (8, True)])
def test_self_attention_is_the_identity_at_init(size, spectral_norm):
    x = ops.convert_to_tensor(RNG.normal(size=(2, size, size, 16)).astype("float32"))
    attention = SelfAttention2D(spectral_norm=spectral_norm)
    np.testing.assert_array_equal(_np(attention(x, training=True)), _np(x))
    weights = _np(attention.attention_weights(x))
    pooled = ((size + 1) // 2) ** 2
    assert weights.shape == (2, size * size, pooled)
    assert weights.min() >= 0.0
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


def test_self_attention_matches_a_numpy_reference():
    x = RNG.normal(size=(2, 4, 4, 16)).astype("float32")
    attention = SelfAttention2D()
    attention(x)
    attention.gamma.assign(0.7)
    w_theta, w_phi, w_g, w_out = (_np(c.kernel)[0, 0] for c in (attention.theta, attention.phi, attention.g,
                                                                 attention.out))

    def pool(t):  # 2×2 max-pool of (batch, 4, 4, c) → (batch, 4 positions, c)
        return t.reshape(2, 2, 2, 2, 2, -1).max(axis=(2, 4)).reshape(2, 4, -1)

    xd = x.astype(np.float64)
    theta = (xd @ w_theta).reshape(2, 16, -1)
    logits = theta @ pool(xd @ w_phi).transpose(0, 2, 1)
    a = np.exp(logits - logits.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    expected = xd + 0.7 * ((a @ pool(xd @ w_g)) @ w_out).reshape(2, 4, 4, 16)
    np.testing.assert_allclose(_np(attention(x)), expected, rtol=1e-4, atol=1e-4)


def test_projection_head_is_linear_logit_plus_class_inner_product():
    h = RNG.normal(size=(5, 6)).astype("float32")
    labels = ops.convert_to_tensor([0, 3, 1, 3, 2], "int32")
    head = ProjectionHead(num_classes=4)
    out = _np(head([h, labels]))
    embed = _np(head.embedding.embeddings)
    expected = h @ _np(head.linear.kernel) + _np(head.linear.bias) + np.sum(embed[[0, 3, 1, 3, 2]] * h, -1,
                                                                            keepdims=True)
    assert out.shape == (5, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------ reload
def _reload_case(case):
    image = keras.Input((4, 4, 8))
    labels = keras.Input((), dtype="int32")
    if case == "spectral_norm":
        return [image], SpectralNormalization(keras.layers.Conv2D(4, 3, padding="same"))(image)
    if case == "conditional_bn":
        return [image, labels], ConditionalBatchNorm(3)([image, labels])
    if case == "self_modulated_bn":
        z = keras.Input((3,))
        return [image, z], SelfModulatedBatchNorm(hidden=4, head_initializer="glorot_uniform")([image, z])
    if case == "attention":
        return [image], SelfAttention2D(spectral_norm=True, key_ratio=4)(image)
    features = keras.Input((6,))
    return [features, labels], ProjectionHead(3, spectral_norm=True)([features, labels])


@pytest.mark.parametrize("case", ["spectral_norm", "conditional_bn", "self_modulated_bn", "attention", "projection"])
def test_each_layer_reloads_identically_with_safe_mode(case, tmp_path):
    inputs, outputs = _reload_case(case)
    model = keras.Model(inputs, outputs)
    data = []
    for tensor in inputs:
        shape = (3,) + tuple(tensor.shape[1:])
        if tensor.dtype == "int32":
            data.append(ops.convert_to_tensor([0, 2, 1], "int32"))
        else:
            data.append(ops.convert_to_tensor(RNG.normal(size=shape).astype("float32")))
    data = data if len(data) > 1 else data[0]
    model(data, training=True)  # move batch statistics and u away from their initial values
    for layer in model.layers:
        if isinstance(layer, SelfAttention2D):
            layer.gamma.assign(0.5)
    path = str(tmp_path / f"{case}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(reloaded(data, training=False)), _np(model(data, training=False)),
                               rtol=1e-6, atol=1e-6)
