"""Every private-Keras touch point (kgen/backend/_keras_compat.py), with the private path and its public fallback.

Each test runs the touch point as installed (Keras 3.15: private) and with the version guard forced off (the
public fallback), and checks both give the same results: so a new Keras series degrades speed, never answers.
"""

import os
import warnings

import keras
import numpy as np
import pytest

import kgen
from kgen.backend import _keras_compat as compat


@pytest.fixture(params=[True, False], ids=["private", "public"])
def private(request, monkeypatch):
    monkeypatch.setattr(compat, "PRIVATE", request.param)
    return request.param


def test_the_guard_follows_the_installed_keras_series():
    assert compat.PRIVATE == keras.version().startswith(compat.TESTED_SERIES + ".")
    assert compat.PRIVATE  # CI installs the tested series (constraints.txt); a new one must be checked first


def test_kgen_scopes_are_found_either_way(private):
    assert compat.stateless_scope() is None
    with compat.StatelessScope() as outer:
        assert compat.stateless_scope() is outer
        with compat.StatelessScope() as inner:
            assert compat.stateless_scope() is inner
        assert compat.stateless_scope() is outer
    assert compat.stateless_scope() is None


def _tiny_gan():
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="relu"),
                                      keras.layers.Dense(1)])
    gan = kgen.gans.GAN(generator, discriminator, loss="hinge", r1_weight=1.0, seed=0)
    gan.compile(optimizers={"generator": keras.optimizers.Adam(1e-3), "discriminator": keras.optimizers.Adam(1e-3)})
    return gan


def test_a_two_optimizer_step_gives_the_same_weights_either_way(monkeypatch):
    """Scopes, trainer jit and the optimizer fast path, all at once: a GAN step with an input gradient."""
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    results = []
    for flag in (True, False):
        monkeypatch.setattr(compat, "PRIVATE", flag)
        keras.utils.set_random_seed(0)
        gan = _tiny_gan()
        history = gan.fit(x, batch_size=32, epochs=2, verbose=0, shuffle=False)
        results.append((history.history["loss"], [np.asarray(keras.ops.convert_to_numpy(v)) for v in gan.weights]))
    (loss_a, weights_a), (loss_b, weights_b) = results
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5, atol=1e-6)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.torch
def test_the_torch_optimizer_fast_path_is_the_stock_update(private):
    from kgen.backend import _torch

    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    optimizer = keras.optimizers.Adam(1e-2)
    optimizer.build(layer.trainable_variables)
    reference = [keras.Variable(v.value) for v in layer.trainable_variables]
    stock = keras.optimizers.Adam(1e-2)
    stock.build(reference)
    for step in range(3):
        grads = [keras.ops.full(v.shape, 0.1 * (step + 1)) for v in layer.trainable_variables]
        _torch.apply_gradients(optimizer, grads, layer.trainable_variables)
        stock.apply(grads, reference)
    assert int(optimizer.iterations.numpy()) == 3 and compat.optimizer_knows(optimizer, layer.trainable_variables) is private
    for a, b in zip(layer.trainable_variables, reference):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), rtol=1e-6)


def test_shape_reads_are_recognised_only_on_the_tested_series(private):
    # Keras's backend-neutral code runs under jax.jit too, where it cannot read data as Python numbers: any number
    # it reads in a torch trace is a size. The same read anywhere else may be data.
    read = "Converting a tensor to a Python integer might cause the trace to be incorrect."
    for part in ("backend/common/variables.py", "ops/operation_utils.py", "layers/layer.py", "models/functional.py"):
        keras_file = warnings.WarningMessage(read, UserWarning, f"/x/site-packages/keras/src/{part}", 1)
        assert compat.is_keras_shape_read(keras_file) is private, part
    other = warnings.WarningMessage(read, UserWarning, "/x/site-packages/mylib/net.py", 1)
    torch_backend = warnings.WarningMessage(read, UserWarning, "/x/site-packages/keras/src/backend/torch/math.py", 1)
    another_kind = warnings.WarningMessage("Output nr 1. of the traced function does not match", UserWarning,
                                           "/x/site-packages/keras/src/ops/nn.py", 1)
    assert not compat.is_keras_shape_read(other)
    assert not compat.is_keras_shape_read(torch_backend)
    assert not compat.is_keras_shape_read(another_kind)


