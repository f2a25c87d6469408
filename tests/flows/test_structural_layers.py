"""kgen.flows structural layers and priors: ActNorm, InvertibleConv1x1, Squeeze, Split, TopPrior, Logit,
Shift, BatchNormFlow, GaussianPrior, LogisticPrior.

Every layer, with randomised parameters (zero-initialised layers are the identity, which would make the
checks vacuous): inverse(forward(x)) == x, and logdet == log|det| of the autodiff Jacobian (float32 on every
backend, float64 on TensorFlow). TensorFlow Probability is the oracle for the LU 1×1 conv and the priors.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

from kgen import backend as kb
from kgen.flows.layers.actnorm import ActNorm
from kgen.flows.layers.batchnorm import BatchNormFlow
from kgen.flows.layers.invconv import InvertibleConv1x1
from kgen.flows.layers.preprocessing import Logit, Shift
from kgen.flows.layers.split import Split, TopPrior
from kgen.flows.layers.squeeze import Squeeze
from kgen.flows.priors import GaussianPrior, LogisticPrior, get_prior


def _np(x):
    return ops.convert_to_numpy(x)


# name: (factory, example shape). Small enough for exact Jacobians (≤ 18 dimensions).
CASES = {
    "actnorm-vector": (lambda: ActNorm(), (6,)),
    "actnorm-image-logscale3": (lambda: ActNorm(logscale_factor=3.0), (2, 2, 4)),
    "invconv-lu-vector": (lambda: InvertibleConv1x1(lu=True, seed=1), (8,)),
    "invconv-lu-image": (lambda: InvertibleConv1x1(lu=True, seed=2), (2, 2, 4)),
    "invconv-full-vector": (lambda: InvertibleConv1x1(lu=False, seed=3), (8,)),
    "invconv-full-image": (lambda: InvertibleConv1x1(lu=False, seed=4), (2, 2, 4)),
    "squeeze-openai": (lambda: Squeeze(order="openai"), (2, 2, 4)),
    "squeeze-su": (lambda: Squeeze(order="su"), (4, 4, 1)),
    "squeeze-openai-factor3": (lambda: Squeeze(factor=3), (3, 3, 2)),
    "split-conditional-image": (lambda: Split(), (2, 2, 4)),
    "split-conditional-vector": (lambda: Split(), (6,)),
    "split-standard-image": (lambda: Split(prior="standard"), (2, 2, 4)),
    "top-prior-image": (lambda: TopPrior(), (2, 2, 3)),
    "top-prior-vector": (lambda: TopPrior(), (5,)),
    "logit": (lambda: Logit(alpha=0.05), (5,)),
    "shift-openai": (lambda: Shift(), (5,)),
    "shift-su-image": (lambda: Shift(offset=-0.5, scale=2.0), (2, 2, 2)),
    "batchnorm-inference-vector": (lambda: BatchNormFlow(), (6,)),
    "batchnorm-inference-image": (lambda: BatchNormFlow(), (2, 2, 4)),
}
IDENTITY_BY_DESIGN = {"split-standard-image"}  # concat(h, z) = x: nothing to randomise


def _make(name, dtype="float32", batch=3, seed=0):
    """The layer built on `(None,) + shape`, its parameters randomised, and an input batch."""
    factory, shape = CASES[name]
    layer = factory()
    layer.build((None,) + shape)
    rng = np.random.default_rng(seed + 1)
    for variable in layer.trainable_weights:
        # Perturb rather than overwrite: W of the 1×1 conv stays well-conditioned, zero-init weights get noise.
        variable.assign((_np(variable) + 0.3 * rng.normal(size=variable.shape)).astype(variable.dtype))
    if isinstance(layer, BatchNormFlow):
        layer.moving_mean.assign(rng.normal(size=shape[-1:]).astype(dtype))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, size=shape[-1:]).astype(dtype))
    rng = np.random.default_rng(seed)
    if isinstance(layer, Logit):
        x = rng.uniform(0.02, 0.98, size=(batch,) + shape)
    else:
        x = rng.normal(size=(batch,) + shape)
    return layer, ops.convert_to_tensor(x.astype(dtype))


def _encode(layer, x):
    """(flattened latent, logdet); for Split the latent is concat(h, ẑ), the map whose Jacobian counts."""
    batch = ops.shape(x)[0]
    if isinstance(layer, Split):
        h, z_hat, logdet = layer(x, training=False)
        return ops.concatenate([ops.reshape(h, (batch, -1)), ops.reshape(z_hat, (batch, -1))], axis=-1), logdet
    z, logdet = layer(x, training=False)
    return ops.reshape(z, (batch, -1)), logdet


def _decode(layer, x, flat):
    """Invert `_encode` back to the shape of `x`."""
    if isinstance(layer, Split):
        h_shape, z_shape = layer.output_shapes_for(tuple(x.shape[1:]))
        h_flat, z_flat = ops.split(flat, 2, axis=-1)
        return layer.inverse(ops.reshape(h_flat, (-1,) + h_shape), ops.reshape(z_flat, (-1,) + z_shape))
    z_shape = layer.output_shape_for(tuple(x.shape[1:]))
    return layer.inverse(ops.reshape(flat, (-1,) + tuple(z_shape)))


def _check_logdet(name, dtype, tol):
    layer, x = _make(name, dtype)
    flat, logdet = _encode(layer, x)
    assert tuple(logdet.shape) == (3,)
    jac = _np(kb.jacobian(lambda t: _encode(layer, t)[0], x)).astype("float64")
    sign, expected = np.linalg.slogdet(jac)
    assert np.all(sign != 0), "the Jacobian is singular"
    np.testing.assert_allclose(_np(logdet), expected, rtol=tol, atol=tol)
    return layer, x, flat


# ---------------------------------------------------------------- every layer: inverse and log-det

@pytest.mark.parametrize("name", CASES)
def test_inverse_undoes_forward_with_random_parameters(name):
    layer, x = _make(name)
    flat, _ = _encode(layer, x)
    x_back = _np(_decode(layer, x, flat))
    assert x_back.shape == tuple(x.shape)
    np.testing.assert_allclose(x_back, _np(x), atol=1e-5, rtol=0)
    if name not in IDENTITY_BY_DESIGN:  # negative control: the check above is not about an identity map
        assert np.max(np.abs(_np(flat) - _np(ops.reshape(x, (3, -1))))) > 1e-2


@pytest.mark.parametrize("name", CASES)
def test_logdet_matches_autodiff_jacobian(name):
    _check_logdet(name, "float32", tol=1e-4)


@pytest.mark.parametrize("name", CASES)
def test_logdet_matches_autodiff_jacobian_in_float64(name, float64):
    layer, x, flat = _check_logdet(name, "float64", tol=1e-6)
    np.testing.assert_allclose(_np(_decode(layer, x, flat)), _np(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_config_round_trip_rebuilds_the_same_layer(name):
    layer, _ = _make(name)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


# ---------------------------------------------------------------- ActNorm: data-dependent init

@pytest.mark.parametrize("logscale_factor", [1.0, 3.0])
def test_actnorm_initialize_from_standardises_each_channel(logscale_factor):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(64, 4, 4, 3)) * [0.5, 2.0, 4.0] + [1.0, -2.0, 3.0]).astype("float32")
    layer = ActNorm(logscale_factor=logscale_factor)
    layer.initialize_from(ops.convert_to_tensor(x))  # builds the layer as well
    assert float(_np(layer.initialized)) == 1.0
    z, logdet = layer(x)
    z = _np(z)
    np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
    np.testing.assert_allclose(_np(logdet), -16 * np.sum(np.log(x.std(axis=(0, 1, 2)))), rtol=1e-4)


def test_actnorm_second_initialize_is_a_no_op():
    rng = np.random.default_rng(1)
    layer = ActNorm()
    layer.initialize_from(ops.convert_to_tensor(rng.normal(size=(32, 5)).astype("float32")))
    before = [_np(w).copy() for w in layer.weights]
    layer.initialize_from(ops.convert_to_tensor(rng.normal(3.0, 7.0, size=(32, 5)).astype("float32")))
    for old, new in zip(before, layer.weights):
        np.testing.assert_array_equal(old, _np(new))


@keras.saving.register_keras_serializable(package="kgen_tests")
class ActNormModel(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = ActNorm()

    def build(self, input_shape):
        self.norm.build(input_shape)

    def call(self, x):
        return self.norm(x)[0]


def test_actnorm_survives_reload(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(2.0, 3.0, size=(32, 2, 2, 3)).astype("float32")
    model = ActNormModel()
    model.build((None, 2, 2, 3))
    model.norm.initialize_from(ops.convert_to_tensor(x))
    path = str(tmp_path / "actnorm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert float(_np(loaded.norm.initialized)) == 1.0
    # A reload that re-initialised from new data would change the output (rosinality/glow-pytorch #6).
    loaded.norm.initialize_from(ops.convert_to_tensor(rng.normal(-5.0, 0.1, size=(32, 2, 2, 3)).astype("float32")))
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), atol=1e-6)
    # The same through the layer API: config + weights into a fresh layer.
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model.norm))
    assert copy.built  # the build config travels with the layer config
    copy.set_weights(model.norm.get_weights())
    assert float(_np(copy.initialized)) == 1.0


# ---------------------------------------------------------------- InvertibleConv1x1

def test_invconv_starts_orthogonal_and_seeded():
    a, b, c = (InvertibleConv1x1(lu=lu, seed=seed) for lu, seed in [(True, 5), (False, 5), (True, 6)])
    for layer in (a, b, c):
        layer.build((None, 6))
    w = _np(a.matrix())
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-5)
    np.testing.assert_allclose(_np(b.matrix()), w, atol=1e-5)  # the same seed gives the same W, LU or not
    assert np.max(np.abs(_np(c.matrix()) - w)) > 1e-2
    p, lower, upper = (_np(m) for m in a.lu_factors())
    np.testing.assert_allclose(p @ lower @ upper, w, atol=1e-5)
    np.testing.assert_allclose(np.diag(lower), 1.0)
    np.testing.assert_allclose(np.triu(lower, 1), 0.0)
    np.testing.assert_allclose(np.tril(upper, -1), 0.0)


@pytest.mark.tensorflow
def test_invconv_lu_matches_tfp_scale_matvec_lu():
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfb = tfp.bijectors
    layer, x = _make("invconv-lu-vector")
    p, lower, upper = (_np(m) for m in layer.lu_factors())
    lower_upper = np.tril(lower, -1) + upper
    # TFP's permutation vector: lu_reconstruct(lu, perm) = P·L·U with P[perm[i], i] = 1 (found by experiment).
    perm = np.argmax(p, axis=0).astype("int32")
    matvec_lu = tfb.ScaleMatvecLU(lower_upper, perm)
    w = _np(layer.matrix())
    np.testing.assert_allclose(tf.linalg.lu_reconstruct(lower_upper, perm).numpy(), w, atol=1e-5)
    # TFP acts on column vectors (y = W·x); kgen on rows (z = x·W), i.e. the column map Wᵀ = Uᵀ·Lᵀ·Pᵀ.
    x_np = _np(x)
    np.testing.assert_allclose(matvec_lu.forward(x_np).numpy(), x_np @ w.T, atol=1e-5)
    transposed = tfb.Chain([
        tfb.ScaleMatvecTriL(upper.T),
        tfb.ScaleMatvecLinearOperator(tf.linalg.LinearOperatorLowerTriangular(lower), adjoint=True),
        tfb.Permute(perm),
    ])
    z, logdet = layer(x)
    np.testing.assert_allclose(_np(z), transposed.forward(x_np).numpy(), atol=1e-5)
    for bijector in (matvec_lu, transposed):
        np.testing.assert_allclose(_np(logdet), bijector.forward_log_det_jacobian(x_np, event_ndims=1).numpy(),
                                   atol=1e-5)


# ---------------------------------------------------------------- Squeeze

def test_squeeze_channel_orders_are_as_documented():
    # x[0, a, b, c] = 100c + 10a + b on one 2×2×2 block.
    x = np.array([[[[0, 100], [1, 101]], [[10, 110], [11, 111]]]], "float32")
    openai, _ = Squeeze(order="openai")(x)
    su, _ = Squeeze(order="su")(x)
    np.testing.assert_array_equal(_np(openai)[0, 0, 0], [0, 1, 10, 11, 100, 101, 110, 111])  # k = 4c + 2a + b
    np.testing.assert_array_equal(_np(su)[0, 0, 0], [0, 100, 1, 101, 10, 110, 11, 111])  # k = 4a + 2b + c
    # Spatial placement: output pixel (I, J) holds the block x[2I:2I+2, 2J:2J+2].
    image = (10 * np.arange(4)[:, None] + np.arange(4)[None, :]).astype("float32")[None, :, :, None]
    for order in ("openai", "su"):
        z, _ = Squeeze(order=order)(image)
        np.testing.assert_array_equal(_np(z)[0, 1, 0], [20, 21, 30, 31])


@pytest.mark.parametrize("order", ["openai", "su"])
def test_squeeze_is_a_permutation_of_entries(order):
    x = np.random.default_rng(0).permutation(2 * 4 * 6 * 3).reshape(2, 4, 6, 3).astype("float32")
    layer = Squeeze(order=order)
    z, logdet = layer(x)
    assert tuple(z.shape) == (2, 2, 3, 12) and layer.output_shape_for((4, 6, 3)) == (2, 3, 12)
    np.testing.assert_array_equal(np.sort(_np(z).ravel()), np.sort(x.ravel()))
    np.testing.assert_array_equal(_np(logdet), 0.0)


def test_squeeze_rejects_indivisible_sizes():
    with pytest.raises(ValueError, match="`x`"):
        Squeeze()(np.zeros((1, 3, 4, 2), "float32"))
    with pytest.raises(ValueError, match="`x`"):
        Squeeze().output_shape_for((4, 5, 1))
    with pytest.raises(ValueError, match="`x`"):
        Squeeze().build((None, 8))


# ---------------------------------------------------------------- Split and TopPrior

def test_split_starts_as_a_plain_split():
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 6)).astype("float32")
    h, z_hat, logdet = Split()(x)
    np.testing.assert_array_equal(_np(h), x[..., :3])
    np.testing.assert_array_equal(_np(z_hat), x[..., 3:])
    np.testing.assert_array_equal(_np(logdet), 0.0)
    assert Split().output_shapes_for((4, 4, 6)) == ((4, 4, 3), (4, 4, 3))


def test_split_standardised_latent_gives_openai_conditional_log_density():
    # log N(ẑ; 0, I) + logdet = log N(z; μ(h), exp(logs(h))²), the term of openai/glow's split2d.
    layer, x = _make("split-conditional-image")
    h, z_hat, logdet = layer(x)
    mean, logs = (_np(t) for t in layer._mean_logs(h))
    z = _np(x)[..., 2:]
    expected = np.sum(-0.5 * ((z - mean) / np.exp(logs)) ** 2 - logs - 0.5 * np.log(2 * np.pi), axis=(1, 2, 3))
    np.testing.assert_allclose(_np(GaussianPrior().log_prob(z_hat) + logdet), expected, rtol=1e-5)


def test_split_rejects_odd_channels_and_unknown_prior():
    with pytest.raises(ValueError, match="`x`"):
        Split().build((None, 2, 2, 3))
    with pytest.raises(ValueError, match="`x`"):
        Split().output_shapes_for((5,))
    with pytest.raises(ValueError, match="`prior`"):
        Split(prior="gaussian")


def test_top_prior_is_the_identity_at_init():
    x = np.random.default_rng(0).normal(size=(2, 2, 2, 4)).astype("float32")
    z, logdet = TopPrior()(x)
    np.testing.assert_array_equal(_np(z), x)
    np.testing.assert_array_equal(_np(logdet), 0.0)


# ---------------------------------------------------------------- Logit and Shift

def test_logit_values_and_arguments():
    y, logdet = Logit(alpha=0.05)(np.array([[0.0, 0.5, 1.0]], "float32"))
    np.testing.assert_allclose(_np(y), [[math.log(0.05 / 0.95), 0.0, math.log(0.95 / 0.05)]], rtol=1e-5, atol=1e-6)
    p = np.array([0.05, 0.5, 0.95])
    np.testing.assert_allclose(_np(logdet), [np.sum(np.log(0.9) - np.log(p) - np.log1p(-p))], rtol=1e-5)
    for alpha in (0.0, 0.5, -0.1, 0.7):
        with pytest.raises(ValueError, match="`alpha`"):
            Logit(alpha=alpha)
    with pytest.raises(TypeError, match="`alpha`"):
        Logit(alpha="0.05")


def test_shift_logdet_counts_every_entry():
    _, logdet = Shift(offset=-0.5, scale=2.0)(np.ones((2, 3, 3, 2), "float32"))
    np.testing.assert_allclose(_np(logdet), [18 * math.log(2.0)] * 2, rtol=1e-6)
    with pytest.raises(ValueError, match="`scale`"):
        Shift(scale=0.0)


# ---------------------------------------------------------------- BatchNormFlow

def test_batchnorm_training_uses_batch_statistics_and_updates_moving_ones():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(32, 2, 2, 3)) * [0.5, 1.0, 3.0] + [1.0, -1.0, 2.0]).astype("float32")
    layer = BatchNormFlow(momentum=0.9, epsilon=1e-4)
    z, logdet = layer(x, training=True)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(_np(layer.moving_mean), 0.1 * mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(_np(layer.moving_variance), 0.9 + 0.1 * var, rtol=1e-4)
    np.testing.assert_allclose(_np(z).mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(_np(z).std(axis=(0, 1, 2)), np.sqrt(var / (var + 1e-4)), rtol=1e-4)
    np.testing.assert_allclose(_np(logdet), -0.5 * 4 * np.sum(np.log(var + 1e-4)), rtol=1e-4)
    # Inference mode reads the moving statistics, untouched by the call.
    before = _np(layer.moving_mean).copy()
    layer(x)
    np.testing.assert_array_equal(_np(layer.moving_mean), before)


@keras.saving.register_keras_serializable(package="kgen_tests")
class BatchNormNLLModel(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = BatchNormFlow(momentum=0.5)

    def build(self, input_shape):
        self.norm.build(input_shape)

    def call(self, x, training=None):
        z, logdet = self.norm(x, training=training)
        return 0.5 * ops.sum(z * z, axis=-1) - logdet


def test_batchnorm_moving_statistics_update_inside_fit():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 4)).astype("float32")
    model = BatchNormNLLModel()
    model.build((None, 4))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=lambda _, nll: ops.mean(nll))
    model.fit(x, np.zeros(64, "float32"), batch_size=32, epochs=1, verbose=0, shuffle=False)
    moving_mean = _np(model.norm.moving_mean)
    expected = 0.25 * x[:32].mean(axis=0) + 0.5 * x[32:].mean(axis=0)  # two steps of momentum 0.5 from 0
    np.testing.assert_allclose(moving_mean, expected, rtol=1e-4)


def test_batchnorm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`momentum`"):
        BatchNormFlow(momentum=1.0)
    with pytest.raises(ValueError, match="`epsilon`"):
        BatchNormFlow(epsilon=0.0)


# ---------------------------------------------------------------- priors

def test_gaussian_log_prob_matches_closed_form():
    z = np.random.default_rng(0).normal(size=(4, 2, 2, 3)).astype("float32")
    expected = np.sum(-0.5 * z.astype("float64") ** 2 - 0.5 * np.log(2 * np.pi), axis=(1, 2, 3))
    np.testing.assert_allclose(_np(GaussianPrior().log_prob(z)), expected, rtol=1e-5)


def test_logistic_log_prob_matches_closed_form():
    z = np.random.default_rng(0).normal(scale=3.0, size=(4, 5)).astype("float32")
    z64 = z.astype("float64")
    expected = np.sum(-z64 - 2.0 * np.log1p(np.exp(-z64)), axis=1)
    np.testing.assert_allclose(_np(LogisticPrior().log_prob(z)), expected, rtol=1e-5)


@pytest.mark.tensorflow
def test_priors_match_tfp_distributions():
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    z = np.random.default_rng(1).normal(scale=2.0, size=(6, 7)).astype("float32")
    for prior, oracle in [(GaussianPrior(), tfd.Normal(0.0, 1.0)), (LogisticPrior(), tfd.Logistic(0.0, 1.0))]:
        expected = np.sum(oracle.log_prob(z).numpy(), axis=1)
        np.testing.assert_allclose(_np(prior.log_prob(z)), expected, rtol=1e-5)


@pytest.mark.parametrize("prior, unit_std", [(GaussianPrior(), 1.0), (LogisticPrior(), math.pi / math.sqrt(3))])
def test_prior_samples_scale_with_temperature(prior, unit_std):
    shape = (2000, 8)
    np.testing.assert_array_equal(_np(prior.sample(shape, seed=keras.random.SeedGenerator(0), temperature=0.0)), 0.0)
    base = _np(prior.sample(shape, seed=keras.random.SeedGenerator(0), temperature=1.0))
    cold = _np(prior.sample(shape, seed=keras.random.SeedGenerator(0), temperature=0.5))
    np.testing.assert_allclose(cold, 0.5 * base, rtol=1e-6, atol=1e-6)  # the same noise, scaled by T
    assert np.all(np.isfinite(base))
    assert abs(base.std() / unit_std - 1.0) < 0.05
    with pytest.raises(ValueError, match="`temperature`"):
        prior.sample(shape, seed=keras.random.SeedGenerator(0), temperature=-1.0)


def test_get_prior_resolves_names_and_serialises():
    assert isinstance(get_prior("gaussian"), GaussianPrior)
    assert isinstance(get_prior("logistic"), LogisticPrior)
    prior = LogisticPrior()
    assert get_prior(prior) is prior
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(prior))
    assert isinstance(copy, LogisticPrior)
    with pytest.raises(ValueError, match="`prior`"):
        get_prior("cauchy")


# ---------------------------------------------------------------- arguments

def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="`lu`"):
        InvertibleConv1x1(lu="yes")
    with pytest.raises(ValueError, match="`seed`"):
        InvertibleConv1x1(seed=-1)
    with pytest.raises(ValueError, match="`order`"):
        Squeeze(order="tf")
    with pytest.raises(ValueError, match="`factor`"):
        Squeeze(factor=1)
    with pytest.raises(ValueError, match="`logscale_factor`"):
        ActNorm(logscale_factor=0.0)
    with pytest.raises(ValueError, match="`lu_factors`"):
        layer = InvertibleConv1x1(lu=False)
        layer.build((None, 3))
        layer.lu_factors()


@pytest.mark.parametrize("lower", [True, False])
def test_triangular_inverse_matches_numpy(lower):
    from kgen.flows.layers.invconv import triangular_inverse

    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 12))
    a = np.tril(a) if lower else np.triu(a)
    a[np.diag_indices(12)] = rng.uniform(0.5, 2.0, 12) * rng.choice([-1, 1], 12)
    got = keras.ops.convert_to_numpy(triangular_inverse(keras.ops.convert_to_tensor(a, "float32"), lower=lower))
    np.testing.assert_allclose(got, np.linalg.inv(a), atol=1e-4)
    assert np.abs(got @ a - np.eye(12)).max() < 1e-4
