"""`EnergyGAN`: Su's energy view of GANs, after MEG, with an entropy term estimated through mutual information.

Su Jianlin, "能量视角下的GAN模型" part 1 "GAN = 挖坑 + 跳坑" (kexue.fm/archives/6316) and part 2 "GAN = 分析 + 采样"
(kexue.fm/archives/6331); Kumar, Ozair, Goyal, Courville & Bengio, "Maximum Entropy Generators for Energy-Based
Models" (MEG, arXiv 1901.08508); O-GAN (Su, kexue.fm/archives/6409, arXiv 1903.01931) for the correlation route.

Notation: the discriminator is the energy U_θ(x), *low* on data (the opposite sign of `GAN`'s score D = −U).
With q_θ(x) ∝ e^{−U_θ(x)} and the generator's law q_φ, Su (6331) arrives at

    θ:  min  E_{x~p}[U_θ(x)] − E_z[U_θ(G_φ(z))] + λ E_{x~p}[‖∇ₓU_θ(x)‖²]     (zero-centred GP on *real* samples)
    φ:  min  −H_φ(X) + E_z[U_θ(G_φ(z))]

H(X) = I(X; Z) + H(X|Z), and H(X|Z) is constant for a deterministic G, so −H is replaced by −β·I(X; Z), with
I estimated by one of (`entropy=`):
  * "jsd" (MEG's code): a statistics network T(x, z) classifies (G(z), z) pairs against (G(z), z̄) pairs
    with z̄ a shuffled batch; G and T minimise the same binary cross-entropy
    softplus(−T(G(z), z)) + softplus(T(G(z), z̄)), stepped together from one backward pass.
  * "correlation" (O-GAN): an encoder E: x → R^{n_z}; G and E maximise ρ(z, E(G(z))) = cos(N(z), N(E(G(z)))),
    N standardising over the feature axis (mean and scale left free, unlike the MSE of InfoGAN).
  * None: Su's plain "dig pits + jump in" (6316).

λ = 1 by default: on the 8-Gaussian ring λ = 0.1 (MEG's toy value) collapsed in most runs when kgen was
written; tests/gans/test_toy_gates.py gates the default.
The entropy term trades precision for spread: it makes G match the smooth e^{−U} rather than its minima.
Su's advice on optimisers: no or low momentum (Adam β₁ = 0.5 or less), a learning rate that is not too large.
"""

import keras
from keras import ops

from kgen import backend as kb
from kgen._checks import check_int
from kgen._deprecation import warn_deprecated
from kgen.gans.base import AdversarialGenerator
from kgen.gans.losses import per_example_norm_pow
from kgen.gans.networks.toy import mlp

ENTROPY_ESTIMATORS = ("jsd", "correlation", None)


def standardized_correlation(a, b, eps=1e-6):
    """O-GAN's ρ: mean over the batch of cos(N(a_i), N(b_i)), N standardising each row over its features."""
    batch = ops.shape(a)[0]
    a, b = ops.reshape(a, (batch, -1)), ops.reshape(b, (batch, -1))
    a = (a - ops.mean(a, axis=-1, keepdims=True)) / (ops.std(a, axis=-1, keepdims=True) + eps)
    b = (b - ops.mean(b, axis=-1, keepdims=True)) / (ops.std(b, axis=-1, keepdims=True) + eps)
    return ops.mean(ops.mean(a * b, axis=-1))


