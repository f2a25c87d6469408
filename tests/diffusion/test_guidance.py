"""Classifier-free guidance as an eps-function wrapper: closed forms, reductions, composition with UG, state."""

import keras
import numpy as np
import pytest
from keras import ops

from kgen import backend as kb
from kgen.diffusion import ClassifierFreeGuidance, CosineSchedule, DDIMSampler, UpsampleGuidance
from kgen.diffusion.predictions import state_of
from kgen.diffusion.testing import GaussianDenoiser


def _np(x):
    return ops.convert_to_numpy(x).astype(np.float64)


def _compiled(fn, *args):
    """Evaluate `fn(*args)` as one compiled function (JAX's eager op-by-op dispatch is slow) -> NumPy."""
    out = kb.compile_function(fn)(*[ops.convert_to_tensor(a) for a in args])
    return tuple(_np(o) for o in out) if isinstance(out, (tuple, list)) else _np(out)


COND = GaussianDenoiser(np.array([1.0, -1.0]), np.diag([0.1, 0.2]))
UNCOND = GaussianDenoiser(np.zeros(2), np.eye(2))
X = np.random.default_rng(0).normal(size=(5, 2)).astype("float32")
LOGSNR = np.linspace(-4, 4, 5).astype("float32")


def test_guided_eps_is_the_closed_form_extrapolation():
    """ε̃ = ε_u + g(ε_c − ε_u), checked against the two Gaussian closed forms written out in NumPy."""
    a2 = 1 / (1 + np.exp(-LOGSNR.astype(np.float64)))
    expected = []
    for i in range(5):
        eps_c = np.sqrt(1 - a2[i]) * (X[i] - np.sqrt(a2[i]) * np.array([1.0, -1.0])) / (a2[i] * np.array([0.1, 0.2])
                                                                                      + 1 - a2[i])
        eps_u = np.sqrt(1 - a2[i]) * X[i]  # N(0, I) data: (a I + (1 − a) I)⁻¹ = I
        expected.append(eps_u + 3.0 * (eps_c - eps_u))
    got = _compiled(ClassifierFreeGuidance(COND, UNCOND, guidance_scale=3.0), X, LOGSNR)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_scale_one_is_the_conditional_model_and_zero_the_unconditional():
    one, zero = ClassifierFreeGuidance(COND, UNCOND, 1.0), ClassifierFreeGuidance(COND, UNCOND, 0.0)
    outs = _compiled(lambda x, l: (one(x, l), COND(x, l), zero(x, l), UNCOND(x, l)), X, LOGSNR)
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    np.testing.assert_allclose(outs[2], outs[3], atol=1e-6)


def test_sampling_with_scale_one_follows_the_conditional_trajectory():
    sampler = DDIMSampler(CosineSchedule(), 8)
    guided = _np(sampler.sample(ClassifierFreeGuidance(COND, UNCOND, 1.0), X))
    np.testing.assert_allclose(guided, _np(sampler.sample(COND, X)), atol=1e-5)
    # Negative control: a larger scale moves the samples.
    assert np.abs(_np(sampler.sample(ClassifierFreeGuidance(COND, UNCOND, 4.0), X)) - guided).max() > 1e-2


def test_cfg_composes_with_upsample_guidance_either_way():
    images = np.random.default_rng(1).normal(size=(2, 4, 4, 1)).astype("float32")
    logsnr = np.array([-1.0, 1.0], "float32")

    def cond(x, l):
        return 0.3 * x + 0.1

    def uncond(x, l):
        return 0.2 * x

    schedule = CosineSchedule()
    cfg = ClassifierFreeGuidance(cond, uncond, 2.5)
    inside = ClassifierFreeGuidance(UpsampleGuidance(cond, schedule, 2, w=0.0),
                                    UpsampleGuidance(uncond, schedule, 2, w=0.0), 2.5)
    # UG is linear in the model, so for these linear models UG(CFG) = CFG(UG) at any w.
    outside = UpsampleGuidance(cfg, schedule, 2, w=1.2)
    per_branch = ClassifierFreeGuidance(UpsampleGuidance(cond, schedule, 2, w=1.2),
                                        UpsampleGuidance(uncond, schedule, 2, w=1.2), 2.5)
    a, b, c, d = _compiled(lambda x, l: (inside(x, l), cfg(x, l), outside(x, l), per_branch(x, l)), images, logsnr)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(c, d, atol=1e-5)
    assert np.abs(c - b).max() > 1e-3  # negative control: w = 1.2 does change the output


def test_wrappers_collect_the_keras_state_of_what_they_wrap():
    conditional = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    unconditional = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])

    class Net(keras.layers.Layer):
        def call(self, x, logsnr):
            return other(x)

    def dropped(x_t, logsnr):  # a closure over a model: found too
        return unconditional(x_t)

    net = Net()
    cfg = ClassifierFreeGuidance(conditional, dropped, 2.0)
    assert state_of(cfg) == [conditional, unconditional]
    ug = UpsampleGuidance(cfg, CosineSchedule(), 2, low_resolution_eps_fn=net)
    assert state_of(ug) == [conditional, unconditional, net]
    assert state_of(ClassifierFreeGuidance(net.call, net, 1.0)) == [net]  # a bound method is its owner, once


def test_bad_input_raises():
    with pytest.raises(TypeError, match="conditional"):
        ClassifierFreeGuidance("model", UNCOND)
    with pytest.raises(TypeError, match="guidance_scale"):
        ClassifierFreeGuidance(COND, UNCOND, guidance_scale="7.5")