def torch_file():
    torch = pytest.importorskip("torch")
    return torch.__file__


def _line_of(path, text):
    with open(path) as f:
        return next(i for i, line in enumerate(f, 1) if line.strip() == text)


def test_convolution_padding_reads_and_constants_are_recognised_by_their_text(private):
    # Keras's torch convolution reads traced sizes at these lines (its padding and grouping arithmetic); any
    # other line of the same file may read data, and must still forbid a trace.
    nn = os.path.join(os.path.dirname(keras.__file__), "src", "backend", "torch", "nn.py")
    core = os.path.join(os.path.dirname(nn), "core.py")
    numpy = os.path.join(os.path.dirname(nn), "numpy.py")
    tensor = os.path.join(os.path.dirname(torch_file()), "_tensor.py")
    for path, text in ((nn, "if all(left == right for left, right in padding):"), (nn, "total_padding = max("),
                       (nn, "if in_channels % kernel_in_channels != 0:"),
                       (nn, "needs_zero_pad = any(cl < 0 or cr < 0 for cl, cr in crops)"),
                       (numpy, "if dim % indices_or_sections != 0:"),
                       (numpy, "if dim == 0 and isinstance(indices_or_sections, int):"),
                       (tensor, "split_size = int(split_size)")):
        warning = warnings.WarningMessage("bool", UserWarning, path, _line_of(path, text))
        assert compat.is_keras_shape_read(warning) is private, text
    elsewhere = warnings.WarningMessage("bool", UserWarning, nn, 1)
    assert not compat.is_keras_shape_read(elsewhere)  # negative control: same file, another line
    constant = warnings.WarningMessage("torch.as_tensor results are registered as constants in the trace.",
                                       UserWarning, core, 1)
    number = warnings.WarningMessage("Converting a tensor to a Python float", UserWarning, core, 1)
    assert compat.is_keras_shape_read(constant) is private
    assert not compat.is_keras_shape_read(number)


@pytest.mark.jax
def test_failed_steps_mark_the_state_synced_only_privately(private):
    class Model:
        pass

    model = Model()
    compat.mark_state_synced(model)
    assert getattr(model, "_jax_state_synced", False) is private


