"""kgen.backend.call_network: the plain call on JAX / TF; on torch a TorchScript replay of stateless networks that
must give the eager call's outputs, parameter gradients and double-backprop gradients, and must leave stateful
networks (BatchNorm, dropout) to the eager call."""

import numpy as np
import pytest
import keras
from keras import ops

import kgen
from kgen import backend as kb
from kgen.gans.networks import mlp


def _np(x):
    return ops.convert_to_numpy(x)


def _batchnorm_net():
    inputs = keras.Input((3,))
    h = keras.layers.BatchNormalization()(keras.layers.Dense(8)(inputs))
    return keras.Model(inputs, keras.layers.Dense(1)(h))


def _dropout_net():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dropout(0.5, seed=1)(inputs)))


class _ReadsANumber(keras.layers.Layer):
    """Scales by max(x) read as a Python float: a trace would freeze the number (TracerWarning)."""

    def call(self, x):
        return x * float(ops.convert_to_numpy(ops.max(x)))


def _traces(network):
    if kb.BACKEND != "torch":
        return {}
    from kgen.backend import _torch

    return _torch._TRACES.get(network, {})


def test_call_network_equals_the_plain_call():
    net = mlp([2, 3], 2, seed=0)
    inputs = [np.random.default_rng(0).normal(size=(5, 2)).astype("float32"),
              np.random.default_rng(1).normal(size=(5, 3)).astype("float32")]
    for training in (True, False):
        np.testing.assert_allclose(_np(kb.call_network(net, inputs, training=training)),
                                   _np(net(inputs, training=training)), rtol=1e-6, atol=1e-6)


def test_call_network_rejects_a_non_layer():
    with pytest.raises(TypeError, match="network"):
        kb.call_network(lambda x: x, np.zeros((1, 2), "float32"))


@pytest.mark.torch
def test_torch_replay_gives_the_eager_outputs_and_gradients_including_double_backprop():
    import torch

    net = mlp(3, 1, seed=0)
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(16, 3)).astype("float32"))
    kernel = net.trainable_variables[0]

    def penalty_grad(call):
        # ∇_W ‖∇ₓ Σ D(x)‖², the R1 penalty's weight gradient (double backprop).
        xr = x.clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(call(xr).sum(), xr, create_graph=True)
        return torch.autograd.grad((gx ** 2).sum(), kernel.value)[0]

    for step in range(6):  # several calls: the TorchScript executor re-optimises after its profiling runs
        replay = lambda t: kb.call_network(net, t, training=True)  # noqa: E731
        eager = lambda t: net(t, training=True)  # noqa: E731
        np.testing.assert_allclose(_np(replay(x)), _np(eager(x)), rtol=1e-6, atol=1e-6)
        g_replay = torch.autograd.grad(replay(x).sum(), kernel.value)[0]
        g_eager = torch.autograd.grad(eager(x).sum(), kernel.value)[0]
        np.testing.assert_allclose(_np(g_replay), _np(g_eager), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_np(penalty_grad(replay)), _np(penalty_grad(eager)), rtol=1e-5, atol=1e-6)
        kernel.assign(kernel.value * 1.1)  # in-place, as the optimizers do: the replay must see it
    assert [trace is not None for trace in _traces(net).values()] == [True]  # one shape, one training flag


@pytest.mark.torch
def test_torch_replay_of_a_list_input_network_and_one_trace_per_shape():
    net = mlp([2, 3], 1, seed=0)
    rng = np.random.default_rng(0)
    for batch in (4, 4, 7):
        inputs = [rng.normal(size=(batch, 2)).astype("float32"), rng.normal(size=(batch, 3)).astype("float32")]
        np.testing.assert_allclose(_np(kb.call_network(net, inputs, training=True)), _np(net(inputs)),
                                   rtol=1e-6, atol=1e-6)
    assert len(_traces(net)) == 2 and all(trace is not None for trace in _traces(net).values())