@keras.saving.register_keras_serializable(package="kgen")
class EnergyGAN(AdversarialGenerator):
    """Energy U = discriminator, zero-centred real-sample GP, generator minimising U(G(z)) − β·I(X; Z).

    Args:
        generator: keras.Model z -> x, built from keras.Input (unconditional).
        discriminator: keras.Model x -> energy U(x), low on data.
        gradient_penalty: λ of λ·mean‖∇ₓU(x_r)‖² (default 1).
        entropy: "jsd" (MEG statistics network), "correlation" (O-GAN ρ) or None.
        entropy_weight: β, the weight of the mutual-information term in the generator loss (default 0.1: on
            the 8-ring, JSD with β = 1 spread the samples, high-quality fraction 0.02-0.04 at 8/8 modes;
            β = 0.1 gave 0.42 at 8/8, against 0.76-0.85 without the term).
        statistics_network: "jsd": keras.Model [x, z] -> score; default a 2×128 LeakyReLU MLP (vector data).
        encoder: "correlation": keras.Model x -> (n_z,) features; default a 2×128 LeakyReLU MLP to the
            latent size (vector data).
        d_steps: energy steps per generator step (MEG uses 5; fresh z each).
        seed: seed of the model's SeedGenerator.
        value_range: `(low, high)` of G's outputs (default (−1, 1): images, tanh output), or None (unbounded).
        ema_decay, ema_start: an exponential moving average of G's weights for sampling (as in `GAN`).

    `compile(optimizers=...)` needs "generator", "discriminator" and, when an entropy term is used,
    "statistics_network" (jsd) or "encoder" (correlation).

    Reading the discriminator: `critic(x)` = U(x), the network's raw output per example (lower on data);
    `energy(x)` = critic(x) = U(x) (the opposite sign of `GAN`, whose energy is −critic).

    Example:
        >>> import keras
        >>> import kgen
        >>> from kgen.gans.networks import mlp
        >>> model = kgen.gans.EnergyGAN(mlp(2, 2), mlp(2, 1, activation="leaky_relu"), entropy="jsd",
        ...                             value_range=None)   # linear G on the ring: unbounded
        >>> adam = lambda: keras.optimizers.Adam(1e-3, 0.5, 0.9)
        >>> model.compile(optimizers={"generator": adam(), "discriminator": adam(), "statistics_network": adam()})
        >>> model.fit(kgen.datasets.toy2d("ring8", 2560), batch_size=256, epochs=1, verbose=0)
        >>> model.energy(model.sample(4, seed=0))  # U(G(z)), shape (4,)
    """

    energy_sign = 1.0

    log_names = ("loss", "d_loss", "g_loss")

    def __init__(self, generator, discriminator, gradient_penalty=1.0, entropy="jsd", entropy_weight=0.1,
                 statistics_network=None, encoder=None, d_steps=1, seed=0, value_range=(-1.0, 1.0), **kwargs):
        if entropy not in ENTROPY_ESTIMATORS:
            raise ValueError(f"`entropy` must be one of {list(ENTROPY_ESTIMATORS)}, got {entropy!r}")
        gradient_penalty, entropy_weight = float(gradient_penalty), float(entropy_weight)
        if not gradient_penalty >= 0.0:
            raise ValueError(f"`gradient_penalty` must be >= 0, got {gradient_penalty}")
        if not entropy_weight >= 0.0:
            raise ValueError(f"`entropy_weight` must be >= 0, got {entropy_weight}")
        d_steps = check_int("d_steps", d_steps, 1)
        super().__init__(generator, discriminator, seed=seed, value_range=value_range, **kwargs)
        if self.conditional:
            raise ValueError("EnergyGAN is unconditional: the generator and energy take one input each")
        self.gradient_penalty, self.entropy, self.entropy_weight = gradient_penalty, entropy, entropy_weight
        self.d_steps = d_steps
        x_shape = tuple(discriminator.inputs[0].shape[1:])
        flat = len(x_shape) == 1 and len(self.latent_shape) == 1
        if entropy == "jsd" and statistics_network is None:
            if not flat:
                raise ValueError("pass a `statistics_network` ([x, z] -> score) for non-vector data or latents")
            statistics_network = mlp([x_shape[0], self.latent_dim], 1, activation="leaky_relu",
                                     name="statistics_network")
        if entropy == "correlation":
            if self.latent_dim < 2:
                raise ValueError("the correlation estimator standardises over latent features: latent_dim >= 2")
            if encoder is None:
                if not flat:
                    raise ValueError("pass an `encoder` (x -> n_z features) for non-vector data or latents")
                encoder = mlp(x_shape[0], self.latent_dim, activation="leaky_relu", name="encoder")
        self.statistics_network = statistics_network if entropy == "jsd" else None
        self.encoder = encoder if entropy == "correlation" else None

    def compile(self, optimizers=None, **kwargs):
        """`optimizers` must name "generator", "discriminator" and the entropy estimator's network."""
        needed = ["generator", "discriminator"] + {"jsd": ["statistics_network"], "correlation": ["encoder"]}.get(
            self.entropy, [])
        missing = [name for name in needed if not isinstance(optimizers, dict) or name not in optimizers]
        if missing:
            raise ValueError(f"`optimizers` needs an optimizer for each of {needed}; missing {missing}")
        super().compile(optimizers=optimizers, **kwargs)

    # ---------------------------------------------------------------- the losses
    def energy_loss(self, x, fake):
        """E_p[U] − E_q[U] + λ E_p[‖∇ₓU‖²] with `fake` already stop-gradiented."""
        loss = ops.mean(self.critic(x)) - ops.mean(self.critic(fake))
        if self.gradient_penalty:
            grad = kb.input_gradient(self.critic, x)
            loss = loss + self.gradient_penalty * ops.mean(per_example_norm_pow(grad, 2.0))
        return loss

    def discriminator_loss(self, x, y, fake):
        """`energy_loss(x, fake)`: the name every AdversarialGenerator gives its discriminator's loss."""
        return self.energy_loss(x, fake)

    def mutual_information_loss(self, z, fake):
        """The entropy surrogate to *minimise*: JSD classifier cross-entropy, or −ρ(z, E(G(z)))."""
        if self.entropy == "jsd":
            shuffled = keras.random.shuffle(z, axis=0, seed=self.seed_generator)
            joint = kb.call_network(self.statistics_network, [fake, z], training=True)
            marginal = kb.call_network(self.statistics_network, [fake, shuffled], training=True)
            return ops.mean(ops.softplus(-joint)) + ops.mean(ops.softplus(marginal))
        return -standardized_correlation(z, kb.call_network(self.encoder, fake, training=True))

    def generator_loss(self, x, y=None, fake=None, z=None):
        """E_z[U(G(z))] + β·(the entropy surrogate of I(X; Z)), on `fake` = G(z) and its latents `z`.

        `x` and `y` (the real batch) are not read. The old form `generator_loss(z)` is deprecated: it draws
        nothing new, generates `G(z)` and evaluates the same loss.
        """
        if fake is None and y is None and z is None:
            warn_deprecated("EnergyGAN.generator_loss(z)", "generator_loss(x, y, fake, z) with fake = G(z)")
            z = x
            fake = self._generate(z, training=True)
        if fake is None:
            raise ValueError("`fake` (the generated batch G(z)) is required")
        with_entropy = self.entropy is not None and self.entropy_weight
        if with_entropy and z is None:
            raise ValueError("the entropy term estimates I(X; Z): pass the latents `z` that `fake` came from")
        loss = ops.mean(self.critic(fake))
        if with_entropy:
            loss = loss + self.entropy_weight * self.mutual_information_loss(z, fake)
        return loss

    # ---------------------------------------------------------------- one step
    def train_networks(self, data):
        x, _ = self._unpack(data)
        batch = ops.shape(x)[0]
        for _ in range(self.d_steps):
            d_loss = self.minimize(
                lambda: self.energy_loss(x, ops.stop_gradient(self._generate(self.sample_latent(batch), training=True))),
                "discriminator")

        def z_loss():
            z = self.sample_latent(batch)
            return self.generator_loss(x, None, self._generate(z, training=True), z)

        if self.entropy is None:
            g_loss = self.minimize(z_loss, "generator")
        else:
            partner = "statistics_network" if self.entropy == "jsd" else "encoder"
            g_loss = self.minimize_jointly(z_loss, ("generator", partner))
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss}

    def evaluate_networks(self, data):
        """E_p[U] − E_q[U] (`d_loss`, no gradient penalty), E_q[U] (`g_loss`, no entropy term) and their sum on a
        batch of held-out data, in inference mode."""
        x, _ = self._unpack(data)
        fake = self._generate(self.sample_latent(ops.shape(x)[0]), training=False)
        fake_energy = ops.mean(self.critic(fake, training=False))
        d_loss = ops.mean(self.critic(x, training=False)) - fake_energy
        return {"loss": d_loss + fake_energy, "d_loss": d_loss, "g_loss": fake_energy}

    def get_config(self):
        config = {**super().get_config(), "gradient_penalty": self.gradient_penalty, "entropy": self.entropy,
                  "entropy_weight": self.entropy_weight, "d_steps": self.d_steps}
        for key in ("statistics_network", "encoder"):
            network = getattr(self, key)
            if network is not None:
                config[key] = keras.saving.serialize_keras_object(network)
        return config
