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

Contract (`AdversarialLoss`): `loss.discriminator_loss(critic, real, fake, seed_generator)` where
`critic(x) -> (batch,)` (gradient penalties call it through `kgen.backend.input_gradient`), and
`loss.generator_loss(fake_scores, real_scores)`, by default −mean D(x_f). `real_scores` is only read by
losses whose `generator_needs_real = True` (GAN-QP). `get_loss(name)` looks the class up in `LOSSES`
(name → class); every f-divergence name gives an `FGANLoss`.
"""

import keras
from keras import ops

from kgen import backend as kb
from kgen._checks import check_choice, check_positive_float
from kgen._deprecation import warn_deprecated
from kgen.gans.fdivergences import FDIVERGENCE_NAMES, fdivergence

GENERATOR_FORMS = ("non_saturating", "saturating")


def per_example_norm_pow(grad, power=1.0, eps=1e-12):
    """‖g_i‖^power for each example i of a batch of gradients `(batch, ...)`: sum over non-batch axes first.

    `power=2` is the plain sum of squares; otherwise `eps` inside the square root keeps the gradient of the
    norm finite at g = 0 (keras-io #624).

    Example:
        >>> import keras
        >>> from kgen.gans.losses import per_example_norm_pow
        >>> g = keras.ops.convert_to_tensor([[3.0, 4.0], [0.0, 1.0]])
        >>> per_example_norm_pow(g, 2.0)   # [25., 1.]
    """
    batch = ops.shape(grad)[0]
    squared = ops.sum(ops.square(ops.reshape(grad, (batch, -1))), axis=-1)
    if power == 2.0:
        return squared
    return ops.power(squared + eps, 0.5 * power)


def per_example_norm(grad, power=1.0, eps=1e-12):
    """Deprecated alias of `per_example_norm_pow` (it returns ‖g_i‖^power, not the norm)."""
    warn_deprecated("kgen.gans.losses.per_example_norm", "per_example_norm_pow (same arguments)")
    return per_example_norm_pow(grad, power, eps)


def interpolates(real, fake, seed_generator):
    """x̂ = ε·real + (1 − ε)·fake with one ε ~ U[0, 1] per example (broadcast over the other axes)."""
    batch = ops.shape(real)[0]
    shape = (batch,) + (1,) * (len(real.shape) - 1)
    eps = keras.random.uniform(shape, dtype=real.dtype, seed=seed_generator)
    return eps * real + (1.0 - eps) * fake


class AdversarialLoss:
    """The contract of every GAN loss: `discriminator_loss(critic, real, fake, seed_generator)` and
    `generator_loss(fake_scores, real_scores=None)`, by default L_G = −mean D(x_f).

    Attributes:
        name: the name `get_loss` knows the loss by.
        generator_needs_real: whether `generator_loss` reads `real_scores` (the GAN passes D(x_r) then).
        options: which of `get_loss`'s options (`"weight"`, `"generator_form"`) the constructor takes.

    Example:
        >>> import keras
        >>> from kgen.gans.losses import AdversarialLoss
        >>> class LeastSquares(AdversarialLoss):   # LSGAN's discriminator, the default generator loss
        ...     name = "least_squares"
        ...     def discriminator_loss(self, critic, real, fake, seed_generator=None):
        ...         return keras.ops.mean((critic(real) - 1.0) ** 2) + keras.ops.mean(critic(fake) ** 2)
        >>> LeastSquares().generator_loss(keras.ops.convert_to_tensor([1.0, 3.0]))   # −2.0
    """

    name = None
    generator_needs_real = False
    options = ()

    def discriminator_loss(self, critic, real, fake, seed_generator=None):
        """The discriminator's loss (scalar) from `critic(x) -> (batch,)` on real and fake batches."""
        raise NotImplementedError(f"{type(self).__name__} must implement discriminator_loss")

    def generator_loss(self, fake_scores, real_scores=None):
        """L_G = −mean D(x_f): the generator raises the critic's score of its samples."""
        return -ops.mean(fake_scores)

    def __repr__(self):
        return f"{type(self).__name__}()"


class FGANLoss(AdversarialLoss):
    """f-GAN losses for the table row `divergence` (see `kgen.gans.fdivergences`).

    L_D = −[mean T(x_r) − mean f*(T(x_f))], T = activation(D(x)); L_G = −mean T(x_f) ("non_saturating") or
    −mean f*(T(x_f)) ("saturating").

    Example:
        >>> import keras
        >>> from kgen.gans.losses import FGANLoss
        >>> loss = FGANLoss("js")
        >>> critic = lambda x: keras.ops.sum(x, axis=-1)   # D(x) = x₁ + x₂
        >>> real, fake = keras.ops.ones((4, 2)), keras.ops.zeros((4, 2))
        >>> loss.discriminator_loss(critic, real, fake), loss.generator_loss(critic(fake))
    """

    options = ("generator_form",)

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

    def __repr__(self):
        return f"FGANLoss({self.name!r}, generator_form={self.generator_form!r})"


class HingeLoss(AdversarialLoss):
    """L_D = mean relu(1 − D(x_r)) + mean relu(1 + D(x_f));  L_G = −mean D(x_f).

    Example:
        >>> import keras
        >>> from kgen.gans.losses import HingeLoss
        >>> critic = lambda x: keras.ops.sum(x, axis=-1)
        >>> HingeLoss().discriminator_loss(critic, keras.ops.ones((4, 2)), -keras.ops.ones((4, 2)))   # 0.0
    """

    name = "hinge"

    def discriminator_loss(self, critic, real, fake, seed_generator=None):
        return ops.mean(ops.relu(1.0 - critic(real))) + ops.mean(ops.relu(1.0 + critic(fake)))


class WGANGPLoss(AdversarialLoss):
    """L_D = mean D(x_f) − mean D(x_r) + λ·mean (‖∇D(x̂)‖ − 1)²;  L_G = −mean D(x_f).  λ = 10 (the paper).

    Example:
        >>> import keras
        >>> from kgen.gans.losses import WGANGPLoss
        >>> critic = lambda x: keras.ops.sum(x, axis=-1)   # ‖∇D‖ = √2 everywhere
        >>> real, fake = keras.ops.ones((4, 2)), keras.ops.zeros((4, 2))
        >>> WGANGPLoss(weight=10.0).discriminator_loss(critic, real, fake, keras.random.SeedGenerator(0))
    """

    name = "wgan_gp"
    options = ("weight",)

    def __init__(self, weight=10.0):
        self.weight = check_positive_float("weight", weight)

    def discriminator_loss(self, critic, real, fake, seed_generator=None):
        if seed_generator is None:
            raise ValueError("WGAN-GP needs a `seed_generator` for the interpolation coefficients")
        x_hat = interpolates(real, fake, seed_generator)
        norms = per_example_norm_pow(kb.input_gradient(critic, x_hat))
        return ops.mean(critic(fake)) - ops.mean(critic(real)) + self.weight * ops.mean(ops.square(norms - 1.0))


class WGANDivLoss(AdversarialLoss):
    """L_D = mean D(x_f) − mean D(x_r) + k/2·mean(‖∇D(x_r)‖^p + ‖∇D(x_f)‖^p);  L_G = −mean D(x_f). k=2, p=6.

    Example:
        >>> import keras
        >>> from kgen.gans.losses import WGANDivLoss
        >>> critic = lambda x: keras.ops.sum(x, axis=-1)
        >>> WGANDivLoss(k=2.0, p=6.0).discriminator_loss(critic, keras.ops.ones((4, 2)), keras.ops.zeros((4, 2)))
    """

    name = "wgan_div"

    def __init__(self, k=2.0, p=6.0):
        self.k = check_positive_float("k", k)
        self.p = check_positive_float("p", p)

    def discriminator_loss(self, critic, real, fake, seed_generator=None):
        penalty = (ops.mean(per_example_norm_pow(kb.input_gradient(critic, real), self.p))
                   + ops.mean(per_example_norm_pow(kb.input_gradient(critic, fake), self.p)))
        return ops.mean(critic(fake)) - ops.mean(critic(real)) + 0.5 * self.k * penalty


class GANQPLoss(AdversarialLoss):
    """GAN-QP with the pair critic T(x_r, x_f) − T(x_f, x_r) = D(x_r) − D(x_f) (Su's code); λ = 10.

    L_D = mean(−Δ + Δ²/(2λd)), L_G = mean(Δ), with Δ = D(x_r) − D(x_f) and d = mean|x_r − x_f|.

    Example:
        >>> import keras
        >>> from kgen.gans.losses import GANQPLoss
        >>> critic = lambda x: keras.ops.sum(x, axis=-1)
        >>> real, fake = keras.ops.ones((4, 2)), keras.ops.zeros((4, 2))
        >>> loss = GANQPLoss(weight=10.0)
        >>> loss.discriminator_loss(critic, real, fake), loss.generator_loss(critic(fake), critic(real))
    """

    name = "gan_qp"
    generator_needs_real = True
    options = ("weight",)

    def __init__(self, weight=10.0):
        self.weight = check_positive_float("weight", weight)

    def discriminator_loss(self, critic, real, fake, seed_generator=None):
        delta = critic(real) - critic(fake)
        batch = ops.shape(real)[0]
        distance = ops.mean(ops.abs(ops.reshape(real - fake, (batch, -1))), axis=-1)
        return ops.mean(-delta + ops.square(delta) / (2.0 * self.weight * distance + 1e-8))

    def generator_loss(self, fake_scores, real_scores=None):
        return ops.mean(real_scores - fake_scores)


LOSSES = {cls.name: cls for cls in (HingeLoss, WGANGPLoss, WGANDivLoss, GANQPLoss)}
"""Loss name → class, for the losses that are not f-GAN rows (every f-divergence name gives an `FGANLoss`)."""
OTHER_LOSSES = tuple(LOSSES)
LOSS_NAMES = OTHER_LOSSES + FDIVERGENCE_NAMES
"""Every loss name accepted by `get_loss` and `kgen.gans.GAN`: the four above, then every f-divergence name."""


def get_loss(name, generator_form="non_saturating", weight=None):
    """The loss object called `name` (one of `LOSS_NAMES`).

    Args:
        name: "hinge", "wgan_gp", "wgan_div", "gan_qp", or an f-divergence name ("gan", "js", "kl", ...).
        generator_form: f-GAN rows only: "non_saturating" (default) or "saturating".
        weight: λ of WGAN-GP (10) or GAN-QP (10); None keeps the paper's value. Ignored by the other losses.

    Raises:
        ValueError: unknown name (the message lists every valid one) or bad options.

    Example:
        >>> from kgen.gans.losses import get_loss
        >>> get_loss("wgan_gp", weight=5.0).weight, get_loss("js").divergence.name
    """
    check_choice("loss", name, LOSS_NAMES)
    check_choice("generator_form", generator_form, GENERATOR_FORMS)
    given = {"generator_form": generator_form, "weight": weight}
    if name in LOSSES:
        cls, args = LOSSES[name], ()
    else:
        cls, args = FGANLoss, (name,)
    return cls(*args, **{key: given[key] for key in cls.options if given[key] is not None})
