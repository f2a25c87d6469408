"""`compile(jit_compile=True)` on torch: Keras's `torch.compile` of the fit step, which kgen makes static-shaped
(kgen.backend._torch.Trainer). With torch's dynamic shapes inductor fails on a symbolic size inside the U-Net;
compiled, the step must train exactly as the eager one does."""

import contextlib

import keras
import numpy as np
import pytest

import kgen


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """dynamo's caches and recompilation counts are per code object, so shared by every model of the process
    (Keras's layer `forward` stops being compiled after 8 shapes): each test starts and leaves them empty."""
    if keras.backend.backend() != "torch":
        yield
        return
    import torch._dynamo

    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _unet_fit(jit_compile, steps=2):
    from kgen.app import presets

    kgen.set_seed(0)
    # The U-Net that failed under dynamic shapes (a 28×28 image, one level: the config of the GPU dry run).
    x = np.random.default_rng(0).uniform(-1, 1, size=(4 * steps, 28, 28, 1)).astype("float32")
    model = presets.diffusion_model(x, seed=0, channels=8, channel_mults=(1,))
    model.compile(optimizer=model.optimizer, jit_compile=jit_compile)
    history = model.fit(x, batch_size=4, epochs=1, verbose=0, shuffle=False)
    weights = model.network.trainable_variables + model.ema.averages
    return history.history["loss"][-1], [keras.ops.convert_to_numpy(v) for v in weights]


@pytest.mark.torch
def test_torch_jit_compile_trains_the_unet_as_the_eager_step_does():
    loss, weights = _unet_fit(True)
    eager_loss, eager_weights = _unet_fit(False)
    np.testing.assert_allclose(loss, eager_loss, rtol=1e-4)
    for a, b in zip(weights, eager_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert any(not np.allclose(a, b) for a, b in zip(weights, _unet_fit(False, steps=1)[1]))  # bites


@pytest.mark.torch
def test_torch_negative_control_keras_dynamic_torch_compile_fails_on_the_unet(monkeypatch):
    from kgen.backend import _torch

    monkeypatch.setattr(_torch, "_static_torch_compile", contextlib.nullcontext)
    with pytest.raises(Exception, match="Relational"):
        _unet_fit(True)
