"""Adversarial losses: every f-GAN row, hinge, WGAN-GP, WGAN-div and GAN-QP, in one contract.

Articles and papers (kexue.fm/archives/NNNN):
  * f-GAN: Su 6016; Nowozin et al. 2016 (arXiv 1606.00709). L_D = −mean T(x_r) + mean f*(T(x_f)),
    T = activation(D(x)); generator: saturating −mean f*(T(x_f)), or non-saturating −mean T(x_f) (the
    paper's generalisation of the −log D trick). Minimising D_f(P_data‖P_G).
  * hinge: SNGAN/SAGAN/BigGAN; Su 6316 writes it in the energy sign (U = −D).
  * WGAN-GP: Gulrajani et al. 2017 (arXiv 1704.00028). λ·mean (‖∇D(x̂)‖ − 1)², x̂ = ε x_r + (1 − ε) x_f with
    ε ~ U[0, 1] drawn once per example (not per pixel, not normal: keras-io #415, PyTorch-GAN #5).
  * WGAN-div: Wu et al. 2018 (arXiv 1712.01026); Su 6139. k/2·mean(‖∇D(x_r)‖^p + ‖∇D(x_f)‖^p), k=2, p=6, on
    real and fake samples as in Su's code.
  * GAN-QP: Su 6163 (arXiv 1811.07296). With Δ = D(x_r) − D(x_f) and d = mean|x_r − x_f| (L1 per dimension),
    L_D = mean(−Δ + Δ²/(2λd)), L_G = mean(Δ); the quadratic term never enters the generator loss.

Sign convention: the discriminator D returns a *score*, higher for real data (the paper's V). The energy
view (Su 6316/6331) uses U = −D; see `kgen.gans.energy`.

Contract: `loss.discriminator_loss(critic, real, fake, seed_generator)` where `critic(x) -> (batch,)`
(gradient penalties call it through `kgen.backend.input_gradient`), and
`loss.generator_loss(fake_scores, real_scores)`. `real_scores` is only read by losses whose
`generator_needs_real = True` (GAN-QP).
"""

import keras
from keras import ops

from kgen import backend as kb
from kgen._checks import check_choice, check_positive_float
from kgen.gans.fdivergences import FDIVERGENCE_NAMES, fdivergence

OTHER_LOSSES = ("hinge", "wgan_gp", "wgan_div", "gan_qp")
LOSS_NAMES = OTHER_LOSSES + FDIVERGENCE_NAMES
"""Every loss name accepted by `get_loss` and `kgen.gans.GAN`: the four above, then every f-divergence name."""
GENERATOR_FORMS = ("non_saturating", "saturating")


def per_example_norm(grad, power=1.0, eps=1e-12):
    """‖g_i‖^power for each example i of a batch of gradients `(batch, ...)`: sum over non-batch axes first.

    `eps` inside the square root keeps the gradient of the norm finite at g = 0 (keras-io #624).
    """
    batch = ops.shape(grad)[0]
    squared = ops.sum(ops.square(ops.reshape(grad, (batch, -1))), axis=-1)
    if power == 2.0:
        return squared
    return ops.power(squared + eps, 0.5 * power)


def interpolates(real, fake, seed_generator):
    """x̂ = ε·real + (1 − ε)·fake with one ε ~ U[0, 1] per example (broadcast over the other axes)."""
    batch = ops.shape(real)[0]
    shape = (batch,) + (1,) * (len(real.shape) - 1)
    eps = keras.random.uniform(shape, dtype=real.dtype, seed=seed_generator)
    return eps * real + (1.0 - eps) * fake


class FGANLoss:
    """f-GAN losses for the table row `divergence` (see `kgen.gans.fdivergences`)."""

    generator_needs_real = False

    def __init__(self, divergence, generator_form="non_saturating"):
        self.divergence = fdivergence(divergence)
        self.generator_form = check_choice("generator_form", generator_form, GENERATOR_FORMS)
        self.name = divergence

    def discriminator_loss(self, critic, real, fake, seed_generator=None):
        return -self.divergence.bound(critic(real), critic(fake))

    def generator_loss(self, fake_scores, real_scores=None):
        if self.generator_form == "saturating":
            return -ops.mean(self.divergence.composite(fake_scores))
        return -ops.mean(self.divergence.activation(fake_scores))


