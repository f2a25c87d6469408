"""Exported artifacts are served by a fresh process that never imports kgen, and agree with the Keras model."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kgen
from kgen.flows import Glow

BACKEND = keras.backend.backend()

# Runs in a child process: plain TensorFlow / onnxruntime, no kgen, no Keras.
SERVE_SAVED_MODEL = r"""
import json, sys
import numpy as np
import tensorflow as tf
path = sys.argv[1]
x, z = np.load(path + ".x.npy"), np.load(path + ".z.npy")
served = tf.saved_model.load(path)
t = tf.ones((3, 1))
draws = [served.sample_random(t).numpy() for _ in range(2)]
print(json.dumps({
    "log_prob": served.log_prob(x).numpy().tolist(),
    "serving_default": list(served.signatures["serving_default"](tf.constant(x)).values())[0].numpy().tolist(),
    "sample": served.sample(z).numpy().tolist(),
    "random_shape": list(draws[0].shape),
    "random_differ": float(np.abs(draws[0] - draws[1]).max()),
    "random_t0": float(np.abs(served.sample_random(tf.zeros((2, 1))).numpy()
                              - served.sample_random(tf.zeros((2, 1))).numpy()).max()),
    "kgen_imported": "kgen" in sys.modules,
}))
"""

SERVE_ONNX = r"""
import json, sys
import numpy as np
import onnxruntime
path = sys.argv[1]
session = onnxruntime.InferenceSession(path)
x = np.load(path + ".x.npy")
name = session.get_inputs()[0].name
print(json.dumps({"outputs": [session.run(None, {name: x[:k]})[0].tolist() for k in (len(x), 2)],
                  "kgen_imported": "kgen" in sys.modules}))
"""


def _serve(script, path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KERAS_BACKEND", None)
    out = subprocess.run([sys.executable, "-c", script, path], env=env, capture_output=True, text=True,
                         cwd=os.path.dirname(path), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def glow():
    kgen.set_seed(0)
    model = Glow((8, 8, 1), levels=2, depth=2, filters=8, seed=0)
    x = np.random.default_rng(0).uniform(0.05, 0.95, (5, 8, 8, 1)).astype("float32")
    model.initialize(x)
    for weight in model.trainable_weights:  # randomise zero-initialised couplings so the test can fail
        weight.assign(weight + 0.05 * np.random.default_rng(1).normal(size=weight.shape).astype("float32"))
    return model, x


def _flat_latents(model, x):
    return np.concatenate([keras.ops.convert_to_numpy(z).reshape(len(x), -1) for z in model.encode(x)], axis=1)


@pytest.mark.jax
@pytest.mark.tensorflow
def test_saved_model_endpoints_agree_in_a_process_without_kgen(glow, tmp_path):
    model, x = glow
    path = str(tmp_path / "glow")
    kgen.export.export_saved_model(model, path)
    np.save(path + ".x.npy", x)
    np.save(path + ".z.npy", _flat_latents(model, x))
    served = _serve(SERVE_SAVED_MODEL, path)
    assert not served["kgen_imported"]
    log_prob = keras.ops.convert_to_numpy(model.log_prob(x))
    np.testing.assert_allclose(served["log_prob"], log_prob, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(np.ravel(served["serving_default"]), log_prob, rtol=1e-6, atol=1e-4)
    # sample(z) with the caller's noise is deterministic: the encoded latents decode back to x.
    np.testing.assert_allclose(served["sample"], x, atol=1e-5)
    assert served["random_shape"] == [3, 8, 8, 1]
    assert served["random_differ"] > 1e-2  # the seed state lives in the artifact: each call draws anew
    assert served["random_t0"] == 0.0  # temperature 0 is the deterministic mode path


def test_onnx_serve_endpoint_agrees_with_dynamic_batch(glow, tmp_path):
    model, x = glow
    path = str(tmp_path / "glow.onnx")
    kgen.export.export_onnx(model, path)
    np.save(path + ".x.npy", x)
    served = _serve(SERVE_ONNX, path)
    assert not served["kgen_imported"]
    log_prob = keras.ops.convert_to_numpy(model.log_prob(x))
    np.testing.assert_allclose(np.ravel(served["outputs"][0]), log_prob, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(np.ravel(served["outputs"][1]), log_prob[:2], rtol=1e-6, atol=1e-4)


@pytest.mark.torch
def test_saved_model_from_torch_names_onnx_and_pt2(glow, tmp_path):
    model, _ = glow
    with pytest.raises(ValueError, match="export_onnx.*format='torch'"):
        kgen.export.export_saved_model(model, str(tmp_path / "glow"))
    assert not os.listdir(tmp_path)


def test_bad_requests_fail_before_writing(glow, tmp_path):
    model, _ = glow
    with pytest.raises(ValueError, match="sample_random.*random"):
        kgen.export.export_onnx(model, str(tmp_path / "a.onnx"), endpoint="sample_random")
    with pytest.raises(ValueError, match="`endpoint` must be one of"):
        kgen.export.export_onnx(model, str(tmp_path / "a.onnx"), endpoint="nope")
    with pytest.raises(ValueError, match="export_endpoints"):
        kgen.export.export_onnx(keras.Sequential([keras.layers.Dense(1)]), str(tmp_path / "b.onnx"))
    (tmp_path / "taken").mkdir()
    with pytest.raises(ValueError, match="overwrite=True"):
        kgen.export.export_onnx(model, str(tmp_path / "taken"))
    assert sorted(os.listdir(tmp_path)) == ["taken"]


SERVE_GAN = r"""
import json, sys
import numpy as np
import tensorflow as tf
path = sys.argv[1]
z, x = np.load(path + ".z.npy"), np.load(path + ".x.npy")
served = tf.saved_model.load(path)
t = tf.ones((4, 1))
refused = []
for bad in (tf.constant(0.7), tf.fill((16,), 0.7)):
    try:
        served.sample_random(bad)
    except TypeError:
        refused.append(bad.shape.rank)