@pytest.mark.torch
def test_torch_batchnorm_replays_with_its_statistics_passed_through_and_kept_out_of_autograd():
    import torch

    traced_net, eager_net = _batchnorm_net(), _batchnorm_net()
    eager_net.set_weights(traced_net.get_weights())
    rng = np.random.default_rng(0)
    for step in range(4):  # the statistics move every call: each replay must read the latest ones
        x = torch.as_tensor((step + 1.0) * rng.normal(size=(8, 3)).astype("float32"))
        out, expected = kb.call_network(traced_net, x, training=True), eager_net(x, training=True)
        np.testing.assert_allclose(_np(out), _np(expected), rtol=1e-5, atol=1e-6)
        for a, b in zip(traced_net.trainable_variables, eager_net.trainable_variables):
            np.testing.assert_allclose(_np(torch.autograd.grad(out.sum(), a.value, retain_graph=True)[0]),
                                       _np(torch.autograd.grad(expected.sum(), b.value, retain_graph=True)[0]),
                                       rtol=1e-5, atol=1e-6)
    for a, b in zip(traced_net.non_trainable_variables, eager_net.non_trainable_variables, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6, atol=1e-7)
        assert a.value.is_leaf and not a.value.requires_grad, a.path
    assert not np.allclose(_np(traced_net.non_trainable_variables[0]), 0.0)  # they did move
    x = torch.as_tensor(rng.normal(size=(8, 3)).astype("float32"))  # inference: the moving statistics
    np.testing.assert_allclose(_np(kb.call_network(traced_net, x, training=False)), _np(eager_net(x, training=False)),
                               rtol=1e-5, atol=1e-6)
    assert [trace is not None for trace in _traces(traced_net).values()] == [True, True]


@pytest.mark.torch
def test_torch_dropout_runs_eagerly_and_the_refused_trace_leaves_its_seed_where_it_was():
    traced_net, eager_net = _dropout_net(), _dropout_net()
    eager_net.set_weights(traced_net.get_weights())  # the seed generators' states included
    x = np.ones((8, 3), "float32")
    for _ in range(2):
        np.testing.assert_array_equal(_np(kb.call_network(traced_net, x, training=True)),
                                      _np(eager_net(x, training=True)))
    assert list(_traces(traced_net).values()) == [None]


@pytest.mark.torch
def test_torch_negative_control_a_raw_trace_of_batchnorm_pulls_its_statistics_into_autograd():
    # Why the rule above exists: the trace drops Keras's no_grad around `assign`.
    import torch

    from kgen.backend._torch import _NetworkCall

    net = _batchnorm_net()
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(8, 3)).astype("float32"))
    traced = torch.jit.trace(_NetworkCall(net, True, False, 1, False, 0), (x,), check_trace=False)  # a plain call
    traced(x)
    moving_mean = next(v for v in net.non_trainable_variables if "moving_mean" in v.path)
    assert moving_mean.value.requires_grad and not moving_mean.value.is_leaf


@pytest.mark.torch
def test_torch_a_network_that_reads_a_tensor_as_a_number_runs_eagerly():
    inputs = keras.Input((2,))
    net = keras.Model(inputs, _ReadsANumber()(keras.layers.Dense(2)(inputs)))
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(4, 2)).astype("float32"), 3.0 * rng.normal(size=(4, 2)).astype("float32")
    kb.call_network(net, x1, training=True)
    np.testing.assert_allclose(_np(kb.call_network(net, x2, training=True)), _np(net(x2)), rtol=1e-6)
    assert list(_traces(net).values()) == [None]


@pytest.mark.torch
def test_torch_a_frozen_data_read_that_no_warning_reported_is_caught_on_perturbed_inputs(monkeypatch):
    from kgen.backend import _torch

    monkeypatch.setattr(_torch, "_reads_a_shape", lambda warning: True)  # as if every TracerWarning were harmless
    inputs = keras.Input((2,))
    net = keras.Model(inputs, _ReadsANumber()(keras.layers.Dense(2)(inputs)))
    x = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    np.testing.assert_allclose(_np(kb.call_network(net, x, training=True)), _np(net(x)), rtol=1e-6)
    assert list(_traces(net).values()) == [None]  # the replay agreed on x itself, not on the perturbed x


