"""kgen.backend.SeedGenerator: Keras's draws exactly, and on torch no read of the device per draw."""

import os
import traceback

import keras
import numpy as np
import pytest

import kgen
from kgen.backend import SeedGenerator

BACKEND = keras.backend.backend()


def _draws(generator):
    """One of each random op kgen uses, drawn from `generator` (its state advances four times)."""
    return [keras.ops.convert_to_numpy(x) for x in (
        keras.random.normal((3,), seed=generator),
        keras.random.uniform((2,), seed=generator),
        keras.random.randint((4,), 0, 100, seed=generator),
        keras.random.shuffle(keras.ops.arange(6), seed=generator))]


def _assert_same(ours, keras_generator, rounds=2):
    for _ in range(rounds):
        for x, y in zip(_draws(ours), _draws(keras_generator)):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours.state.value),
                                  keras.ops.convert_to_numpy(keras_generator.state.value))


@pytest.mark.parametrize("seed", [0, 7, 2**31 - 3])  # the last: the state's int32 sum wraps on the third draw
def test_draws_and_state_are_keras_seed_generators(seed):
    _assert_same(SeedGenerator(seed), keras.random.SeedGenerator(seed), rounds=3)


@pytest.mark.parametrize("seed", [2**31 + 5, 2**32 + 5])
def test_any_int_seed_draws_as_seed_int_does(seed):
    """Beyond the state's dtype Keras's class fails on torch (int32) and JAX (uint32, from 2³²); kgen's takes the
    seed as `seed=int` does. (JAX's `seed=int` itself overflows from 2³²: there its low 32 bits are the oracle.)"""
    oracle = seed & 0xFFFFFFFF if BACKEND == "jax" and seed >= 2**32 else seed
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.random.normal((3,), seed=SeedGenerator(seed))),
                                  keras.ops.convert_to_numpy(keras.random.normal((3,), seed=oracle)))
    if BACKEND == "torch":
        with pytest.raises(RuntimeError, match="overflow"):
            keras.random.SeedGenerator(seed)
    model = _diffusion()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.sample(2, steps=2, seed=seed)),
                                  keras.ops.convert_to_numpy(model.sample(2, steps=2, seed=seed)))


def test_a_state_written_elsewhere_is_followed():
    ours, theirs = SeedGenerator(3), keras.random.SeedGenerator(3)
    _assert_same(ours, theirs)
    for generator in (ours, theirs):  # what load_weights and LatentMCMC.run(seed=...) do
        generator.state.assign(np.array([11, 5], "int32"))
    _assert_same(ours, theirs)
    unseeded = SeedGenerator()  # a random seed, known only to the variable
    other = keras.random.SeedGenerator(1)
    other.state.assign(unseeded.state.value)
    _assert_same(unseeded, other)


@pytest.mark.torch
def test_torch_notices_a_write_by_the_tensors_version():
    """Negative control of the test above: with the host state put back as if the write had not been seen, the
    draws leave Keras's, so the version check is what keeps them equal."""
    from kgen.backend import _torch

    ours, theirs = SeedGenerator(3), keras.random.SeedGenerator(3)
    _assert_same(ours, theirs)
    host, _ = _torch._HOST_SEEDS[ours]
    for generator in (ours, theirs):
        generator.state.assign(np.array([11, 5], "int32"))
    value = ours.state.value
    _torch._HOST_SEEDS[ours] = (host, (id(value), value._version))  # stale
    assert not np.array_equal(_draws(ours)[0], _draws(theirs)[0])


def test_it_serializes_as_kgens_class():
    config = keras.saving.serialize_keras_object(SeedGenerator(5, name="noise"))
    restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert type(restored) is SeedGenerator and restored.get_config() == {"seed": 5, "name": "noise"}
    _assert_same(restored, keras.random.SeedGenerator(5))


def _reads_from(run):
    """How many host reads of tensor values (`item`, `int`, `float`, `bool`, `tolist`) `run()` makes outside
    torch's data loader (which seeds its sampler once per epoch)."""
    from torch.overrides import TorchFunctionMode

    reads = []

    class Count(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in ("item", "__int__", "__float__", "__bool__", "__index__", "tolist"):
                frames = traceback.extract_stack()
                if not any(os.path.join("torch", "utils", "data") in f.filename for f in frames):
                    reads.append(" <- ".join(f"{os.path.basename(f.filename)}:{f.lineno}" for f in frames[-9:-1]))
            return func(*args, **(kwargs or {}))

    with Count():
        run()
    return reads


def _diffusion():
    net = kgen.diffusion.UNet((8, 8, 1), channels=4, channel_mults=(1,), attention_resolutions=())
    model = kgen.diffusion.DiffusionModel(net, kgen.diffusion.CosineSchedule(), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


@pytest.mark.torch
@pytest.mark.parametrize("family", ["diffusion", "gan"])
def test_a_torch_training_step_reads_nothing_from_the_device(family):
    """With Keras's SeedGenerator each step read its seeds back (times and noise; z for D and for G): on a GPU a
    wait per draw. kgen's reads none; swapping Keras's class back in is the negative control."""
    x = np.random.default_rng(0).uniform(-1, 1, (32, 8, 8, 1)).astype("float32")
    if family == "diffusion":
        model = _diffusion()
    else:
        from kgen.gans import GAN, networks

        model = GAN(networks.generator((8, 8, 1), 4, width=4), networks.discriminator((8, 8, 1), width=4),
                    loss="hinge", seed=0)
        model.compile(optimizers={n: keras.optimizers.Adam(2e-4, 0.5) for n in ("generator", "discriminator")})
    model.fit(x[:8], batch_size=8, epochs=1, verbose=0)  # builds, traces, makes the optimizer slots

    def fit():
        model.fit(x, batch_size=8, epochs=1, verbose=0, shuffle=False)

    assert _reads_from(fit) == []
    model.seed_generator = keras.random.SeedGenerator(0)
    assert len(_reads_from(fit)) == 4 * 2  # 4 steps, 2 draws each


@pytest.mark.torch
def test_torch_sampling_reads_nothing_from_the_device(monkeypatch):
    """x_T and the samplers' noise, from `seed` and `seed + 1`: no read with kgen's generators, one per draw with
    Keras's (the negative control)."""
    model = _diffusion()
    model.sample(2, steps=2, seed=0)  # builds
    for sampler in ("ddpm", "ancestral", "ddim"):
        reads = _reads_from(lambda: model.sample(2, steps=6, sampler=sampler, seed=1))
        assert reads == [], (sampler, reads)
    monkeypatch.setattr(kgen.base, "SeedGenerator", keras.random.SeedGenerator)  # what seed_generator_for makes
    assert len(_reads_from(lambda: model.sample(2, steps=6, sampler="ddpm", seed=1))) >= 2
