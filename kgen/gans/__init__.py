"""GANs in `keras.ops`: the f-GAN table and every loss, `GAN`, `EnergyGAN`, latent MCMC.

Articles (kexue.fm/archives/NNNN): f-GAN 6016, the energy view 6316/6331, WGAN-div 6139, GAN-QP 6163, the
single-loss trick 6387, O-GAN 6409.

- `fdivergence(name)`: the f-divergence table (kgen/gans/fdivergences.py); `estimate_fdivergence(p, q, name)`
  and `VariationalCritic`: the variational estimator on that table (kgen/gans/estimation.py).
- `GAN(generator, discriminator, loss=...)`: trained by `fit` on TF, JAX and torch (kgen/gans/gan.py);
  the losses live in kgen/gans/losses.py, the shared base `AdversarialGenerator` (sample, energy, critic,
  value_range, saving) in kgen/gans/base.py.
- `EnergyGAN`: energy U = discriminator, zero-centred real GP, MI entropy term (kgen/gans/energy.py).
- `mcmc.LatentMCMC`: MALA / Langevin on U(G(z)) + ½‖z‖² (kgen/gans/mcmc.py).
- `networks.mlp`, `networks.generator`, ...: the networks (kgen/gans/networks/).

Import order follows the dependencies (no module imports a sibling that imports it back):
fdivergences → losses; layers → networks; base → gan, energy; fdivergences + networks → estimation.
"""

from kgen.gans import layers, networks  # noqa: F401
from kgen.gans import fdivergences, losses, mcmc  # noqa: F401
from kgen.gans.base import AdversarialGenerator  # noqa: F401
from kgen.gans.ema import EMA  # noqa: F401
from kgen.gans.energy import EnergyGAN  # noqa: F401
from kgen.gans.estimation import VariationalCritic, estimate_fdivergence  # noqa: F401
from kgen.gans.fdivergences import FDIVERGENCE_NAMES, FDivergence, fdivergence  # noqa: F401
from kgen.gans.gan import GAN  # noqa: F401
from kgen.gans.losses import LOSS_NAMES  # noqa: F401
from kgen.gans.mcmc import LatentMCMC  # noqa: F401