print(json.dumps({"sample": served.sample(z).numpy().tolist(), "critic": served.critic(x).numpy().tolist(),
                  "random_differ": float(np.abs(served.sample_random(t).numpy() - served.sample_random(t).numpy()).max()),
                  "random_shape": list(served.sample_random(tf.fill((16, 1), 0.7)).shape), "refused_ranks": refused,
                  "kgen_imported": "kgen" in sys.modules}))
"""


@pytest.mark.jax
@pytest.mark.tensorflow
def test_gan_saved_model_serves_generator_and_critic(tmp_path):
    from kgen.gans.networks import mlp

    model = kgen.gans.GAN(mlp(3, 2, hidden=(8,), name="g", seed=0), mlp(2, 1, hidden=(8,), name="d", seed=1))
    rng = np.random.default_rng(0)
    z, x = rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(6, 2)).astype("float32")
    path = str(tmp_path / "gan")
    kgen.export.export_saved_model(model, path)
    np.save(path + ".z.npy", z)
    np.save(path + ".x.npy", x)
    served = _serve(SERVE_GAN, path)
    assert not served["kgen_imported"]
    np.testing.assert_allclose(served["sample"], keras.ops.convert_to_numpy(model.generate(z)), atol=1e-5)
    np.testing.assert_allclose(served["critic"], keras.ops.convert_to_numpy(model.critic(x, training=False)),
                               atol=1e-5)
    assert served["random_differ"] > 1e-3
    assert served["random_shape"] == [16, 2]  # temperatures (batch, 1): the batch is the number of samples
    assert served["refused_ranks"] == [0, 1]  # a scalar or a (batch,) vector does not match the signature


# Runs in a child process without kgen: calls the endpoints listed in PATH.calls.json on saved .npy inputs.
SERVE_CALLS = r"""
import json, sys
import numpy as np
import tensorflow as tf
path = sys.argv[1]
served = tf.saved_model.load(path)
results = {}
for key, endpoint, inputs in json.load(open(path + ".calls.json")):
    args = [tf.constant(np.load(f"{path}.{name}.npy")) for name in inputs]
    results[key] = getattr(served, endpoint)(*args).numpy().tolist()
