"""How gan_9243896.keras and gan_9243896_optimizer.npz were written, with kgen at commit 9243896 (before each
optimizer variable was saved once):

    git checkout 9243896
    KERAS_BACKEND=jax python tests/gans/data/make_gan_9243896.py tests/gans/data/gan_9243896.keras
"""
import sys, keras, numpy as np, kgen
from kgen.gans.networks import mlp
keras.utils.set_random_seed(0)
gan = kgen.gans.GAN(mlp(2, 2, hidden=(4,), name="g", seed=0), mlp(2, 1, hidden=(4,), name="d", seed=1), loss="hinge")
gan.compile(optimizers={"generator": keras.optimizers.Adam(1e-3), "discriminator": keras.optimizers.Adam(2e-3)})
gan.fit(np.random.default_rng(0).normal(size=(16, 2)).astype("float32"), batch_size=4, epochs=1, verbose=0)
gan.save(sys.argv[1])
np.savez(sys.argv[1] + ".npz", *[keras.ops.convert_to_numpy(v) for v in gan.optimizer.variables])
