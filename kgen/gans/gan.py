"""`GAN`: a generator and a discriminator trained by plain `model.fit(x)` with any loss of `kgen.gans.losses`.

Articles: f-GAN (kexue.fm/archives/6016), WGAN-div (6139), GAN-QP (6163), the energy view (6316: zero-centred
gradient penalty on real samples), the single-loss stop-gradient trick "巧断梯度" (6387). Papers: Goodfellow et
al. 2014; Nowozin et al. 2016; Gulrajani et al. 2017; Wu et al. 2018; Mescheder et al. 2018 (R1).

One training step (`train_networks`), with z ~ N(0, I) drawn from the model's SeedGenerator:
    d_steps × [ θ_D ← θ_D − step ∇ (L_D(D; x_r, sg G(z)) + r1_weight·mean‖∇ₓD(x_r)‖²) ]   (fresh z each time)
    θ_G ← θ_G − step ∇ L_G(D(G(z)))
With `single_loss=True` (Su 6387) both networks step at once from one backward pass of
    L = L_D(D; x_r, sg G(z)) + [L_G(D(G(z))) − L_G(D(sg G(z)))],
whose bracket is identically 0 but whose gradient is ∇_G L_G for θ_G and 0 for θ_D. Each network keeps its
own optimizer (Su's λ, the "lr ratio", only holds for SGD; use two learning rates instead).

NaN: `fit` rejects NumPy data with NaN or infinite values before any step. Other inputs (tensors, tf.data,
generators) are not read on the host, and training does not stop by itself: `fit` logs `loss` = d_loss + g_loss
(running mean over the epoch), so `keras.callbacks.TerminateOnNaN()` or `kgen.callbacks.StopOnNaN()` stops
training at the first batch whose loss is NaN or infinite.
"""

import keras
from keras import ops

from kgen import backend as kb
from kgen._checks import check_choice, check_int
from kgen._deprecation import warn_deprecated
from kgen.gans import base
from kgen.gans.losses import GENERATOR_FORMS, LOSS_NAMES, get_loss, per_example_norm_pow
from kgen.gans.networks import toy


def __getattr__(name):
    # Deprecated paths: `mlp` lives in kgen.gans.networks.toy, `AdversarialGenerator` in kgen.gans.base.
    moved = {"mlp": (toy, "kgen.gans.networks.mlp"),
             "AdversarialGenerator": (base, "kgen.gans.base.AdversarialGenerator")}
    if name in moved:
        module, where = moved[name]
        warn_deprecated(f"kgen.gans.gan.{name}", where)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@keras.saving.register_keras_serializable(package="kgen")
