"""Flows under a mixed policy: the coupling networks compute in bf16, everything that is a density stays float32.

A bf16 log-determinant is wrong by whole nats (8 bits of mantissa on sums of hundreds), so the flow state, the
log-dets, priors, ActNorm and 1×1-conv parameters keep the policy's variable dtype; only the networks inside the
couplings (where the FLOPs are) use the mixed policy.
"""

import numpy as np
import pytest
import keras
from keras import ops

from kgen.datasets import DIGIT_LEVELS, dequantize, load_digits
from kgen.flows import NICE, Glow, RealNVP
from kgen.flows.layers.base import FlowLayer
from kgen.flows.layers.coupling import AffineCoupling, _Coupling
from kgen.flows.layers.split import Split

MODELS = {
    "glow": lambda: Glow((8, 8, 1), levels=2, depth=1, filters=8),
    "realnvp_image": lambda: RealNVP((8, 8, 1), scales=2, filters=8),
    "nice": lambda: NICE((8, 8, 1), hidden=(16,), scale_init="data"),
}


def _digits(n=128):
    return dequantize(load_digits("train")[0][:n], DIGIT_LEVELS, seed=0)


def _trained_float32(name, x):
    model = MODELS[name]()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, batch_size=64, epochs=1, verbose=0)
    return model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_mixed_policy_keeps_the_density_in_float32(name, mixed_bfloat16):
    x = _digits()
    model = MODELS[name]()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, batch_size=64, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert model.network_dtype == "mixed_bfloat16" and model.compute_dtype == "float32"
    assert ops.convert_to_numpy(model.log_prob(x[:4])).dtype == np.float32
    couplings = [layer for layer in model.flow_layers if isinstance(layer, _Coupling)]
    assert couplings
    for layer in model.flow_layers:
        if isinstance(layer, (FlowLayer, Split)):
            assert layer.compute_dtype == "float32", layer.name
            assert all(v.dtype == "float32" for v in layer.weights if "float" in v.dtype), layer.name
    for layer in couplings:
        inner = [sub for sub in layer.net.layers if sub.weights]
        assert inner and all(sub.compute_dtype == "bfloat16" for sub in inner)
        assert all(v.dtype == "float32" for v in layer.net.weights)  # variables stay float32


@pytest.mark.parametrize("name", ["glow", "nice"])
def test_bits_per_dim_under_the_mixed_policy_is_within_0_01_of_float32(name):
    x = _digits()
    reference = _trained_float32(name, x)
    reference_bpd = reference.bits_per_dim(x, DIGIT_LEVELS)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = MODELS[name]()
        mixed.log_prob(x[:2])  # builds every layer
        mixed.set_weights(reference.get_weights())
        mixed_bpd = mixed.bits_per_dim(x, DIGIT_LEVELS)
    finally:
        keras.config.set_dtype_policy(previous)
    assert abs(mixed_bpd - reference_bpd) < 0.01, (mixed_bpd, reference_bpd)


def test_a_coupling_given_the_mixed_policy_itself_would_sum_its_log_det_in_bf16():
    """Negative control of the dtype checks above: the naive mixed layer is caught by them."""
    naive = AffineCoupling(partition="channel", network="conv", filters=8, dtype="mixed_bfloat16")
    _, logdet = naive(keras.random.normal((2, 4, 4, 2)))
    assert naive.compute_dtype == "bfloat16" and keras.backend.standardize_dtype(logdet.dtype) == "bfloat16"
    kgen_default = AffineCoupling(partition="channel", network="conv", filters=8, network_dtype="mixed_bfloat16")
    _, logdet = kgen_default(keras.random.normal((2, 4, 4, 2)))
    assert keras.backend.standardize_dtype(logdet.dtype) == "float32"


def test_reload_keeps_the_network_policy(tmp_path, mixed_bfloat16):
    x = _digits(64)
    model = MODELS["glow"]()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, batch_size=32, epochs=1, verbose=0)
    path = str(tmp_path / "glow.keras")
    model.save(path)
    keras.config.set_dtype_policy("float32")  # a user who loads in a fresh, float32 process
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.network_dtype == "mixed_bfloat16"
    coupling = next(layer for layer in loaded.flow_layers if isinstance(layer, _Coupling))
    assert coupling.net.layers[0].compute_dtype == "bfloat16"
    np.testing.assert_allclose(ops.convert_to_numpy(loaded.log_prob(x[:8])),
                               ops.convert_to_numpy(model.log_prob(x[:8])), rtol=1e-6)


def test_an_explicit_dtype_argument_sets_the_network_policy():
    model = Glow((8, 8, 1), levels=2, depth=1, filters=8, dtype="mixed_bfloat16")
    assert model.network_dtype == "mixed_bfloat16" and model.compute_dtype == "float32"
    coupling = next(layer for layer in model.flow_layers if isinstance(layer, _Coupling))
    assert coupling.compute_dtype == "float32" and coupling.net.layers[0].compute_dtype == "bfloat16"
    plain = Glow((8, 8, 1), levels=2, depth=1, filters=8)
    assert plain.network_dtype == "float32"