class HingeLoss:
    """L_D = mean relu(1 − D(x_r)) + mean relu(1 + D(x_f));  L_G = −mean D(x_f)."""

    generator_needs_real = False
    name = "hinge"

    def discriminator_loss(self, critic, real, fake, seed_generator=None):
        return ops.mean(ops.relu(1.0 - critic(real))) + ops.mean(ops.relu(1.0 + critic(fake)))

    def generator_loss(self, fake_scores, real_scores=None):
        return -ops.mean(fake_scores)


class WGANGPLoss:
    """L_D = mean D(x_f) − mean D(x_r) + λ·mean (‖∇D(x̂)‖ − 1)²;  L_G = −mean D(x_f).  λ = 10 (the paper)."""

    generator_needs_real = False
    name = "wgan_gp"

    def __init__(self, weight=10.0):
        self.weight = check_positive_float("weight", weight)

    def discriminator_loss(self, critic, real, fake, seed_generator=None):
        if seed_generator is None:
            raise ValueError("WGAN-GP needs a `seed_generator` for the interpolation coefficients")
        x_hat = interpolates(real, fake, seed_generator)
        norms = per_example_norm(kb.input_gradient(critic, x_hat))
        return ops.mean(critic(fake)) - ops.mean(critic(real)) + self.weight * ops.mean(ops.square(norms - 1.0))

    def generator_loss(self, fake_scores, real_scores=None):
        return -ops.mean(fake_scores)


class WGANDivLoss:
    """L_D = mean D(x_f) − mean D(x_r) + k/2·mean(‖∇D(x_r)‖^p + ‖∇D(x_f)‖^p);  L_G = −mean D(x_f). k=2, p=6."""

    generator_needs_real = False
    name = "wgan_div"

    def __init__(self, k=2.0, p=6.0):
        self.k = check_positive_float("k", k)
        self.p = check_positive_float("p", p)

    def discriminator_loss(self, critic, real, fake, seed_generator=None):
        penalty = (ops.mean(per_example_norm(kb.input_gradient(critic, real), self.p))
                   + ops.mean(per_example_norm(kb.input_gradient(critic, fake), self.p)))
        return ops.mean(critic(fake)) - ops.mean(critic(real)) + 0.5 * self.k * penalty

    def generator_loss(self, fake_scores, real_scores=None):
        return -ops.mean(fake_scores)


class GANQPLoss:
    """GAN-QP with the pair critic T(x_r, x_f) − T(x_f, x_r) = D(x_r) − D(x_f) (Su's code); λ = 10."""

    generator_needs_real = True
    name = "gan_qp"

    def __init__(self, weight=10.0):
        self.weight = check_positive_float("weight", weight)

    def discriminator_loss(self, critic, real, fake, seed_generator=None):
        delta = critic(real) - critic(fake)
        batch = ops.shape(real)[0]
        distance = ops.mean(ops.abs(ops.reshape(real - fake, (batch, -1))), axis=-1)
        return ops.mean(-delta + ops.square(delta) / (2.0 * self.weight * distance + 1e-8))

    def generator_loss(self, fake_scores, real_scores=None):
        return ops.mean(real_scores - fake_scores)


def get_loss(name, generator_form="non_saturating", weight=None):
    """The loss object called `name` (one of `LOSS_NAMES`).

    Args:
        name: "hinge", "wgan_gp", "wgan_div", "gan_qp", or an f-divergence name ("gan", "js", "kl", ...).
        generator_form: f-GAN rows only: "non_saturating" (default) or "saturating".
        weight: λ of WGAN-GP (10) or GAN-QP (10); None keeps the paper's value.

    Raises:
        ValueError: unknown name (the message lists every valid one) or bad options.
    """
    check_choice("loss", name, LOSS_NAMES)
    check_choice("generator_form", generator_form, GENERATOR_FORMS)
    kwargs = {} if weight is None else {"weight": weight}
    if name == "hinge":
        return HingeLoss()
    if name == "wgan_gp":
        return WGANGPLoss(**kwargs)
    if name == "wgan_div":
        return WGANDivLoss()
    if name == "gan_qp":
        return GANQPLoss(**kwargs)
    return FGANLoss(name, generator_form)
