"""Coupling, permutation and scale layers: invertible, exact log-dets, Su's NICE variant, TFP parity, saving."""

import keras
import numpy as np
import pytest
from keras import ops

from kgen import backend as kb
from kgen.flows.layers.coupling import AdditiveCoupling, AffineCoupling
from kgen.flows.layers.permutation import Permute
from kgen.flows.layers.scale import Scale

HIDDEN = (8, 8)
FILTERS = 8
VEC, IMG_CHANNEL, IMG_CHECKER = (8,), (2, 2, 4), (2, 2, 2)  # both conv networks then see 2 input channels

# id -> (factory, event shape). Every option that changes the computation appears at least once.
CASES = {
    "additive-halves": (lambda: AdditiveCoupling(hidden=HIDDEN), VEC),
    "additive-interleave-parity1": (lambda: AdditiveCoupling("interleave", hidden=HIDDEN, parity=1), VEC),
    "additive-su-nice": (lambda: AdditiveCoupling("interleave", hidden=HIDDEN, subtract=True,
                                                  output_activation="relu"), VEC),
    "additive-channel-conv-output-scale": (lambda: AdditiveCoupling("channel", filters=FILTERS,
                                                                    output_scale=True), IMG_CHANNEL),
    "additive-checkerboard-parity1": (lambda: AdditiveCoupling("checkerboard", filters=FILTERS, parity=1),
                                      IMG_CHECKER),
    **{
        f"affine-halves-{fn}-{order}": (
            lambda fn=fn, order=order: AffineCoupling(hidden=HIDDEN, scale_fn=fn, order=order), VEC)
        for fn in ("exp", "tanh_exp", "sigmoid") for order in ("scale_then_shift", "shift_then_scale")
    },
    "affine-interleave-parity1-tanh_exp": (lambda: AffineCoupling("interleave", hidden=HIDDEN, parity=1,
                                                                  scale_fn="tanh_exp"), VEC),
    "affine-halves-conv-output-scale": (lambda: AffineCoupling("halves", filters=FILTERS, output_scale=True),
                                        IMG_CHANNEL),
    "affine-channel-parity1-sigmoid-shift_then_scale": (
        lambda: AffineCoupling("channel", filters=FILTERS, parity=1, scale_fn="sigmoid",
                               order="shift_then_scale"), IMG_CHANNEL),
    "affine-checkerboard-exp": (lambda: AffineCoupling("checkerboard", filters=FILTERS), IMG_CHECKER),
    "affine-checkerboard-parity1-tanh_exp": (lambda: AffineCoupling("checkerboard", filters=FILTERS, parity=1,
                                                                    scale_fn="tanh_exp"), IMG_CHECKER),
    "permute-reverse": (lambda: Permute("reverse"), VEC),
    "permute-random": (lambda: Permute("random", seed=1), VEC),
    "permute-random-channels": (lambda: Permute("random", seed=2), IMG_CHANNEL),
    "scale-zeros": (lambda: Scale(), VEC),
    "scale-glorot_normal-image": (lambda: Scale("glorot_normal"), IMG_CHANNEL),
}


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _data(shape, batch=2, seed=0, dtype="float32"):
    return np.random.default_rng(seed).normal(size=(batch,) + shape).astype(dtype)


def _randomized(name, batch=2, dtype="float32"):
    """The layer of case `name`, built, with every trainable weight redrawn (zero-init would make tests vacuous)."""
    factory, shape = CASES[name]
    layer = factory()
    x = _data(shape, batch, dtype=dtype)
    layer(x)
    rng = np.random.default_rng(1)
    for weight in layer.trainable_weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype(weight.dtype))
    return layer, x


