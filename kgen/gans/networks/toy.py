"""Small MLP generator and discriminator for 2-D toy data (rings of Gaussians, grids, swiss rolls).

The sizes follow the measurements in the project's GAN research note (G and D with two hidden layers of
128 units, z of dimension 2, trained on the ring of 8 Gaussians); the discriminator's LeakyReLU(0.2) is
that of the MEG toy networks (Kumar et al. 2019). `spectral_norm=True` gives the SNGAN-style critic.
"""

import keras

from kgen._checks import check_int
from kgen.gans.networks import _blocks as B


def _check_hidden(hidden):
    if not isinstance(hidden, (tuple, list)) or not hidden:
        raise ValueError(f"`hidden` must be a non-empty tuple of layer widths, got {hidden!r}")
    return tuple(check_int("hidden", h, 1) for h in hidden)


def mlp_generator(latent_dim=2, data_dim=2, hidden=(128, 128), name="generator"):
    """z (latent_dim,) → x (data_dim,), ReLU hidden layers, linear output.

    Example:
        >>> mlp_generator()(keras.random.normal((5, 2))).shape
        (5, 2)
    """
    latent_dim, data_dim = check_int("latent_dim", latent_dim, 1), check_int("data_dim", data_dim, 1)
    z = keras.Input((latent_dim,), name="z")
    h = z
    for units in _check_hidden(hidden):
        h = keras.layers.Dense(units, activation="relu")(h)
    return keras.Model(z, keras.layers.Dense(data_dim)(h), name=name)


def mlp_discriminator(data_dim=2, hidden=(128, 128), spectral_norm=False, name="discriminator"):
    """x (data_dim,) → logit (1,), LeakyReLU(0.2) hidden layers, optionally spectral-normalized.

    Example:
        >>> mlp_discriminator(spectral_norm=True)(keras.random.normal((5, 2))).shape
        (5, 1)
    """
    data_dim = check_int("data_dim", data_dim, 1)
    x = keras.Input((data_dim,), name="x")
    h = x
    for units in _check_hidden(hidden):
        h = keras.layers.LeakyReLU(0.2)(B.dense(units, bool(spectral_norm))(h))
    return keras.Model(x, B.dense(1, bool(spectral_norm))(h), name=name)