@pytest.mark.torch
def test_torch_no_replay_inside_a_stateless_scope_or_a_torch_compile_capture(monkeypatch):
    import torch

    net = mlp(2, 1, seed=0)
    x = np.ones((2, 2), "float32")
    values = [v.value * 0.0 for v in net.trainable_variables]
    with keras.StatelessScope(state_mapping=list(zip(net.trainable_variables, values))):
        np.testing.assert_array_equal(_np(kb.call_network(net, x, training=True)), 0.0)  # the scope's weights
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    kb.call_network(net, x, training=True)
    assert _traces(net) == {}
    monkeypatch.undo()
    kb.call_network(net, x, training=True)
    assert list(_traces(net)) != []  # negative control: outside both, the call is traced


@pytest.mark.torch
def test_torch_tracing_can_be_switched_off():
    net = mlp(2, 1, seed=0)
    previous = kb.set_network_tracing(False)
    try:
        kb.call_network(net, np.zeros((2, 2), "float32"), training=True)
        assert _traces(net) == {}
    finally:
        kb.set_network_tracing(previous)
    assert previous is True


def _fit_weights(model_fn, tracing, steps=4):
    previous = kb.set_network_tracing(tracing)
    try:
        kgen.set_seed(0)
        model = model_fn()
        x = kgen.datasets.toy2d("ring8", 64 * steps, seed=0)
        model.fit(x, batch_size=64, epochs=1, verbose=0, shuffle=False)
        return [_np(v) for v in model.trainable_variables]
    finally:
        kb.set_network_tracing(previous)


def _gan():
    model = kgen.gans.GAN(mlp(2, 2, seed=1), mlp(2, 1, seed=2), loss="gan", r1_weight=0.1)
    model.compile(optimizers={"generator": keras.optimizers.Adam(1e-3), "discriminator": keras.optimizers.Adam(1e-3)})
    return model


def _energy_gan():
    model = kgen.gans.EnergyGAN(mlp(2, 2, seed=1), mlp(2, 1, seed=2, activation="leaky_relu"), entropy="jsd")
    model.compile(optimizers={name: keras.optimizers.Adam(1e-3)
                              for name in ("generator", "discriminator", "statistics_network")})
    return model


def _dcgan():
    from kgen.gans import networks

    g = networks.generator((8, 8, 1), 8, norm="selfmod", spectral_norm=True, attention=True, width=8)
    d = networks.discriminator((8, 8, 1), spectral_norm=True, attention=True, width=8)
    model = kgen.gans.GAN(g, d, loss="hinge", seed=0)
    model.compile(optimizers={"generator": keras.optimizers.Adam(1e-3), "discriminator": keras.optimizers.Adam(1e-3)})
    return model


@pytest.mark.torch
def test_torch_fit_with_traced_selfmod_sn_attention_networks_equals_fit_without():
    def weights(tracing, steps):
        previous = kb.set_network_tracing(tracing)
        try:
            kgen.set_seed(0)
            model = _dcgan()
            x = np.random.default_rng(0).uniform(-1, 1, size=(8 * steps, 8, 8, 1)).astype("float32")
            model.fit(x, batch_size=8, epochs=1, verbose=0, shuffle=False)
            traced = [t is not None for net in (model.generator, model.discriminator) for t in _traces(net).values()]
            return traced, [_np(v) for v in model.variables]
        finally:
            kb.set_network_tracing(previous)

    (used, traced), (_, eager) = weights(True, 3), weights(False, 3)
    assert used and all(used)  # batch-norm statistics and spectral-norm vectors: replayed, not eager
    for a, b in zip(traced, eager, strict=True):  # weights, statistics, u vectors, optimizer slots
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert any(not np.allclose(a, b) for a, b in zip(traced, weights(False, 2)[1]))  # bites


@pytest.mark.torch
@pytest.mark.parametrize("model_fn", [_gan, _energy_gan], ids=["gan_r1", "energy_gan_jsd"])
def test_torch_fit_with_traced_networks_equals_fit_without(model_fn):
    traced, eager = _fit_weights(model_fn, True), _fit_weights(model_fn, False)
    for a, b in zip(traced, eager, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(traced, _fit_weights(model_fn, False, steps=1)))  # bites


@pytest.mark.torch
@pytest.mark.parametrize("make", [lambda: keras.optimizers.Adam(1e-2, 0.5, 0.9),
                                  lambda: keras.optimizers.SGD(1e-2, momentum=0.9),
                                  lambda: keras.optimizers.Adam(1e-2, clipnorm=0.1)], ids=["adam", "sgd", "clipped"])
