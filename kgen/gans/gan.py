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

import math

import keras
from keras import ops

from kgen import backend as kb
from kgen._checks import check_choice, check_data, check_int, fit_array
from kgen.gans.losses import GENERATOR_FORMS, LOSS_NAMES, get_loss, per_example_norm


def mlp(input_dims, output_dim, hidden=(128, 128), activation="relu", name=None, seed=None):
    """A small functional MLP on the concatenation of inputs of sizes `input_dims` (toy G, D, T networks).

    `seed` fixes the Glorot-uniform initial weights (None: drawn from Keras's global seed).

    Example:
        >>> g = mlp(2, 2, name="generator")            # z (2,) -> x (2,)
        >>> t = mlp([2, 2], 1, activation="leaky_relu")  # [x, z] -> score
    """
    dims = [input_dims] if isinstance(input_dims, int) else list(input_dims)
    inputs = [keras.Input((check_int("input_dims", d, 1),)) for d in dims]
    h = inputs[0] if len(inputs) == 1 else keras.layers.Concatenate()(inputs)
    for k, width in enumerate(tuple(hidden) + (output_dim,)):
        init = keras.initializers.GlorotUniform(seed=None if seed is None else seed + k)
        h = keras.layers.Dense(width, activation=activation if k < len(hidden) else None, kernel_initializer=init)(h)
    outputs = h
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=name)


def _input_shapes(network, name):
    if not isinstance(network, keras.Model):
        raise TypeError(f"`{name}` must be a keras.Model built from keras.Input, got {type(network).__name__}")
    try:
        inputs = network.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(f"`{name}` must be built from keras.Input (functional or Sequential), so that its input "
                         "shape is known")
    return [tuple(t.shape[1:]) for t in inputs]