@keras.saving.register_keras_serializable(package="kgen_tests")
class OneLayerFlow(keras.Model):
    """A subclassed model holding one flow layer, as kgen's flow models hold theirs: the `.keras` round trip."""

    def __init__(self, flow, **kwargs):
        super().__init__(**kwargs)
        self.flow = flow

    def build(self, input_shape):
        if not self.flow.built:  # deserialisation already built it from its build config
            self.flow.build(input_shape)

    def call(self, x):
        return self.flow(x)

    def get_config(self):
        return {"name": self.name, "flow": keras.saving.serialize_keras_object(self.flow)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(keras.saving.deserialize_keras_object(config.pop("flow")), **config)


def _save_and_load(layer, x, path):
    model = OneLayerFlow(layer)
    model(x)
    model.save(path)
    return model, keras.saving.load_model(path, safe_mode=True)


def _autodiff_logdet(layer, x):
    """log|det| of the autodiff Jacobian of the flattened per-example map, in float64 numpy."""
    batch, shape = x.shape[0], x.shape[1:]

    def flat_forward(t):
        z, _ = layer(ops.reshape(t, (-1,) + shape))
        return ops.reshape(z, (batch, -1))

    jac = _np(kb.jacobian(flat_forward, ops.convert_to_tensor(x.reshape(batch, -1)))).astype("float64")
    sign, logabsdet = np.linalg.slogdet(jac)
    assert np.all(sign != 0), "the Jacobian is singular"
    return logabsdet


# ---------------------------------------------------------------- every layer, every option

@pytest.mark.parametrize("name", list(CASES))
def test_layer_is_invertible_with_random_weights(name):
    layer, x = _randomized(name)
    z, logdet = layer(x)
    assert tuple(logdet.shape) == (x.shape[0],)
    assert np.max(np.abs(_np(z) - x)) > 1e-2, "negative control: the randomised layer must not be the identity"
    np.testing.assert_allclose(_np(layer.inverse(z)), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(CASES))
def test_logdet_equals_autodiff_jacobian(name):
    layer, x = _randomized(name)
    _, logdet = layer(x)
    np.testing.assert_allclose(_np(logdet), _autodiff_logdet(layer, x), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_logdet_equals_autodiff_jacobian_in_float64(name, float64):
    layer, x = _randomized(name, batch=2, dtype="float64")
    z, logdet = layer(x)
    assert z.dtype == "float64" and logdet.dtype == "float64"
    np.testing.assert_allclose(_np(logdet), _autodiff_logdet(layer, x), atol=1e-6, rtol=0)
    np.testing.assert_allclose(_np(layer.inverse(z)), x, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", list(CASES))
def test_config_round_trip_gives_the_same_map(name):
    layer, x = _randomized(name)
    for clone in (layer.__class__.from_config(layer.get_config()),
                  keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer),
                                                        safe_mode=True)):
        assert type(clone) is type(layer)
        if not clone.built:  # deserialize_keras_object builds from the saved build config
            clone.build((None,) + x.shape[1:])
        assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
        clone.set_weights(layer.get_weights())
        for got, want in zip(clone(x), layer(x)):
            np.testing.assert_allclose(_np(got), _np(want), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["affine-checkerboard-parity1-tanh_exp", "additive-su-nice", "permute-random",
                                  "scale-glorot_normal-image"])
def test_layer_survives_keras_file_reload(name, tmp_path):
    layer, x = _randomized(name)
    model, loaded = _save_and_load(layer, x, tmp_path / "flow.keras")
    assert type(loaded.flow) is type(layer)
    for got, want in zip(loaded(x), model(x)):
        np.testing.assert_allclose(_np(got), _np(want), atol=1e-6, rtol=0)
    z, _ = loaded(x)
    np.testing.assert_allclose(_np(loaded.flow.inverse(z)), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["additive-halves", "scale-zeros"])
def test_layer_builds_a_functional_model(name):
    layer, x = _randomized(name)
    inputs = keras.Input(VEC)
    model = keras.Model(inputs, layer(inputs))
    for got, want in zip(model(x), layer(x)):
        np.testing.assert_allclose(_np(got), _np(want), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- couplings

@pytest.mark.parametrize("name", ["additive-halves", "affine-halves-exp-scale_then_shift",
                                  "affine-halves-tanh_exp-shift_then_scale", "affine-checkerboard-exp"])
def test_coupling_starts_as_the_identity(name):
    factory, shape = CASES[name]
    x = _data(shape)
    z, logdet = factory()(x)
    np.testing.assert_array_equal(_np(z), x)
    np.testing.assert_array_equal(_np(logdet), 0.0)


def test_sigmoid_coupling_starts_as_a_fixed_contraction():
    # s = sigmoid(0 + 2) on each of the 4 transformed features (Glow's choice: not the identity at init).
    x = _data(VEC)
    z, logdet = AffineCoupling(hidden=HIDDEN, scale_fn="sigmoid")(x)
    s = 1.0 / (1.0 + np.exp(-2.0))
    np.testing.assert_allclose(_np(z), np.concatenate([x[:, :4], s * x[:, 4:]], axis=1), rtol=1e-6)
    np.testing.assert_allclose(_np(logdet), 4 * np.log(s), rtol=1e-6)


def test_su_nice_encoder_subtracts_a_nonnegative_m_and_the_decoder_adds_it():
    layer, x = _randomized("additive-su-nice", batch=16)
    m = _np(layer.net(x[:, 0::2]))
    assert m.min() >= 0.0 and m.max() > 0.0, "Su's m ends in ReLU"
    z = _np(layer(x)[0])
    np.testing.assert_array_equal(z[:, 0::2], x[:, 0::2])
    np.testing.assert_allclose(z[:, 1::2], x[:, 1::2] - m, atol=1e-6)
    decoded = _np(layer.inverse(ops.convert_to_tensor(z)))
    np.testing.assert_allclose(decoded[:, 1::2], z[:, 1::2] + m, atol=1e-6)


def test_additive_nice_paper_and_su_signs_are_mirror_images():
    paper, x = _randomized("additive-interleave-parity1")
    su = AdditiveCoupling("interleave", hidden=HIDDEN, parity=1, subtract=True)
    su.build(x.shape)
    su.set_weights(paper.get_weights())
    np.testing.assert_allclose(_np(paper(x)[0]) - x, x - _np(su(x)[0]), atol=1e-6)


def test_checkerboard_keeps_the_conditioning_pixels_and_transforms_the_others():
    layer, x = _randomized("affine-checkerboard-exp")
    z = _np(layer(x)[0])
    rows, cols = np.indices(x.shape[1:3])
    kept = (rows + cols) % 2 == 1  # parity 0: b(i, j) = (i + j) mod 2 marks the conditioning pixels
    np.testing.assert_array_equal(z[:, kept], x[:, kept])
    assert np.all(np.abs(z[:, ~kept] - x[:, ~kept]) > 0)


def test_tanh_exp_coupling_can_leave_its_identity_initialisation():
    # RealNVP's code starts the tanh factor at 0; with a zero last layer both gradients would vanish.
    layer = AffineCoupling(hidden=HIDDEN, scale_fn="tanh_exp")
    x = ops.convert_to_tensor(_data(VEC))
    layer(x)
    last_kernel = layer.net.layers[-1].kernel

    def nll():
        z, logdet = layer(x)
        return ops.mean(0.5 * ops.sum(z * z, axis=-1) - logdet)

    _, (grad,) = kb.gradients(nll, [last_kernel])
    assert np.max(np.abs(_np(grad)[:, 4:])) > 1e-3, "the log-scale outputs receive no gradient"


@pytest.mark.tensorflow
def test_affine_coupling_matches_tfp_real_nvp():
    import tensorflow_probability as tfp

    layer, x = _randomized("affine-halves-exp-scale_then_shift", batch=5)
    # TFP's bijector runs latent→data as `forward`; with the same network its y = x·exp(log s) + t on the
    # second half is exactly this layer's data→latent map.
    real_nvp = tfp.bijectors.RealNVP(
        num_masked=VEC[0] // 2,
        shift_and_log_scale_fn=lambda x0, units, **_: layer.shift_and_log_scale(layer.net(x0)))
    z, logdet = layer(x)
    np.testing.assert_allclose(_np(z), _np(real_nvp.forward(x)), atol=1e-5, rtol=0)
    np.testing.assert_allclose(_np(layer.inverse(z)), _np(real_nvp.inverse(z)), atol=1e-5, rtol=0)
    np.testing.assert_allclose(_np(logdet), _np(real_nvp.forward_log_det_jacobian(x, event_ndims=1)),
                               atol=1e-5, rtol=0)


# ---------------------------------------------------------------- permutation and scale

def test_permute_reverse_and_random_are_the_documented_orders():
    x = _data(VEC)
    np.testing.assert_array_equal(_np(Permute("reverse")(x)[0]), x[:, ::-1])
    order = np.random.default_rng(5).permutation(VEC[0])
    np.testing.assert_array_equal(_np(Permute("random", seed=5)(x)[0]), x[:, order])
    images = _data(IMG_CHANNEL)
    np.testing.assert_array_equal(_np(Permute("reverse")(images)[0]), images[..., ::-1])


def test_permute_keeps_its_stored_order_through_a_reload(tmp_path):
    layer = Permute("random", seed=0)
    x = _data(VEC)
    layer.build(x.shape)
    assert not layer.permutation.trainable and "int32" in str(layer.permutation.dtype)
    custom = np.array([3, 1, 4, 0, 7, 5, 2, 6], "int32")  # not what seed 0 draws: proves the weight is loaded
    layer.permutation.assign(custom)
    _, loaded = _save_and_load(layer, x, tmp_path / "permute.keras")
    np.testing.assert_array_equal(_np(loaded(x)[0]), x[:, custom])


def test_scale_zeros_is_the_identity_and_glorot_normal_follows_su():
    x = _data(VEC)
    z, logdet = Scale()(x)
    np.testing.assert_array_equal(_np(z), x)
    np.testing.assert_array_equal(_np(logdet), 0.0)
    layer = Scale("glorot_normal")
    layer.build((None, 4000))
    # Su's kernel is (1, D): std √(2 / (1 + D)).
    np.testing.assert_allclose(np.std(_np(layer.log_scale)), np.sqrt(2.0 / 4001), rtol=0.05)


def test_scale_data_init_whitens_each_dimension_and_survives_reload(tmp_path):
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(512, 16)) * np.linspace(0.1, 5.0, 16) + 2.0).astype("float32")
    layer = Scale(data_init=True)
    assert layer.data_init
    layer.build(x.shape)
    assert float(_np(layer.initialized)) == 0.0
    layer.initialize_from(x)
    assert float(_np(layer.initialized)) == 1.0
    z, logdet = layer(x)
    np.testing.assert_allclose(np.std(_np(z), axis=0), 1.0, rtol=1e-4)
    np.testing.assert_allclose(_np(logdet), -np.sum(np.log(np.std(x, axis=0))), rtol=1e-4)
    reloaded = _save_and_load(layer, x, tmp_path / "scale.keras")[1].flow
    assert reloaded.data_init
    assert float(_np(reloaded.initialized)) == 1.0
    np.testing.assert_array_equal(_np(reloaded.log_scale), _np(layer.log_scale))


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("make, argument", [
    (lambda: AffineCoupling(partition="random"), "partition"),
    (lambda: AdditiveCoupling(partition="stripes"), "partition"),
    (lambda: AffineCoupling(scale_fn="softplus"), "scale_fn"),
    (lambda: AffineCoupling(order="shift"), "order"),
    (lambda: AffineCoupling(network="resnet"), "network"),
    (lambda: AffineCoupling(parity=2), "parity"),
    (lambda: AdditiveCoupling(output_activation="nope"), "output_activation"),
    (lambda: Permute(mode="shuffle"), "mode"),
    (lambda: Permute(seed=-1), "seed"),
    (lambda: Scale(init="ones"), "init"),
])
def test_unknown_options_raise_value_error_naming_the_argument(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()


@pytest.mark.parametrize("make, argument", [
    (lambda: AffineCoupling(parity=True), "parity"),
    (lambda: AffineCoupling(hidden="wide"), "hidden"),
    (lambda: AffineCoupling(filters=8.0), "filters"),
    (lambda: AdditiveCoupling(subtract="yes"), "subtract"),
    (lambda: Scale(data_init=1), "data_init"),
])
def test_wrongly_typed_options_raise_type_error_naming_the_argument(make, argument):
    with pytest.raises(TypeError, match=f"`{argument}`"):
        make()


@pytest.mark.parametrize("make, shape, match", [
    (lambda: AdditiveCoupling(hidden=HIDDEN), (3, 7), "`x`.*even"),
    (lambda: AffineCoupling("interleave", hidden=HIDDEN), (3, 5), "`x`.*even"),
    (lambda: AffineCoupling("channel", filters=FILTERS), (3, 2, 2, 3), "`x`.*even"),
    (lambda: AffineCoupling("checkerboard", hidden=HIDDEN), (3, 8), "checkerboard.*`x`"),
    (lambda: AffineCoupling("channel", hidden=HIDDEN), (3, 8), "channel.*`x`"),
    (lambda: AffineCoupling(network="conv"), (3, 8), "network"),
    (lambda: AffineCoupling(network="mlp"), (3, 2, 2, 4), "network"),
    (lambda: AffineCoupling(hidden=HIDDEN), (3, 2, 4), "`x`"),
])
def test_bad_input_shapes_raise_value_error_at_build(make, shape, match):
    with pytest.raises(ValueError, match=match):
        make()(np.zeros(shape, "float32"))
