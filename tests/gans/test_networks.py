"""kgen.gans.networks: output shapes for 28×28×1, 28×28×3 and 32×32×3, every switch combination builds,
impossible shapes and bad arguments raise ValueError, conditioning reaches the output, reload, and a GAN fit."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from kgen.gans import networks
from kgen.gans.layers import SelfAttention2D, SpectralNormalization

SHAPES = [(28, 28, 1), (28, 28, 3), (32, 32, 3)]


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _labels(values):
    return ops.convert_to_tensor(values, "int32")


# Construction-heavy tests run where building is cheap: JAX compiles a random initializer for every new weight
# shape (~1 s each on the 2-core CI machine), so a 28/32-pixel network costs ~10 s to build there, against
# ~1 s on TF and torch. The graph code is backend-free; JAX still builds, calls, reloads and trains networks
# below (conditioning, spectral norm, reload, GAN fit).
@pytest.mark.tensorflow
@pytest.mark.torch
@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_networks_produce_the_requested_image_shape(arch):
    for image_shape in SHAPES:
        g = networks.generator(image_shape, latent_dim=4, arch=arch, width=2)
        d = networks.discriminator(image_shape, arch=arch, width=2)
        assert g.output_shape == (None,) + image_shape
        assert d.output_shape == (None, 1)
    # One forward pass per arch (the last shape): runtime shapes agree with the symbolic ones.
    images = _np(g(keras.random.normal((2, 4)), training=False))
    assert images.shape == (2,) + SHAPES[-1]
    assert np.all(np.abs(images) <= 1.0)  # tanh output, the data range [-1, 1]
    assert _np(d(images)).shape == (2, 1)


@pytest.mark.torch
def test_every_generator_switch_combination_builds():
    shape = (16, 16, 1)
    built = 0
    combinations = itertools.product(["dcgan", "resnet"], ["bn", "cbn", "selfmod", "none"], [False, True],
                                     [False, True], [False, True])
    for k, (arch, norm, spectral_norm, attention, conditional) in enumerate(combinations):
        if norm == "cbn" and not conditional:
            continue
        upsample = ("transpose", "nearest")[k % 2]  # both kinds for every arch and norm
        g = networks.generator(shape, latent_dim=3, arch=arch, upsample=upsample, norm=norm,
                               spectral_norm=spectral_norm, attention=attention,
                               num_classes=4 if conditional else None, width=2)
        assert g.output_shape == (None,) + shape, (arch, upsample, norm, spectral_norm, attention, conditional)
        assert len(g.inputs) == (2 if conditional else 1)
        assert any(isinstance(layer, SpectralNormalization) for layer in g.layers) == spectral_norm
        assert any(isinstance(layer, SelfAttention2D) for layer in g.layers) == attention
        built += 1
    assert built == 56


@pytest.mark.torch
def test_every_discriminator_switch_combination_builds():
    shape = (16, 16, 1)
    built = 0
    for arch, spectral_norm, attention, conditional, norm in itertools.product(
            ["dcgan", "sndcgan", "resnet"], [False, True], [False, True], [False, True], ["bn", "none"]):
        d = networks.discriminator(shape, arch=arch, spectral_norm=spectral_norm, attention=attention,
                                   num_classes=4 if conditional else None, width=2, norm=norm)
        assert d.output_shape == (None, 1)
        assert len(d.inputs) == (2 if conditional else 1)
        assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in d.layers) == (norm == "bn")
        built += 1
    assert built == 48


def _convolutions(model):
    """(kernel shape, stride) of each convolution of a network in layer order, spectrally normalised or not."""
    found = []
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, SpectralNormalization) else layer
        if isinstance(inner, keras.layers.Conv2D):
            found.append((tuple(inner.kernel.shape), inner.strides[0]))
    return found


@pytest.mark.tensorflow
@pytest.mark.torch
def test_the_sndcgan_critic_is_the_sngan_papers_standard_cnn():
    """Miyato et al. 2018, Table 3 (32×32×3): conv 3×3/1 64, 4×4/2 64, 3×3/1 128, 4×4/2 128, 3×3/1 256, 4×4/2 256,
    3×3/1 512, each followed by LeakyReLU(0.1), then dense → 1; spectral norm on every one of them."""
    d = networks.discriminator((32, 32, 3), arch="sndcgan", spectral_norm=True, width=64)
    assert _convolutions(d) == [((3, 3, 3, 64), 1), ((4, 4, 64, 64), 2), ((3, 3, 64, 128), 1), ((4, 4, 128, 128), 2),
                                ((3, 3, 128, 256), 1), ((4, 4, 256, 256), 2), ((3, 3, 256, 512), 1)]
    assert [layer.negative_slope for layer in d.layers if isinstance(layer, keras.layers.LeakyReLU)] == [0.1] * 7
    wrapped = [layer for layer in d.layers if isinstance(layer, SpectralNormalization)]
    assert len(wrapped) == 8 and tuple(wrapped[-1].layer.kernel.shape) == (4 * 4 * 512, 1)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in d.layers)  # SN: no BN
    # The 28×28 layout (two stride-2 stages) and DCGAN's own critic at the same width, for contrast.
    d28 = networks.discriminator((28, 28, 1), arch="sndcgan", width=4, spectral_norm=True)
    assert _convolutions(d28) == [((3, 3, 1, 4), 1), ((4, 4, 4, 4), 2), ((3, 3, 4, 8), 1), ((4, 4, 8, 8), 2),
                                  ((3, 3, 8, 16), 1)]
    assert d28.output_shape == (None, 1)
    assert _convolutions(networks.discriminator((28, 28, 1), width=4)) == [((4, 4, 1, 4), 2), ((4, 4, 4, 8), 2)]


@pytest.mark.tensorflow
@pytest.mark.torch
def test_the_sndcgan_critic_without_spectral_norm_has_batchnorm_after_every_conv_but_the_first(tmp_path):
    d = networks.discriminator((16, 16, 1), arch="sndcgan", spectral_norm=False, attention=True, num_classes=3,
                               width=2)
    kinds = [type(layer).__name__ for layer in d.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization, SelfAttention2D))]
    assert kinds == ["Conv2D", "Conv2D", "BatchNormalization", "SelfAttention2D", "Conv2D", "BatchNormalization",
                     "Conv2D", "BatchNormalization", "Conv2D", "BatchNormalization"]
    convs = [layer for layer in d.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [conv.use_bias for conv in convs] == [True, False, False, False, False]  # no bias before a BatchNorm
    attention = [layer for layer in d.layers if isinstance(layer, SelfAttention2D)][0]
    assert attention.input.shape[1:3] == (8, 8)  # on the H/2 map, as in the dcgan arch
    x, labels = keras.random.normal((3, 16, 16, 1)), _labels([0, 1, 2])
    path = str(tmp_path / "d.keras")
    d.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(reloaded([x, labels], training=False)), _np(d([x, labels], training=False)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("image_shape", [(30, 30, 1), (28, 32, 1), (7, 7, 1), (36, 36, 1), (28, 28), (28, 28, 0)])
def test_shapes_the_networks_cannot_produce_raise_value_error(image_shape):
    with pytest.raises(ValueError, match="image_shape"):
        networks.generator(image_shape)
    with pytest.raises(ValueError, match="image_shape"):
        networks.discriminator(image_shape)


@pytest.mark.parametrize("kwargs,match", [
    (dict(arch="stylegan"), "arch"),
    (dict(upsample="bilinear"), "upsample"),
    (dict(norm="layer"), "norm"),
    (dict(norm="cbn"), "num_classes"),
    (dict(num_classes=0), "num_classes"),
    (dict(width=0), "width"),
    (dict(latent_dim=0), "latent_dim"),
])
def test_bad_generator_arguments_raise_before_building(kwargs, match):
    with pytest.raises(ValueError, match=match):
        networks.generator((28, 28, 1), **kwargs)


def test_conditional_networks_depend_on_the_labels():
    g = networks.generator((8, 8, 1), latent_dim=3, norm="cbn", num_classes=3, width=2)
    d = networks.discriminator((8, 8, 1), num_classes=3, width=2)
    cbn = [layer for layer in g.layers if "conditional_batch_norm" in layer.name][0]
    cbn.beta.assign(np.random.default_rng(0).normal(size=cbn.beta.shape))  # β(y) starts at 0 for every class
    z = ops.repeat(keras.random.normal((1, 3)), 2, axis=0)
    images = _np(g([z, _labels([0, 2])], training=False))
    assert not np.allclose(images[0], images[1])
    x = ops.repeat(ops.convert_to_tensor(images[:1]), 2, axis=0)
    logits = _np(d([x, _labels([0, 1])]))
    assert not np.allclose(logits[0], logits[1])


def test_spectral_norm_in_every_generator_layer_bounds_each_kernel():
    g = networks.generator((8, 8, 1), latent_dim=3, spectral_norm=True, attention=True, width=2)
    wrapped = [layer for layer in g.layers if isinstance(layer, SpectralNormalization)]
    assert len(wrapped) == 2  # Dense and output deconv (the attention's convs sit inside its block)
    for layer in wrapped:
        kernel = _np(layer.normalized_kernel())
        sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert 1.0 - 1e-4 <= sigma <= 1.01


def test_selfmod_generator_and_projection_discriminator_reload_with_safe_mode(tmp_path):
    g = networks.generator((8, 8, 1), latent_dim=3, norm="selfmod", num_classes=2, spectral_norm=True,
                           attention=True, width=2)
    d = networks.discriminator((8, 8, 1), arch="resnet", attention=True, num_classes=2, width=2)
    z, labels = keras.random.normal((3, 3)), _labels([0, 1, 1])
    images = g([z, labels], training=True)
    for name, model, inputs in (("g", g, [z, labels]), ("d", d, [images, labels])):
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(_np(reloaded(inputs, training=False)), _np(model(inputs, training=False)),
                                   rtol=1e-5, atol=1e-6)


def test_mlp_toy_networks():
    g = networks.mlp_generator(latent_dim=3, data_dim=2, hidden=(8,))
    d = networks.mlp_discriminator(data_dim=2, hidden=(8, 8), spectral_norm=True)
    assert _np(g(keras.random.normal((5, 3)))).shape == (5, 2)
    assert _np(d(keras.random.normal((5, 2)))).shape == (5, 1)
    with pytest.raises(ValueError, match="hidden"):
        networks.mlp_generator(hidden=())


@pytest.mark.jax
def test_a_sagan_discriminator_trains_under_gan_fit():
    from kgen.gans.gan import GAN

    g = networks.generator((8, 8, 1), latent_dim=4, width=2)
    d = networks.discriminator((8, 8, 1), attention=True, width=2)  # SAGAN's D: spectral norm + attention
    gan = GAN(g, d, loss="hinge")
    gan.compile(optimizers={"generator": keras.optimizers.Adam(2e-4, 0.0, 0.9),
                            "discriminator": keras.optimizers.Adam(2e-4, 0.0, 0.9)})
    sn = [layer for layer in d.layers if isinstance(layer, SpectralNormalization)][0]
    u_before = _np(sn.u).copy()
    x = np.random.default_rng(0).uniform(-1, 1, size=(32, 8, 8, 1)).astype("float32")
    history = gan.fit(x, batch_size=16, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.allclose(_np(sn.u), u_before)  # u is updated inside fit (non-trainable state threaded)
