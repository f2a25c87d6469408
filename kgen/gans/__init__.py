"""GANs in `keras.ops`: the f-GAN table and every loss, `GAN`, `EnergyGAN`, latent MCMC.

Articles (kexue.fm/archives/NNNN): f-GAN 6016, the energy view 6316/6331, WGAN-div 6139, GAN-QP 6163, the
single-loss trick 6387, O-GAN 6409. Research notes: /work/shared/research/gans.md.

- `fdivergence(name)`, `estimate_fdivergence(p, q, name)`: the f-divergence table (kgen/gans/fdivergences.py).
- `GAN(generator, discriminator, loss=...)`: trained by `fit` on TF, JAX and torch (kgen/gans/gan.py);
  the losses live in kgen/gans/losses.py.
- `EnergyGAN`: energy U = discriminator, zero-centred real GP, MI entropy term (kgen/gans/energy.py).
- `mcmc.LatentSampler`: MALA / Langevin on U(G(z)) + ½‖z‖² (kgen/gans/mcmc.py).
"""

from kgen.gans import losses, mcmc  # noqa: F401
from kgen.gans.energy import EnergyGAN  # noqa: F401
from kgen.gans.fdivergences import FDIVERGENCE_NAMES, FDivergence, estimate_fdivergence, fdivergence  # noqa: F401
from kgen.gans.gan import GAN  # noqa: F401
from kgen.gans.losses import LOSS_NAMES  # noqa: F401

from kgen.gans import layers, networks  # noqa: F401,E402
from kgen.gans.ema import EMA  # noqa: F401,E402