def test_torch_direct_optimizer_update_equals_apply(make):
    from kgen.backend import _torch

    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
    runs = []
    for direct in (True, False):
        variables = [keras.Variable(w) for w in weights]
        optimizer = make()
        optimizer.build(variables)
        for step in range(5):
            grads = [ops.convert_to_tensor(rng.normal(size=w.shape).astype("float32")) for w in weights]
            if direct:
                _torch.apply_gradients(optimizer, grads, variables)
            else:
                optimizer.apply(grads, variables)
        runs.append(([_np(v) for v in variables], int(_np(optimizer.iterations))))
        rng = np.random.default_rng(0)
        rng.normal(size=(3, 4)), rng.normal(size=(4,))  # the same gradient draws for the second run
    (direct_weights, direct_steps), (apply_weights, apply_steps) = runs
    assert direct_steps == apply_steps == 5
    for a, b in zip(direct_weights, apply_weights):
        np.testing.assert_array_equal(a, b)
    assert _torch._plain_update(optimizer, variables) == (optimizer.clipnorm is None)


# ---------------------------------------------------------------- moving averages, static shapes, the U-Net trace
def test_move_towards_is_the_moving_average_update():
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(5,)).astype("float32")]
    targets = [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(5,)).astype("float32")]
    variables = [keras.Variable(v, trainable=False) for v in start]
    kb.move_towards(variables, [ops.convert_to_tensor(t) for t in targets], ops.convert_to_tensor(0.25))
    for variable, s, t in zip(variables, start, targets):
        np.testing.assert_allclose(_np(variable), s + 0.25 * (t - s), rtol=1e-6, atol=1e-7)
    kb.move_towards(variables, [ops.convert_to_tensor(t) for t in targets], ops.convert_to_tensor(0.0))
    for variable, s, t in zip(variables, start, targets):  # weight 0: unchanged
        np.testing.assert_allclose(_np(variable), s + 0.25 * (t - s), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="2 variables and 1 targets"):
        kb.move_towards(variables, targets[:1], 0.5)


@pytest.mark.torch
def test_torch_fused_move_towards_gives_the_assigns_values_bit_for_bit_and_stays_out_of_stateless_scopes():
    from kgen.backend import _keras_compat as compat
    from kgen.backend import _torch

    rng = np.random.default_rng(1)
    start = [rng.normal(size=s).astype("float32") for s in ((8, 8, 3), (16,), ())]
    targets = [ops.convert_to_tensor(rng.normal(size=s.shape).astype("float32")) for s in start]
    weight = ops.convert_to_tensor(0.0123)
    fused = [keras.Variable(v, trainable=False) for v in start]
    assigned = [keras.Variable(v, trainable=False) for v in start]
    assert _torch.fused_move_towards(fused, targets, weight)
    for variable, target in zip(assigned, targets):  # the generic path of kb.move_towards
        variable.assign(variable + weight * (target - variable))
    for a, b in zip(fused, assigned):
        np.testing.assert_array_equal(_np(a), _np(b))
    with compat.StatelessScope() as scope:  # assigns there are recorded, not written: no fused update
        assert not _torch.fused_move_towards(fused, targets, weight)
        kb.move_towards(fused, targets, weight)
        recorded = _np(scope.get_current_value(fused[1]))
    np.testing.assert_array_equal(_np(fused[1]), _np(assigned[1]))  # the variable itself unchanged
    assert not np.array_equal(recorded, _np(assigned[1]))