def test_sublayers_are_the_same_either_way(monkeypatch):
    """The public walk finds the layers Keras tracks, nested ones too: the BatchNorm inside each self-modulated
    BatchNorm of SELF-MOD's generator, the wrapped layers of spectral norm, a layer held in a list."""
    from kgen.gans import networks

    class Holder(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.parts = [keras.layers.Dense(2), keras.layers.BatchNormalization()]

        def call(self, x):
            return self.parts[1](self.parts[0](x))

    generator = networks.generator((28, 28, 1), 8, norm="selfmod", spectral_norm=True, attention=True, width=8)
    holder = Holder()
    holder(np.zeros((2, 3), "float32"))
    for network in (generator, holder):
        found = {}
        for private in (True, False):
            monkeypatch.setattr(compat, "PRIVATE", private)
            found[private] = kgen.backend.sublayers(network)
        assert sorted(map(id, found[True])) == sorted(map(id, found[False]))
        assert found[False][0] is network and len(found[False]) == len({id(layer) for layer in found[False]})
    batch_norms = [layer for layer in found[True] if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(batch_norms) == 1
    nested = [layer for layer in kgen.backend.sublayers(generator)
              if isinstance(layer, keras.layers.BatchNormalization)]
    assert nested and all(layer not in generator.layers for layer in nested)  # only inside the self-modulated ones
    with pytest.raises(TypeError, match="network"):
        kgen.backend.sublayers("generator")


def _single_example_conv(fixed):
    """Output, kernel gradient and input gradient of Keras's Conv2D (one output channel) on one example, with
    kgen's fix in place or Keras's stock torch `conv` restored."""
    import torch
    from keras.src.backend.torch import nn

    layer = keras.layers.Conv2D(1, 3, padding="same")
    layer.build((None, 5, 6, 3))
    layer.kernel.assign(np.random.default_rng(0).normal(size=(3, 3, 3, 1)).astype("float32"))
    x = torch.tensor(np.random.default_rng(1).normal(size=(1, 5, 6, 3)).astype("float32"), requires_grad=True)
    current = nn.conv
    nn.conv = current if fixed else getattr(current, "kgen_stock", current)
    try:
        y = layer(x)
        kernel_grad, input_grad = torch.autograd.grad((y * y).sum(), [layer.kernel.value, x])
    finally:
        nn.conv = current
    return y.detach().numpy(), kernel_grad.numpy(), input_grad.numpy()


@pytest.mark.torch
def test_a_single_example_convolution_backpropagates_like_the_contiguous_oracle():
    import torch

    assert compat.fix_single_example_convolutions() == compat._torch_single_example_conv_fails()
    y, kernel_grad, input_grad = _single_example_conv(fixed=True)
    # Oracle: torch's convolution on contiguous NCHW tensors (a layout its CPU kernel handles), bias zero.
    kernel = torch.tensor(np.random.default_rng(0).normal(size=(3, 3, 3, 1)).astype("float32"), requires_grad=True)
    x = torch.tensor(np.random.default_rng(1).normal(size=(1, 5, 6, 3)).astype("float32"), requires_grad=True)
    out = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2).contiguous(), kernel.permute(3, 2, 0, 1).contiguous(),
                                     padding=1).permute(0, 2, 3, 1)
    oracle_kernel_grad, oracle_input_grad = torch.autograd.grad((out * out).sum(), [kernel, x])
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(kernel_grad, oracle_kernel_grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(input_grad, oracle_input_grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.torch
def test_without_the_fix_torch_fails_where_the_probe_says(private):
    if not compat._torch_single_example_conv_fails():
        pytest.skip("this torch backpropagates a single-example convolution: the fix is not installed")
    assert compat.fix_single_example_convolutions() is private
    with pytest.raises(RuntimeError, match="contiguous"):  # the negative control: the stock path fails
        _single_example_conv(fixed=False)


@pytest.mark.torch
def test_a_grayscale_unet_trains_with_a_last_batch_of_one_example():
    from kgen.app import presets

    x = np.random.default_rng(0).uniform(-1, 1, size=(3, 8, 8, 1)).astype("float32")
    model = presets.diffusion_model(x, seed=0, channels=8, channel_mults=(1,))
    history = model.fit(x, batch_size=2, epochs=1, verbose=0)  # batches of 2 and 1
    assert np.isfinite(history.history["loss"][-1])
    # Both batch sizes ran as torch traces (kgen.backend.call_network): the fix's size reads do not refuse one.
    from kgen.backend import _torch

    traces = _torch._TRACES[model.network]
    assert sorted(key[3][0][0][0] for key in traces) == [1, 2] and all(t is not None for t in traces.values())


@pytest.mark.torch
def test_another_capture_of_a_single_example_keeps_its_batch_dynamic():
    """An ONNX export traces with a batch of one and replays any batch: the fix must not be recorded there (it
    would cut every batch to its first example), only in kgen's own shape-specialised traces."""
    import torch

    compat.fix_single_example_convolutions()
    layer = keras.layers.Conv2D(1, 3, padding="same")
    layer.build((None, 5, 6, 3))
    x = np.random.default_rng(1).normal(size=(3, 5, 6, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(layer, (torch.tensor(x[:1]),), check_trace=False)  # as an ONNX export does
    with torch.no_grad():
        np.testing.assert_allclose(traced(torch.tensor(x)).numpy(), keras.ops.convert_to_numpy(layer(x)),
                                   rtol=1e-5, atol=1e-5)


def test_seed_draws_are_kerass_either_way(private):
    """kgen.backend.SeedGenerator's host copy of the seed state (torch) or Keras's own `next`: the same draws."""
    ours, theirs = kgen.backend.SeedGenerator(4), keras.random.SeedGenerator(4)
    for _ in range(3):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.random.normal((5,), seed=ours)),
                                      keras.ops.convert_to_numpy(keras.random.normal((5,), seed=theirs)))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours.state.value),
                                  keras.ops.convert_to_numpy(theirs.state.value))
