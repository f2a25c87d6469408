"""Small MLPs for 2-D toy data (rings of Gaussians, grids, swiss rolls): `mlp`, `mlp_generator`, `mlp_discriminator`.

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


def mlp(input_dims, output_dim, hidden=(128, 128), activation="relu", name=None, seed=None):
    """A small functional MLP on the concatenation of inputs of sizes `input_dims` (toy G, D, T networks).

    Linear output; `seed` fixes the Glorot-uniform initial weights (None: drawn from Keras's global seed).

    Example:
        >>> import keras
        >>> from kgen.gans.networks import mlp
        >>> g = mlp(2, 2, name="generator")              # z (2,) -> x (2,)
        >>> t = mlp([2, 2], 1, activation="leaky_relu")  # [x, z] -> score
        >>> t([keras.ops.zeros((5, 2)), keras.ops.zeros((5, 2))]).shape
        (5, 1)
    """
    dims = [input_dims] if isinstance(input_dims, int) else list(input_dims)
    inputs = [keras.Input((check_int("input_dims", d, 1),)) for d in dims]
    h = inputs[0] if len(inputs) == 1 else keras.layers.Concatenate()(inputs)
    for k, width in enumerate(tuple(hidden) + (output_dim,)):
        init = keras.initializers.GlorotUniform(seed=None if seed is None else seed + k)
        h = keras.layers.Dense(width, activation=activation if k < len(hidden) else None, kernel_initializer=init)(h)
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, h, name=name)


def mlp_generator(latent_dim=2, data_dim=2, hidden=(128, 128), name="generator"):
    """z (latent_dim,) → x (data_dim,), ReLU hidden layers, linear output.

    Example:
        >>> import keras
        >>> from kgen.gans.networks import mlp_generator
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
        >>> import keras
        >>> from kgen.gans.networks import mlp_discriminator
        >>> mlp_discriminator(spectral_norm=True)(keras.random.normal((5, 2))).shape
        (5, 1)
    """
    data_dim = check_int("data_dim", data_dim, 1)
    x = keras.Input((data_dim,), name="x")
    h = x
    for units in _check_hidden(hidden):
        h = keras.layers.LeakyReLU(0.2)(B.dense(units, bool(spectral_norm))(h))
    return keras.Model(x, B.dense(1, bool(spectral_norm))(h), name=name)
