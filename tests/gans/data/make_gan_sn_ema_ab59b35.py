"""How gan_sn_ema_ab59b35.keras and gan_sn_ema_ab59b35.keras.npz were written, with kgen at commit ab59b35
(before the EMA kept standing spectral-norm vectors): a GAN whose averaged generator has a spectral norm and a
BatchNorm, and its outputs (averaged and live) on fixed latents.

    git checkout ab59b35
    KERAS_BACKEND=jax python tests/gans/data/make_gan_sn_ema_ab59b35.py tests/gans/data/gan_sn_ema_ab59b35.keras
"""
import sys
import keras, numpy as np
from kgen.gans import GAN
from kgen.gans.layers import SpectralNormalization
from kgen.gans.networks import mlp
keras.utils.set_random_seed(0)
z = keras.Input((3,))
h = SpectralNormalization(keras.layers.Dense(4, name="dense_in"), name="sn")(z)
h = keras.layers.BatchNormalization(momentum=0.9, name="bn")(h)
g = keras.Model(z, keras.layers.Dense(2, name="dense_out")(keras.layers.ReLU()(h)))
gan = GAN(g, mlp(2, 1, hidden=(8,), seed=2), value_range=None, ema_decay=0.5)
gan.compile(optimizers={"generator": keras.optimizers.Adam(3e-2), "discriminator": keras.optimizers.Adam(3e-2)})
gan.fit(np.random.default_rng(0).normal(loc=2.0, size=(64, 2)).astype("float32"), batch_size=16, epochs=2, verbose=0)
gan.save(sys.argv[1])
zs = np.random.default_rng(5).normal(size=(8, 3)).astype("float32")
np.savez(sys.argv[1] + ".npz", z=zs, averaged=keras.ops.convert_to_numpy(gan.generate(zs)),
         live=keras.ops.convert_to_numpy(gan.generate(zs, use_ema=False)))