print(json.dumps({"results": results, "kgen_imported": "kgen" in sys.modules}))
"""


def _serve_calls(path, inputs, calls):
    for name, array in inputs.items():
        np.save(f"{path}.{name}.npy", array)
    with open(path + ".calls.json", "w") as f:
        json.dump(calls, f)
    served = _serve(SERVE_CALLS, path)
    assert not served["kgen_imported"]
    return {key: np.asarray(value) for key, value in served["results"].items()}


@pytest.fixture(scope="module")
def diffusion_model():
    from kgen import diffusion

    net = diffusion.UNet((8, 8, 1), channels=8, channel_mults=(1, 2), attention_resolutions=(), norm_groups=4)
    # The output layer starts at zero (ε̂ = 0): randomise it so the comparisons can fail.
    rng = np.random.default_rng(0)
    net.conv_out.kernel.assign(0.2 * rng.standard_normal(tuple(net.conv_out.kernel.shape)).astype("float32"))
    return diffusion.DiffusionModel(net, diffusion.CosineSchedule(), ema_decay=None, seed=0)


@pytest.mark.jax
@pytest.mark.tensorflow
def test_diffusion_saved_model_serves_denoise_and_sampling_loops(diffusion_model, tmp_path):
    from kgen import diffusion

    model, steps = diffusion_model, 4
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 8, 8, 1)).astype("float32")
    logsnr = np.array([-2.0, 0.0, 3.0], "float32")
    x_big = rng.standard_normal((2, 16, 16, 1)).astype("float32")
    path = str(tmp_path / "diffusion")
    kgen.export.export_saved_model(model, path, steps=steps, upsample_scale=2)
    served = _serve_calls(path, {"x": x, "logsnr": logsnr, "t": np.ones((2, 1), "float32"), "big": x_big},
                          [["denoise", "denoise", ["x", "logsnr"]], ["sample", "sample", ["x"]],
                           ["up", "sample_upsampled", ["big"]], ["r1", "sample_random", ["t"]],
                           ["r2", "sample_random", ["t"]]])
    eps = keras.ops.convert_to_numpy(model.eps_fn(x, logsnr))
    assert np.abs(eps).max() > 1e-2
    np.testing.assert_allclose(served["denoise"], eps, atol=1e-5)
    sampler = diffusion.DDIMSampler(model.schedule, steps, clip_denoised=1.0)  # the endpoints' default
    # Whole loops: float32 rounding of XLA-fused vs jax2tf/TF graphs accumulates over the steps (measured up to
    # 1.5e-5 from JAX on values of order 1), so loops get 5e-5; the single network call above keeps 1e-5.
    np.testing.assert_allclose(served["sample"], keras.ops.convert_to_numpy(sampler.sample(model.eps_fn, x)),
                               atol=5e-5)
    guided = diffusion.UpsampleGuidance(model.eps_fn, model.schedule, 2)
    expected_up = keras.ops.convert_to_numpy(sampler.sample(guided, x_big))
    np.testing.assert_allclose(served["up"], expected_up, atol=5e-5)
    # Negative control: plain sampling at 16×16 is not what the UG endpoint returns.
    assert np.abs(keras.ops.convert_to_numpy(sampler.sample(model.eps_fn, x_big)) - served["up"]).max() > 1e-3
    assert served["r1"].shape == (2, 8, 8, 1) and np.abs(served["r1"] - served["r2"]).max() > 1e-2


@pytest.mark.jax
@pytest.mark.tensorflow
def test_unilm_saved_model_serves_logits_and_greedy_generation(tmp_path):
    from kgen.text import UniLM

    kgen.set_seed(0)
    model = UniLM(11, hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=32, max_length=12,
                  initializer_range=0.5)
    sources = np.array([[1, 5, 6, 7, 2, 0], [1, 8, 2, 0, 0, 0], [1, 4, 4, 9, 3, 2]], "int32")
    tokens = np.array([[1, 5, 6, 2, 3, 4, 2, 0], [1, 7, 2, 9, 9, 2, 0, 0]], "int32")
    segments = np.array([[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]], "int32")
    path = str(tmp_path / "unilm")
    kgen.export.export_saved_model(model, path, max_new_tokens=5, source_length=6, serve_length=8)
    served = _serve_calls(path, {"src": sources, "tok": tokens, "seg": segments},
                          [["generate", "generate", ["src"]], ["logits", "serve", ["tok", "seg"]]])
    expected = keras.ops.convert_to_numpy(model.generate(sources, max_new_tokens=5))
    assert len(set(map(tuple, expected))) > 1  # rows differ: a test that could fail
    np.testing.assert_array_equal(served["generate"], expected)
    logits = keras.ops.convert_to_numpy(model({"token_ids": tokens, "segment_ids": segments}))
    np.testing.assert_allclose(served["logits"], logits, atol=1e-5)


def test_diffusion_and_unilm_onnx_serve(diffusion_model, tmp_path):
    model = diffusion_model
    x = np.random.default_rng(2).standard_normal((3, 8, 8, 1)).astype("float32")
    logsnr = np.array([-1.0, 0.5, 2.0], "float32")
    path = str(tmp_path / "denoise.onnx")
    kgen.export.export_onnx(model, path)
    import onnxruntime

    session = onnxruntime.InferenceSession(path)
    names = [i.name for i in session.get_inputs()]
    out = session.run(None, dict(zip(names, [x, logsnr])))[0]
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(model.eps_fn(x, logsnr)), atol=1e-5)