@pytest.mark.torch
def test_torch_static_shape_reads_a_traced_size_without_a_tracer_warning():
    import warnings

    import torch

    seen = {}

    def fn(x):
        seen["shape"] = kb.static_shape(x)
        return x * 2.0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        torch.jit.trace(fn, (torch.zeros(3, 5),))
        assert seen["shape"] == (3, 5) and all(type(d) is int for d in seen["shape"])
        assert not [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
        torch.jit.trace(lambda x: x * float(x.shape[0] == 3), (torch.zeros(3, 5),))  # negative control
        assert [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]


class _LazyBlocks(keras.layers.Layer):
    """Sub-layers built by the first call, after this layer's own (empty) build: the pattern UNet avoids."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [keras.layers.Dense(4), keras.layers.Dense(2)]

    def build(self, input_shape):
        self.built = True

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return x


@pytest.mark.torch
def test_torch_unet_registers_every_variable_as_a_module_parameter():
    from kgen.diffusion import UNet

    net = UNet((8, 8, 1), channels=8, channel_mults=(1, 2), attention_resolutions=(4,))
    parameters = {id(p) for p in net.parameters()}
    assert net.variables and all(id(v.value) in parameters for v in net.variables)
    lazy = _LazyBlocks()  # negative control: Keras registers what exists when build() returns
    lazy(np.zeros((2, 3), "float32"))
    assert len(lazy.variables) == 4 and not list(lazy.parameters())


def _diffusion_weights(tracing, steps):
    from kgen.app import presets

    previous = kb.set_network_tracing(tracing)
    try:
        kgen.set_seed(0)
        x = np.random.default_rng(0).uniform(-1, 1, size=(8 * steps, 8, 8, 1)).astype("float32")
        model = presets.diffusion_model(x, seed=0, channels=8, channel_mults=(1, 2))
        model.fit(x, batch_size=8, epochs=1, verbose=0, shuffle=False)
        return model, [_np(v) for v in model.network.trainable_variables + model.ema.averages]
    finally:
        kb.set_network_tracing(previous)


@pytest.mark.torch
def test_torch_diffusion_fit_with_the_traced_unet_equals_fit_without():
    model, traced = _diffusion_weights(True, 3)
    assert [t is not None for t in _traces(model.network).values()] == [True]  # the U-Net was replayed
    _, eager = _diffusion_weights(False, 3)
    for a, b in zip(traced, eager, strict=True):  # network weights and their EMA
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(traced, _diffusion_weights(False, 2)[1]))  # bites


def test_call_network_with_trainable_values_is_the_stateless_call_and_changes_nothing():
    net = mlp([2, 3], 2, seed=0)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(5, 2)).astype("float32"), rng.normal(size=(5, 3)).astype("float32")]
    before = [_np(v) for v in net.variables]
    values = [ops.convert_to_tensor(0.5 * b) for b in before]
    expected, _ = net.stateless_call(values, [], inputs, training=False)
    np.testing.assert_allclose(_np(kb.call_network(net, inputs, False, trainable_values=values)), _np(expected),
                               rtol=1e-6, atol=1e-6)
    for variable, b in zip(net.variables, before):
        np.testing.assert_array_equal(_np(variable), b)
    assert not np.allclose(_np(expected), _np(net(inputs)))  # the values matter


@pytest.mark.torch
def test_torch_trace_with_trainable_values_takes_them_as_inputs_not_constants():
    net = mlp(3, 2, seed=0)
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    rng = np.random.default_rng(1)
    for _ in range(3):  # new values each call, one trace: a trace that froze the first values would fail here
        values = [ops.convert_to_tensor(rng.normal(size=v.shape).astype("float32")) for v in net.trainable_variables]
        expected, _ = net.stateless_call(values, [], x)
        np.testing.assert_allclose(_np(kb.call_network(net, x, False, trainable_values=values)), _np(expected),
                                   rtol=1e-6, atol=1e-6)
    assert [(key[2], trace is not None) for key, trace in _traces(net).items()] == [(1, True)]


@pytest.mark.torch
def test_torch_sampling_with_the_traced_ema_network_equals_the_eager_sampler():
    model, _ = _diffusion_weights(True, 2)
    traced = _np(model.sample(3, steps=4, seed=5))
    assert any(key[2] is not None and trace is not None for key, trace in _traces(model.network).items())
    previous = kb.set_network_tracing(False)
    try:
        eager = _np(model.sample(3, steps=4, seed=5))
    finally:
        kb.set_network_tracing(previous)
    np.testing.assert_allclose(traced, eager, rtol=1e-5, atol=1e-5)
    assert not np.allclose(traced, _np(model.sample(3, steps=4, seed=6)), atol=1e-3)  # bites: the seed matters


def _flow_fit(cls, tracing, steps, **kwargs):
    previous = kb.set_network_tracing(tracing)
    try:
        kgen.set_seed(0)
        model = cls((8, 8, 1), seed=0, **kwargs)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        x = np.random.default_rng(0).uniform(0.05, 0.95, size=(4 * steps, 8, 8, 1)).astype("float32")
        model.fit(x, batch_size=4, epochs=1, verbose=0, shuffle=False)
        return model, [_np(v) for v in model.variables]
    finally:
        kb.set_network_tracing(previous)


@pytest.mark.torch
@pytest.mark.parametrize("name", ["Glow", "RealNVP", "NICE"])
def test_torch_flow_fit_with_the_traced_chain_equals_fit_without(name):
    cls = getattr(kgen.flows, name)
    kwargs = {"Glow": dict(levels=2, depth=2, filters=8),
              "RealNVP": dict(num_couplings=4, filters=8, hidden=(16,), batch_norm=True),  # BatchNorm state too
              "NICE": dict(num_couplings=2, hidden=(16, 16))}[name]
    model, traced = _flow_fit(cls, True, 3, **kwargs)
    assert [t is not None for t in _traces(model).values()] == [True]  # the whole chain, one replay per step
    _, eager = _flow_fit(cls, False, 3, **kwargs)
    for a, b in zip(traced, eager, strict=True):  # weights, ActNorm / 1×1-convolution / BatchNorm state, slots
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert any(not np.allclose(a, b) for a, b in zip(traced, _flow_fit(cls, False, 2, **kwargs)[1]))  # bites


def _unilm_fit(tracing, steps):
    from kgen.text import UniLM

    previous = kb.set_network_tracing(tracing)
    try:
        kgen.set_seed(0)
        model = UniLM(vocab_size=32, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32, max_length=16)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        rng = np.random.default_rng(0)
        tokens = rng.integers(1, 32, size=(4 * steps, 12)).astype("int32")
        tokens[:, -2:] = 0  # padding at the end
        segments = np.zeros_like(tokens)
        segments[:, 5:] = 1
        model.fit({"token_ids": tokens, "segment_ids": segments}, batch_size=4, epochs=1, verbose=0, shuffle=False)
        return model, [_np(v) for v in model.trainable_variables]
    finally:
        kb.set_network_tracing(previous)


@pytest.mark.torch
def test_torch_unilm_fit_with_the_traced_encoder_equals_fit_without():
    model, traced = _unilm_fit(True, 3)
    assert [t is not None for t in _traces(model).values()] == [True]  # the UniLM mask and encoder, replayed
    _, eager = _unilm_fit(False, 3)
    for a, b in zip(traced, eager, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert any(not np.allclose(a, b) for a, b in zip(traced, _unilm_fit(False, 2)[1]))  # bites


@pytest.mark.torch
def test_torch_traces_do_not_keep_their_network_alive():
    import gc
    import weakref

    inputs = keras.Input((2,))
    net = keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Dense(3)(inputs)))
    kb.call_network(net, np.ones((4, 2), "float32"), training=True)
    assert [t is not None for t in _traces(net).values()] == [True]
    alive = weakref.ref(net)
    del net
    gc.collect()
    assert alive() is None  # the cache is keyed weakly and its values hold no reference back


@pytest.mark.torch
def test_torch_flow_decode_replays_the_inverse_chain_and_inverts_encode():
    model, _ = _flow_fit(kgen.flows.Glow, True, 1, levels=2, depth=2, filters=8)
    x = np.random.default_rng(1).uniform(0.05, 0.95, size=(3, 8, 8, 1)).astype("float32")
    latents = model.encode(x)
    back = _np(model.decode(latents))
    samples = _np(model.sample(3, seed=4, temperature=0.7))
    assert any(key[4] == "_decode" and trace is not None for key, trace in _traces(model).items())
    np.testing.assert_allclose(back, x, atol=1e-5)
    previous = kb.set_network_tracing(False)
    try:
        np.testing.assert_allclose(_np(model.decode(latents)), back, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_np(model.sample(3, seed=4, temperature=0.7)), samples, rtol=1e-5, atol=1e-6)
    finally:
        kb.set_network_tracing(previous)
    assert not np.allclose(samples, _np(model.sample(3, seed=5, temperature=0.7)))  # bites: the seed matters


def _decoding_unilm():
    from kgen.text import UniLM

    kgen.set_seed(0)
    return UniLM(vocab_size=24, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32, max_length=16,
                 initializer_range=0.5)


def _unilm_generate(model, tracing, sampler="random", use_cache=True):
    previous = kb.set_network_tracing(tracing)
    try:
        sources = [[1, 5, 6, 7, 2], [1, 9, 2], [1, 4, 4, 8, 3, 2]]
        if sampler == "beam":
            from kgen.text.samplers import BeamSampler

            tokens, scores = model.generate(sources, 6, sampler=BeamSampler(3, return_all_beams=True),
                                            use_cache=use_cache)
            return _np(tokens), _np(scores)
        tokens, logits = model.generate(sources, 6, sampler=sampler, use_cache=use_cache, return_logits=True, seed=3)
        return _np(tokens), _np(logits)
    finally:
        kb.set_network_tracing(previous)


@pytest.mark.torch
@pytest.mark.parametrize("sampler, use_cache", [("random", True), ("random", False), ("beam", True)])
def test_torch_unilm_decoding_replays_one_trace_per_step_shape_and_equals_eager_decoding(sampler, use_cache):
    model = _decoding_unilm()
    traced = _unilm_generate(model, True, sampler, use_cache)
    step = "_cached_step" if use_cache else "_full_step"
    assert [trace is not None for key, trace in _traces(model).items() if key[4] == step] == [True]  # all steps
    eager = _unilm_generate(model, False, sampler, use_cache)
    np.testing.assert_array_equal(traced[0], eager[0])
    np.testing.assert_allclose(traced[1], eager[1], rtol=1e-5, atol=1e-5)
    assert len(np.unique(traced[0])) > 3  # the tokens vary, so equal tokens say something


@pytest.mark.torch
def test_torch_negative_control_decoding_with_a_frozen_step_index_differs(monkeypatch):
    from kgen.text import UniLM

    model = _decoding_unilm()
    _, logits = _unilm_generate(model, False)
    step = UniLM.next_logits
    monkeypatch.setattr(UniLM, "next_logits", lambda self, token, index, *rest: step(self, token, 0, *rest))
    _, frozen_logits = _unilm_generate(model, False)
    np.testing.assert_allclose(frozen_logits[:, :2], logits[:, :2], rtol=1e-5, atol=1e-5)  # steps 0 and 1 agree
    assert not np.allclose(frozen_logits, logits, rtol=1e-5, atol=1e-5)  # what a trace that froze it would give


@pytest.mark.torch
@pytest.mark.parametrize("name", ["Glow", "RealNVP"])
def test_torch_flow_log_prob_and_encode_replay_the_chain_and_equal_the_eager_calls(name):
    kwargs = ({"levels": 2, "depth": 2, "filters": 8} if name == "Glow"
              else {"num_couplings": 4, "filters": 8, "hidden": (16,), "batch_norm": True})  # BatchNorm state too
    model, _ = _flow_fit(getattr(kgen.flows, name), True, 1, **kwargs)
    x = np.random.default_rng(1).uniform(0.05, 0.95, size=(3, 8, 8, 1)).astype("float32")
    state = [_np(v) for v in model.non_trainable_variables]
    log_prob, latents = _np(model.log_prob(x)), [_np(z) for z in model.encode(x)]
    methods = {key[4] for key, trace in _traces(model).items() if trace is not None}
    assert {"_log_prob", "_latents"} <= methods
    for before, after in zip(state, model.non_trainable_variables, strict=True):
        np.testing.assert_array_equal(before, _np(after))  # inference reads the statistics, writes nothing
    previous = kb.set_network_tracing(False)
    try:
        np.testing.assert_allclose(_np(model.log_prob(x)), log_prob, rtol=1e-5, atol=1e-4)
        for z, eager in zip(latents, model.encode(x), strict=True):
            np.testing.assert_allclose(z, _np(eager), rtol=1e-5, atol=1e-5)
    finally:
        kb.set_network_tracing(previous)
    assert not np.allclose(log_prob, _np(model.log_prob(x[::-1])))  # bites: the examples differ
