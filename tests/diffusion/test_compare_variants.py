"""`kgen.diffusion.compare`: the four Upsample Guidance variants of the benchmark, and DDIM(η) sample batches."""

import keras
import numpy as np
import pytest

from kgen.diffusion import CosineSchedule, DDIMSampler, DiffusionModel, UNet
from kgen.diffusion.compare import ddim_samples, upsample_variants

# Benchmark plumbing over the samplers and UG (tested on every backend in test_samplers / test_upsample_guidance);
# on eager JAX each new sampler's U-Net compiles op by op (about a minute here), and the JAX lane is the long pole.
pytestmark = [pytest.mark.tensorflow, pytest.mark.torch]


def _model(size, seed):
    net = UNet((size, size, 1), channels=8, channel_mults=(1,), attention_resolutions=())
    model = DiffusionModel(net, CosineSchedule(), ema_decay=None, seed=seed)  # eps_fn reads the weights below
    model.build((None, size, size, 1))
    # The output convolution starts at zero; give every weight a value so that ε̂ depends on x and λ.
    for i, variable in enumerate(model.network.trainable_variables):
        variable.assign(0.05 * np.random.default_rng(seed + i).standard_normal(variable.shape).astype("float32"))
    return model


def test_ddim_samples_equal_the_sampler_on_the_seeded_start_and_eta_adds_seeded_noise():
    model = _model(4, seed=0)
    eps = model.eps_fn
    x_T = keras.random.normal((5, 4, 4, 1), seed=7)
    direct = np.clip(keras.ops.convert_to_numpy(DDIMSampler(model.schedule, 4, clip_denoised=1.0).sample(eps, x_T)),
                     -1.0, 1.0)
    batched = ddim_samples(eps, model.schedule, (4, 4, 1), n=5, steps=4, seed=7, batch=5)
    np.testing.assert_allclose(batched, direct, atol=1e-5)
    noisy = ddim_samples(eps, model.schedule, (4, 4, 1), n=5, steps=4, seed=7, batch=5, eta=1.0)
    again = ddim_samples(eps, model.schedule, (4, 4, 1), n=5, steps=4, seed=7, batch=5, eta=1.0)
    np.testing.assert_array_equal(noisy, again)           # reproducible from the seed
    assert np.abs(noisy - batched).max() > 1e-2           # and not the deterministic sampler


def test_upsample_variants_shapes_ranges_and_block_constant_upsampling():
    low, native = _model(4, seed=1), _model(8, seed=2)
    images = upsample_variants(low, native, n=3, steps=3, seed=0, ddim_eta=1.0)
    assert sorted(images) == ["naive", "native", "ug", "upsampled"]
    for name, x in images.items():
        assert x.shape == (3, 8, 8, 1), name
        assert np.all(np.abs(x) <= 1.0), name
    up = images["upsampled"]
    np.testing.assert_array_equal(up, np.repeat(np.repeat(up[:, ::2, ::2], 2, axis=1), 2, axis=2))
    assert np.abs(images["ug"] - images["naive"]).max() > 1e-3  # the guidance term changes the samples