class GAN(base.AdversarialGenerator):
    """A GAN trained by `fit` on TF, JAX and torch, with any loss of `kgen.gans.losses.LOSS_NAMES`.

    Args:
        generator: keras.Model z -> x (or [z, y] -> x, conditional); built from keras.Input.
        discriminator: keras.Model x -> score D(x), higher = real (or [x, y] -> score). Data for a conditional
            model is `fit((x, y))`.
        loss: "hinge" (default), "wgan_gp", "wgan_div", "gan_qp", or any f-divergence name ("gan" is the
            original GAN, "js", "kl", "reverse_kl", "hellinger", "tv", "pearson", "neyman", ...).
        generator_form: f-GAN rows: "non_saturating" (−mean T(G(z)), default) or "saturating".
        loss_weight: λ of WGAN-GP / GAN-QP (None: 10, the papers' value).
        d_steps: discriminator steps per generator step (fresh z each, same real batch).
        single_loss: Su's one-backward-pass form (needs d_steps=1).
        r1_weight: weight of the zero-centred penalty mean‖∇ₓD(x_r)‖² on real samples (0: off).
        seed: seed of the model's SeedGenerator.
        value_range: `(low, high)` of G's outputs (default (−1, 1): images, tanh output), or None (unbounded).
        ema_decay, ema_start: keep an exponential moving average of G's weights, the generator `sample` uses
            (`kgen.gans.base.AdversarialGenerator`, `kgen.ema`); None: no average.

    Reading the discriminator: `critic(x)` = D(x), the network's raw score per example (higher on data);
    `energy(x)` = −critic(x) = −D(x) (Su 6316), lower on data. The real and the fake batch are scored in separate
    calls, as in DCGAN and Su's code: a discriminator with BatchNorm depends on it (scoring them in one call, so
    that BatchNorm mixes them, diverged on the animals; README, "What DCGAN's critic has").

    Logs: `d_loss` and `g_loss` are the two players' adversarial losses (with their penalties in `fit`); `loss` is
    their sum, what Keras callbacks watch by default (`monitor="loss"`). It says whether training is numerically
    healthy (`kgen.callbacks.StopOnNaN`), not whether samples improve: a GAN's losses do not fall as it learns,
    so monitor a sample metric (FD, `kgen.metrics`) to choose checkpoints. `evaluate(x)` reports the same three
    on held-out data without any step and in inference mode (no penalties, no BatchNorm updates).
    A saved GAN reloads compiled: `keras.saving.load_model` restores both optimizers and their state, so `fit`
    continues where it stopped.

    Example:
        >>> import keras
        >>> import kgen
        >>> from kgen.gans.networks import mlp
        >>> gan = kgen.gans.GAN(mlp(2, 2), mlp(2, 1), loss="hinge", value_range=None)   # linear G: unbounded
        >>> gan.compile(optimizers={"generator": keras.optimizers.Adam(1e-3, 0.5, 0.9),
        ...                         "discriminator": keras.optimizers.Adam(1e-3, 0.5, 0.9)})
        >>> gan.fit(kgen.datasets.toy2d("ring8", 2560), batch_size=256, epochs=1, verbose=0)
        >>> gan.sample(16, seed=0).shape   # (16, 2), the same 16 points for every call with seed=0
        >>> gan.energy(gan.sample(4)).shape   # −D(G(z)), (4,)
    """

    log_names = ("loss", "d_loss", "g_loss")

    def __init__(self, generator, discriminator, loss="hinge", generator_form="non_saturating", loss_weight=None,
                 d_steps=1, single_loss=False, r1_weight=0.0, seed=0, value_range=(-1.0, 1.0), **kwargs):
        check_choice("loss", loss, LOSS_NAMES)
        check_choice("generator_form", generator_form, GENERATOR_FORMS)
        d_steps = check_int("d_steps", d_steps, 1)
        if single_loss and d_steps != 1:
            raise ValueError(f"`single_loss=True` updates both networks at once: it needs d_steps=1, got {d_steps}")
        r1_weight = float(r1_weight)
        if not r1_weight >= 0.0:
            raise ValueError(f"`r1_weight` must be >= 0, got {r1_weight}")
        adversarial_loss = get_loss(loss, generator_form, loss_weight)
        super().__init__(generator, discriminator, seed=seed, value_range=value_range, **kwargs)
        self.adversarial_loss = adversarial_loss
        self.loss_name, self.generator_form, self.loss_weight = loss, generator_form, loss_weight
        self.d_steps, self.single_loss, self.r1_weight = d_steps, bool(single_loss), r1_weight

    # ---------------------------------------------------------------- the losses
    def discriminator_loss(self, x, y, fake):
        """L_D of the loss (+ the R1 penalty) on the real batch and a stop-gradiented fake batch."""
        critic = lambda t: self.critic(t, y)  # noqa: E731  (y is bound: gradients are taken in x only)
        loss = self.adversarial_loss.discriminator_loss(critic, x, fake, self.seed_generator)
        if self.r1_weight:
            loss = loss + self.r1_weight * ops.mean(per_example_norm_pow(kb.input_gradient(critic, x), 2.0))
        return loss

    def generator_loss(self, x, y, fake, z=None):
        """L_G of the loss on D(fake) (and D(x) for GAN-QP); `z` is not read (the signature is EnergyGAN's too)."""
        real_scores = self.critic(x, y) if self.adversarial_loss.generator_needs_real else None
        return self.adversarial_loss.generator_loss(self.critic(fake, y), real_scores)

    def single_loss_value(self, x, y, z):
        """Su's L = L_D(sg G(z)) + [L_G(D(G(z))) − L_G(D(sg G(z)))]: value L_D, gradients (∇_D L_D, ∇_G L_G)."""
        fake = self._generate(z, y, training=True)
        frozen = ops.stop_gradient(fake)
        return (self.discriminator_loss(x, y, frozen)
                + self.generator_loss(x, y, fake) - self.generator_loss(x, y, frozen))

    # ---------------------------------------------------------------- one step
    def train_networks(self, data):
        x, y = self._unpack(data)
        if self.conditional and y is None:
            raise ValueError("a conditional GAN trains on (x, y) pairs: fit((x, y)) or fit(x, y)")
        batch = ops.shape(x)[0]
        if self.single_loss:
            z = self.sample_latent(batch)
            g_loss = self.generator_loss(x, y, self._generate(z, y, training=True))  # logged, pre-step
            d_loss = self.minimize_jointly(lambda: self.single_loss_value(x, y, z), ("discriminator", "generator"))
        else:
            for _ in range(self.d_steps):
                d_loss = self.minimize(lambda: self.discriminator_loss(
                    x, y, ops.stop_gradient(self._generate(self.sample_latent(batch), y, training=True))),
                    "discriminator")
            g_loss = self.minimize(lambda: self.generator_loss(
                x, y, self._generate(self.sample_latent(batch), y, training=True)), "generator")
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss}

    def evaluate_networks(self, data):
        """`d_loss`, `g_loss` and their sum on a batch of held-out data, in inference mode, without penalties."""
        x, y = self._unpack(data)
        fake = self._generate(self.sample_latent(ops.shape(x)[0]), y, training=False)
        critic = lambda t: self.critic(t, y, training=False)  # noqa: E731
        d_loss = self.adversarial_loss.discriminator_loss(critic, x, fake, self.seed_generator)
        real_scores = critic(x) if self.adversarial_loss.generator_needs_real else None
        g_loss = self.adversarial_loss.generator_loss(critic(fake), real_scores)
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss}

    def get_config(self):
        return {**super().get_config(), "loss": self.loss_name, "generator_form": self.generator_form,
                "loss_weight": self.loss_weight, "d_steps": self.d_steps, "single_loss": self.single_loss,
                "r1_weight": self.r1_weight}