class AdversarialGenerator(kb.AdversarialModel):
    """What GAN and EnergyGAN share: the generator, its latent prior N(0, I), `generate`, joint steps.

    Args:
        generator: keras.Model z -> x, or [z, y] -> x (conditional). The latent shape is its first input's.
        discriminator: keras.Model x -> score (or [x, y] -> score when conditional).
        seed: seed of the model's SeedGenerator (every z and every ε).
    """

    def __init__(self, generator, discriminator, seed=0, **kwargs):
        g_shapes = _input_shapes(generator, "generator")
        d_shapes = _input_shapes(discriminator, "discriminator")
        latent_shape = g_shapes[0]
        if not latent_shape or any(d is None or d <= 0 for d in latent_shape):
            raise ValueError(f"the generator's latent dimension must be > 0, got input shape {latent_shape}")
        if len(g_shapes) != len(d_shapes) or len(g_shapes) > 2:
            raise ValueError("generator and discriminator must both take one input (z / x) or both two "
                             f"([z, y] / [x, y]); got {len(g_shapes)} and {len(d_shapes)} inputs")
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_shape = latent_shape
        self.latent_dim = math.prod(latent_shape)
        self.data_shape = d_shapes[0]
        self.conditional = len(g_shapes) == 2
        self.seed = check_int("seed", seed, 0)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        if generator.built and discriminator.built:
            self.built = True  # every variable exists: exportable and savable before any fit

    # ---------------------------------------------------------------- sampling
    def sample_latent(self, n):
        """z ~ N(0, I) of shape `(n,) + latent_shape`, from the model's SeedGenerator."""
        return keras.random.normal((n,) + self.latent_shape, seed=self.seed_generator)

    def _generate(self, z, y=None, training=False):
        return kb.call_network(self.generator, z if y is None else [z, y], training=training)

    def generate(self, n_or_z, labels=None):
        """Samples G(z): `generate(n)` draws z ~ N(0, I); `generate(z)` uses the given latents.

        Conditional models need `labels` (batch of y matching the number of samples).
        """
        if isinstance(n_or_z, int) and not isinstance(n_or_z, bool):
            z = self.sample_latent(check_int("n", n_or_z, 1))
        else:
            z = ops.convert_to_tensor(n_or_z, dtype=self.compute_dtype)
            if tuple(z.shape[1:]) != self.latent_shape:
                raise ValueError(f"`z` must have shape (n,) + {self.latent_shape}, got {tuple(z.shape)}")
        if self.conditional and labels is None:
            raise ValueError("this generator is conditional: pass `labels`")
        if not self.conditional and labels is not None:
            raise ValueError("this generator is unconditional: `labels` must be None")
        if labels is not None:
            labels = ops.convert_to_tensor(labels)
        return self._generate(z, labels, training=False)

    def sample(self, n):
        """`generate(n)` (unconditional models), for callbacks such as kgen.callbacks.SampleGrid."""
        return self.generate(n)

    def call(self, inputs, training=False):
        z, y = (inputs[0], inputs[1]) if self.conditional else (inputs, None)
        return self._generate(z, y, training=training)

    # ---------------------------------------------------------------- training helpers
    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit` on float data (images in [-1, 1]): `fit(x)`, or `fit(x, y)` / `fit((x, y))` when
        conditional. NumPy `x` is checked before any step: float dtype, the discriminator's input shape, finite.
        """
        array = fit_array(x)
        if array is not None:
            check_data("x", array, self.data_shape, "float data (images scaled to [-1, 1])",
                       "kgen.datasets.to_signed(x, levels)", shape_of="the discriminator's input")
        return super().fit(x, y, **kwargs)

    def critic(self, x, y=None, training=True):
        """The discriminator's output as one number per example, shape (batch,) (mean over other axes)."""
        out = kb.call_network(self.discriminator, x if y is None else [x, y], training=training)
        if keras.backend.standardize_dtype(out.dtype) in ("bfloat16", "float16"):  # losses in float32 (mixed policy)
            out = ops.cast(out, "float32")
        if len(out.shape) == 2 and out.shape[-1] == 1:
            return ops.squeeze(out, axis=-1)  # one op instead of two (eager backends pay per op)
        return ops.mean(ops.reshape(out, (ops.shape(out)[0], -1)), axis=-1)

    def minimize_jointly(self, loss_fn, networks):
        """One step of several networks on one loss, from one backward pass; each uses its own optimizer."""
        groups = [getattr(self, name).trainable_variables for name in networks]
        loss, grads = kb.gradients(loss_fn, [v for group in groups for v in group])
        start = 0
        for name, variables in zip(networks, groups):
            slice_ = [ops.stop_gradient(g) for g in grads[start:start + len(variables)]]
            start += len(variables)
            # ∇_v Σ⟨g, v⟩ = g: hands the precomputed gradients to the network's optimizer.
            kb.minimize(lambda s=slice_, vs=variables: sum(ops.sum(g * v) for g, v in zip(s, vs)), variables,
                        self.network_optimizers[name])
        return loss

    # ---------------------------------------------------------------- serving (kgen.export)
    def export_endpoints(self):
        """`serve`/`sample(z)` = G(z) with the caller's z, `sample_random(temperature)` with z drawn from the
        artifact's seed state, `critic(x)` = D(x) per example.

        `temperature` is float32 of shape `(batch, 1)`: one factor per sample scaling its z, and its length is the
        number of samples (e.g. `tf.fill((16, 1), 1.0)`; a scalar or a `(batch,)` vector is refused by the
        SavedModel's signature).
        """
        from kgen.export import Endpoint

        if self.conditional:
            raise ValueError("export of conditional GANs is not supported yet: export the generator network "
                             "with model.generator.export(path)")
        z_spec = keras.InputSpec(shape=(None,) + self.latent_shape, dtype="float32")
        x_spec = keras.InputSpec(shape=(None,) + tuple(self.generator.output_shape[1:]), dtype="float32")

        def generate(z):
            return self._generate(z, training=False)

        def sample_random(temperature):
            z = keras.random.normal((ops.shape(temperature)[0],) + self.latent_shape, seed=self.seed_generator)
            return self._generate(z * ops.reshape(temperature, (-1,) + (1,) * len(self.latent_shape)))

        return [Endpoint("serve", generate, [z_spec]), Endpoint("sample", generate, [z_spec]),
                Endpoint("sample_random", sample_random, [keras.InputSpec(shape=(None, 1), dtype="float32")],
                         random=True),
                Endpoint("critic", lambda x: self.critic(x, training=False), [x_spec])]

    @staticmethod
    def _unpack(data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return x, y

    def get_config(self):
        return {"generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "seed": self.seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator", "statistics_network", "encoder"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@keras.saving.register_keras_serializable(package="kgen")
class GAN(AdversarialGenerator):
    """A GAN trained by `fit` on TF, JAX and torch, with any loss of `kgen.gans.losses.LOSS_NAMES`.

    Args:
        generator: keras.Model z -> x (or [z, y] -> x, conditional); built from keras.Input.
        discriminator: keras.Model x -> score, higher = real (or [x, y] -> score). Data for a conditional
            model is `fit((x, y))`.
        loss: "hinge" (default), "wgan_gp", "wgan_div", "gan_qp", or any f-divergence name ("gan" is the
            original GAN, "js", "kl", "reverse_kl", "hellinger", "tv", "pearson", "neyman", ...).
        generator_form: f-GAN rows: "non_saturating" (−mean T(G(z)), default) or "saturating".
        loss_weight: λ of WGAN-GP / GAN-QP (None: 10, the papers' value).
        d_steps: discriminator steps per generator step (fresh z each, same real batch).
        single_loss: Su's one-backward-pass form (needs d_steps=1).
        r1_weight: weight of the zero-centred penalty mean‖∇ₓD(x_r)‖² on real samples (0: off).
        seed: seed of the model's SeedGenerator.

    Example:
        >>> from kgen.gans.gan import mlp
        >>> gan = kgen.gans.GAN(mlp(2, 2), mlp(2, 1), loss="hinge")
        >>> gan.compile(optimizers={"generator": keras.optimizers.Adam(1e-3, 0.5, 0.9),
        ...                         "discriminator": keras.optimizers.Adam(1e-3, 0.5, 0.9)})
        >>> gan.fit(kgen.datasets.toy2d("ring8", 25600), batch_size=256, epochs=1)
        >>> gan.generate(16).shape   # (16, 2)
    """

    log_names = ("loss", "d_loss", "g_loss")

    def __init__(self, generator, discriminator, loss="hinge", generator_form="non_saturating", loss_weight=None,
                 d_steps=1, single_loss=False, r1_weight=0.0, seed=0, **kwargs):
        check_choice("loss", loss, LOSS_NAMES)
        check_choice("generator_form", generator_form, GENERATOR_FORMS)
        d_steps = check_int("d_steps", d_steps, 1)
        if single_loss and d_steps != 1:
            raise ValueError(f"`single_loss=True` updates both networks at once: it needs d_steps=1, got {d_steps}")
        r1_weight = float(r1_weight)
        if not r1_weight >= 0.0:
            raise ValueError(f"`r1_weight` must be >= 0, got {r1_weight}")
        adversarial_loss = get_loss(loss, generator_form, loss_weight)
        super().__init__(generator, discriminator, seed=seed, **kwargs)
        self.adversarial_loss = adversarial_loss
        self.loss_name, self.generator_form, self.loss_weight = loss, generator_form, loss_weight
        self.d_steps, self.single_loss, self.r1_weight = d_steps, bool(single_loss), r1_weight

    def energy(self, x, y=None):
        """U(x) = −D(x), the energy view (Su 6316): low on data. Used by `kgen.gans.mcmc`."""
        return -self.critic(x, y, training=False)

    # ---------------------------------------------------------------- the losses
    def discriminator_loss(self, x, y, fake):
        critic = lambda t: self.critic(t, y)  # noqa: E731  (y is bound: gradients are taken in x only)
        loss = self.adversarial_loss.discriminator_loss(critic, x, fake, self.seed_generator)
        if self.r1_weight:
            loss = loss + self.r1_weight * ops.mean(per_example_norm(kb.input_gradient(critic, x), 2.0))
        return loss

    def generator_loss(self, x, y, fake):
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

    def get_config(self):
        return {**super().get_config(), "loss": self.loss_name, "generator_form": self.generator_form,
                "loss_weight": self.loss_weight, "d_steps": self.d_steps, "single_loss": self.single_loss,
                "r1_weight": self.r1_weight}
