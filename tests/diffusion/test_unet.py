"""The log-SNR-conditioned UNet: shapes, conditioning, sizes, reload (kgen/diffusion/unet.py)."""

import keras
import numpy as np
import pytest
from keras import ops

from kgen.diffusion.unet import UNet
from kgen.diffusion.unet_layers import GroupNorm, LogSNREmbedding

TINY = dict(channels=8, channel_mults=(1, 1), num_res_blocks=1, norm_groups=4)


def _randomise_output_layer(net, seed=0):
    # The output convolution starts at zero (the net predicts 0); give it weights so inputs show in the output.
    rng = np.random.default_rng(seed)
    net.conv_out.kernel.assign(0.3 * rng.standard_normal(tuple(net.conv_out.kernel.shape)).astype("float32"))


def _inputs(shape, batch=2, logsnr=0.0, labels=None, seed=0):
    x = np.random.default_rng(seed).standard_normal((batch,) + tuple(shape)).astype("float32")
    inputs = [x, np.full((batch,), logsnr, "float32")]
    if labels is not None:
        inputs.append(np.asarray(labels, "int32"))
    return inputs


@pytest.mark.parametrize("shape, attention", [((8, 8, 1), (4,)), ((14, 14, 1), (7,)), ((28, 28, 3), ())])
def test_unet_output_has_the_image_shape(shape, attention):
    net = UNet(shape, attention_resolutions=attention, **TINY)
    out = net(_inputs(shape))
    assert tuple(out.shape) == (2,) + shape


def test_unet_downsamples_only_while_the_size_is_even():
    mults = dict(TINY, channel_mults=(1, 1, 1), attention_resolutions=())
    assert UNet((28, 28, 1), **mults).level_downsamples == [True, True, False]   # 28 -> 14 -> 7
    assert UNet((14, 14, 1), **mults).level_downsamples == [True, False, False]  # 14 -> 7 -> 7
    assert UNet((8, 8, 1), **mults).level_downsamples == [True, True, False]     # 8 -> 4 -> 2
    assert UNet((14, 14, 1), **mults).downsampling_factor == 2


def test_untrained_unet_predicts_zero():
    net = UNet((8, 8, 1), attention_resolutions=(), **TINY)
    out = ops.convert_to_numpy(net(_inputs((8, 8, 1))))
    assert np.all(out == 0.0)


def test_unet_output_depends_on_logsnr():
    net = UNet((8, 8, 1), attention_resolutions=(4,), **TINY)
    _randomise_output_layer(net)
    low = ops.convert_to_numpy(net(_inputs((8, 8, 1), logsnr=-3.0)))
    high = ops.convert_to_numpy(net(_inputs((8, 8, 1), logsnr=3.0)))
    again = ops.convert_to_numpy(net(_inputs((8, 8, 1), logsnr=-3.0)))
    np.testing.assert_array_equal(low, again)  # control: the network is deterministic
    assert np.abs(low - high).mean() > 1e-3 * np.abs(low).mean() + 1e-6


def test_conditional_unet_output_depends_on_label_and_has_a_null_class():
    net = UNet((8, 8, 1), attention_resolutions=(), num_classes=3, **TINY)
    _randomise_output_layer(net)
    outs = [ops.convert_to_numpy(net(_inputs((8, 8, 1), labels=[k, k]))) for k in (0, 1, 3)]  # 3 = null
    assert np.abs(outs[0] - outs[1]).max() > 1e-4
    assert np.abs(outs[0] - outs[2]).max() > 1e-4
    with pytest.raises(ValueError, match="labels"):
        net(_inputs((8, 8, 1)))


def test_unet_built_at_14_runs_at_28():
    # Upsample Guidance runs the low-resolution model on the high-resolution image.
    net = UNet((14, 14, 1), attention_resolutions=(7,), **TINY)
    assert tuple(net(_inputs((28, 28, 1))).shape) == (2, 28, 28, 1)


def test_unet_rejects_incompatible_sizes():
    net = UNet((14, 14, 1), attention_resolutions=(), **TINY)
    with pytest.raises(ValueError, match="not compatible"):
        net(_inputs((7, 7, 1)))
    with pytest.raises(ValueError, match="shape"):
        net(_inputs((14, 14, 3)))
    with pytest.raises(ValueError, match="image_shape"):
        UNet((14, 14), **TINY)


def test_logsnr_embedding_is_sinusoidal_in_logsnr():
    layer = LogSNREmbedding(8, max_frequency=4.0)
    logsnr = np.array([-2.0, 0.5, 7.0], "float32")
    omega = np.geomspace(0.25, 4.0, 4)
    expected = np.concatenate([np.sin(logsnr[:, None] * omega), np.cos(logsnr[:, None] * omega)], axis=1)
    np.testing.assert_allclose(ops.convert_to_numpy(layer.features(logsnr)), expected, atol=1e-5)
    # Negative control: the embedding of λ is not the embedding of λ + 2 log 2 (the UG time shift matters).
    shifted = ops.convert_to_numpy(layer.features(logsnr + 2 * np.log(2.0)))
    assert np.abs(shifted - expected).max() > 0.1


def test_unet_survives_reload(tmp_path):
    net = UNet((8, 8, 1), attention_resolutions=(4,), num_classes=2, **TINY)
    _randomise_output_layer(net)
    inputs = _inputs((8, 8, 1), logsnr=1.5, labels=[0, 2])
    path = str(tmp_path / "unet.keras")
    net.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.get_config() == net.get_config()
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(inputs)), ops.convert_to_numpy(net(inputs)))


@pytest.mark.parametrize("shape, groups", [((2, 5, 4, 16), 8), ((3, 6, 6, 6), 3), ((2, 7, 12), 4)])
def test_group_norm_matches_keras_group_normalization(shape, groups):
    # Oracle: Keras's own layer, with the same random scale and shift, on inputs far from zero mean.
    rng = np.random.default_rng(0)
    x = (3.0 + 2.0 * rng.standard_normal(shape)).astype("float32")
    ours, reference = GroupNorm(groups), keras.layers.GroupNormalization(groups, epsilon=1e-3)
    ours.build(shape), reference.build(shape)
    gamma, beta = rng.standard_normal((2, shape[-1])).astype("float32")
    ours.set_weights([gamma, beta])
    reference.set_weights([gamma, beta])
    np.testing.assert_allclose(ops.convert_to_numpy(ours(x)), ops.convert_to_numpy(reference(x)), atol=2e-5)
    # Negative control: a different grouping is a different function.
    other = GroupNorm(1 if groups > 1 else 2)
    other.build(shape)
    other.set_weights([gamma, beta])
    assert np.abs(ops.convert_to_numpy(other(x)) - ops.convert_to_numpy(reference(x))).max() > 1e-2


def test_group_norm_rejects_groups_that_do_not_divide_the_channels():
    with pytest.raises(ValueError, match="groups"):
        GroupNorm(3).build((None, 4, 4, 8))
