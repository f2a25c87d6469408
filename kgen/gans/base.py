"""`AdversarialGenerator`: what `GAN` and `EnergyGAN` share, and the GAN row of the protocol in `kgen.base`.

A generator G: z -> x with z ~ N(0, I), and a discriminator network read as one number per example:

    critic(x)  = the discriminator's raw output per example, shape (batch,)
    energy(x)  = energy_sign · critic(x), lower = more likely:
                 GAN:       D is a score, higher on data  ->  energy = −D(x)   (Su 6316: U = −D)
                 EnergyGAN: the network is the energy U    ->  energy = U(x)
    sample(n, *, seed=None, labels=None, temperature=1.0, use_ema=True)  = G(temperature · z), z ~ N(0, I)
    generate(n_or_z, labels=None, use_ema=True)        = G of given latents; generate(n) is sample(n)

With `ema_decay` the model keeps an exponential moving average of the generator's weights (`kgen.ema`, the
mechanism diffusion models use), folded in inside the compiled step after every generator update and saved with
the model; sampling, generation and export then use the averaged weights unless `use_ema=False`. A generator
with BatchNorm gets, at the end of every `fit`, standing statistics for the averaged weights
(`update_ema_statistics`; BigGAN's): its live moving statistics belong to the live weights.

`value_range` (default (−1, 1): images in [−1, 1] from a tanh output; None for unbounded toy data) is what
`sample` returns and what the tools (SampleGrid, runs, demo) read. Training: `kgen.backend.AdversarialModel`
(one optimizer per network under plain `fit`); each subclass writes `discriminator_loss(x, y, fake)`,
`generator_loss(x, y, fake, z)` and `train_networks(data)`.
"""

import math
import warnings

import keras
import numpy as np
from keras import ops

from kgen import backend as kb
from kgen._checks import check_data, check_int, check_positive_float, fit_array
from kgen.base import check_value_range, seed_generator_for
from kgen.ema import ExponentialMovingAverage, batch_norms
from kgen.endpoint import Endpoint

__all__ = ["AdversarialGenerator"]


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
    """What GAN and EnergyGAN share: the generator, its latent prior N(0, I), `sample`/`generate`, the critic
    and its energy, joint steps, export and saving.

    Args:
        generator: keras.Model z -> x, or [z, y] -> x (conditional). The latent shape is its first input's.
        discriminator: keras.Model x -> score (or [x, y] -> score when conditional).
        seed: seed of the model's SeedGenerator (every z and every ε).
        value_range: `(low, high)` of the generator's outputs (default (−1, 1), a tanh output), or None
            (unbounded, e.g. a toy generator with a linear output).
        ema_decay: None (no average), or d in (0, 1): keep an EMA of the generator's weights, the generator that
            `sample`, `generate` and export use (BigGAN: 0.9999). The average spans ~1/(1 − d) steps and should
            be a small part of the run: on the 28×28 animals after 2000 steps, DCGAN's live generator has FD
            10.2, its average 9.8 with d = 0.99 and 29.1 with d = 0.999 (it still holds the early weights).
        ema_start: number of generator updates during which the average is a plain copy (BigGAN: 20k).
        ema_statistics: with `ema_decay` and a generator with BatchNorm, recompute its statistics for the
            averaged weights at the end of each `fit` (`update_ema_statistics`, BigGAN's standing statistics;
            the live moving statistics are used until then), and its spectral norms' vectors u for the averaged
            kernels. Files written before this option load with False.

    Subclasses set `energy_sign`: −1 when the discriminator is a score (higher on data, `GAN`), +1 when it is
    the energy itself (`EnergyGAN`).

    Example:
        >>> import kgen
        >>> from kgen.gans.networks import mlp
        >>> model = kgen.gans.GAN(mlp(2, 2), mlp(2, 1), value_range=None)   # a GAN is an AdversarialGenerator
        >>> x = model.sample(4, seed=0)                   # G(z), (4, 2): the same for every call with seed=0
        >>> model.energy(x), model.critic(x, training=False)   # −D(x) and D(x), each (4,)
    """

    energy_sign = -1.0

    def __init__(self, generator, discriminator, seed=0, value_range=(-1.0, 1.0), ema_decay=None, ema_start=0,
                 ema_statistics=True, **kwargs):
        g_shapes = _input_shapes(generator, "generator")
        d_shapes = _input_shapes(discriminator, "discriminator")
        latent_shape = g_shapes[0]
        if not latent_shape or any(d is None or d <= 0 for d in latent_shape):
            raise ValueError(f"the generator's latent dimension must be > 0, got input shape {latent_shape}")
        if len(g_shapes) != len(d_shapes) or len(g_shapes) > 2:
            raise ValueError("generator and discriminator must both take one input (z / x) or both two "
                             f"([z, y] / [x, y]); got {len(g_shapes)} and {len(d_shapes)} inputs")
        value_range = check_value_range(value_range)
        ema_decay = None if ema_decay is None else check_positive_float("ema_decay", ema_decay)
        ema_start = check_int("ema_start", ema_start, 0)
        if not isinstance(ema_statistics, bool):
            raise TypeError(f"`ema_statistics` must be True or False, got {ema_statistics!r}")
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_shape = latent_shape
        self.latent_dim = math.prod(latent_shape)
        self.data_shape = d_shapes[0]
        self.conditional = len(g_shapes) == 2
        self.value_range = value_range
        self.seed = check_int("seed", seed, 0)
        self.seed_generator = kb.SeedGenerator(self.seed)
        self.ema_decay, self.ema_start, self.ema_statistics = ema_decay, ema_start, ema_statistics
        self.ema = None
        if ema_decay is not None:
            self.ema = ExponentialMovingAverage(ema_decay, start_step=ema_start, name="ema",
                                                statistics=ema_statistics and bool(batch_norms(generator)))
            self.ema.track(generator.trainable_variables, network=generator)
        if generator.built and discriminator.built:
            self.built = True  # every variable exists: exportable and savable before any fit

    # ---------------------------------------------------------------- sampling (kgen.base protocol)
    def sample_latent(self, n):
        """z ~ N(0, I) of shape `(n,) + latent_shape`, from the model's SeedGenerator."""
        return keras.random.normal((n,) + self.latent_shape, seed=self.seed_generator)

    def _generate(self, z, y=None, training=False, use_ema=False):
        inputs = z if y is None else [z, y]
        if use_ema and self.ema is not None:
            return self.ema.call_with_averages(self.generator, inputs, training=training)
        return kb.call_network(self.generator, inputs, training=training)

    def sample(self, n, *, seed=None, labels=None, temperature=1.0, use_ema=True):
        """`n` samples G(temperature · z), z ~ N(0, I): a backend tensor `(n,) + data_shape` in `value_range`.

        Args:
            n: number of samples.
            seed: None draws z from the model's SeedGenerator (every call differs); an int gives the same samples
                on every call and leaves the model's generator untouched.
            labels: conditional models only (required there): a batch of n labels y.
            temperature: scale of z (the truncation trick's cousin; 1 = the prior, 0 = G(0)).
            use_ema: with the averaged generator when the model keeps one (`ema_decay`); False: the live one.
        """
        n = check_int("n", n, 1)
        temperature = float(temperature)
        if not temperature >= 0.0:
            raise ValueError(f"`temperature` must be >= 0, got {temperature}")
        z = keras.random.normal((n,) + self.latent_shape, seed=seed_generator_for(self, seed))
        return self.generate(z if temperature == 1.0 else z * temperature, labels, use_ema=use_ema)

    def generate(self, n_or_z, labels=None, use_ema=True):
        """G of given latents: `generate(z)` = G(z) (or G(z, y)); `generate(n)` is `sample(n, labels=labels)`.

        Conditional models need `labels` (batch of y matching the number of samples). `use_ema`: as in `sample`.
        """
        if isinstance(n_or_z, int) and not isinstance(n_or_z, bool):
            return self.sample(n_or_z, labels=labels, use_ema=use_ema)
        z = ops.convert_to_tensor(n_or_z, dtype=self.compute_dtype)
        if tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"`z` must have shape (n,) + {self.latent_shape}, got {tuple(z.shape)}")
        if self.conditional and labels is None:
            raise ValueError("this generator is conditional: pass `labels`")
        if not self.conditional and labels is not None:
            raise ValueError("this generator is unconditional: `labels` must be None")
        if labels is not None:
            labels = ops.convert_to_tensor(labels)
            if isinstance(z.shape[0], int) and isinstance(labels.shape[0], int) and labels.shape[0] != z.shape[0]:
                raise ValueError(f"`labels` must have one row per sample ({z.shape[0]}), got {labels.shape[0]}")
        return self._generate(z, labels, training=False, use_ema=use_ema)

    def averaged_generator(self):
        """A copy of the generator holding the EMA weights (trainable) and the non-trainable ones that go with
        them (the live ones; the standing BatchNorm statistics and spectral-norm vectors once computed): a
        plain Keras model to save, export or hand to `LatentMCMC` on its own."""
        if self.ema is None:
            raise ValueError("this model keeps no average: build it with ema_decay=...")
        copy = keras.models.clone_model(self.generator)
        generator = self.generator
        values = {id(v): a.value for v, a in zip(generator.trainable_variables, self.ema.averages)}
        values.update(zip(map(id, generator.non_trainable_variables), self.ema.averaged_state(generator)))
        for target, live in zip(copy.weights, generator.weights):
            target.assign(ops.copy(values.get(id(live), live.value)))
        return copy

    def update_ema_statistics(self, batches=16, batch_size=256, labels=None, seed=0):
        """Recompute the averaged generator's BatchNorm statistics (BigGAN's standing statistics): the mean of
        its batch statistics over `batches` batches of `batch_size` latents drawn with `seed`, run with the
        averaged weights in training mode, each spectral norm's u first converged on its averaged kernel.
        `fit` calls this at its end (with `ema_statistics`, the default).

        Args:
            batches, batch_size: how many latents, in how many batches (default 16 × 256).
            labels: conditional models only: the labels to draw from (e.g. the training labels), one row per
                example, drawn uniformly with `seed`.
            seed: an int; the same seed gives the same statistics.
        """
        if self.ema is None or not self.ema.statistics:
            raise ValueError("this model keeps no standing statistics: build it with ema_decay=... and a "
                             "generator with BatchNorm (ema_statistics=True, the default)")
        batches = check_int("batches", batches, 1)
        batch_size = check_int("batch_size", batch_size, 2)
        seed = check_int("seed", seed, 0)
        if self.conditional:
            if labels is None:
                raise ValueError("a conditional model needs `labels` to draw from (e.g. the training labels)")
            labels = np.asarray(labels)
            if labels.ndim == 0 or len(labels) == 0:
                raise ValueError(f"`labels` must hold one row per example, got shape {labels.shape}")
        rng = np.random.default_rng(seed)

        def inputs():
            for k in range(batches):
                z = keras.random.normal((batch_size,) + self.latent_shape, seed=seed * 1_000_003 + k)
                yield z if not self.conditional else [z, labels[rng.integers(0, len(labels), batch_size)]]

        self.ema.standing_statistics(self.generator, inputs())

    def call(self, inputs, training=False):
        z, y = (inputs[0], inputs[1]) if self.conditional else (inputs, None)
        return self._generate(z, y, training=training)

    # ---------------------------------------------------------------- the discriminator, read two ways
    def critic(self, x, y=None, training=True):
        """The discriminator network's raw output per example, shape (batch,) (mean over any other axes).

        A score D(x), higher on data, in `GAN`; the energy U(x), lower on data, in `EnergyGAN`. `energy(x)` is
        the one reading that means the same in both.
        """
        out = kb.call_network(self.discriminator, x if y is None else [x, y], training=training)
        if keras.backend.standardize_dtype(out.dtype) in ("bfloat16", "float16"):  # losses in float32 (mixed policy)
            out = ops.cast(out, "float32")
        if len(out.shape) == 2 and out.shape[-1] == 1:
            return ops.squeeze(out, axis=-1)  # one op instead of two (eager backends pay per op)
        return ops.mean(ops.reshape(out, (ops.shape(out)[0], -1)), axis=-1)

    def energy(self, x, y=None):
        """Unnormalised energy per example, shape (batch,), lower = more likely: `energy_sign · critic(x)`
        (−D(x) in `GAN`, U(x) in `EnergyGAN`), evaluated with training=False. Used by `kgen.gans.mcmc`."""
        scores = self.critic(x, y, training=False)
        return scores if self.energy_sign > 0 else -scores

    # ---------------------------------------------------------------- training helpers
    def _adversarial_train_step(self, data):
        logs = super()._adversarial_train_step(data)
        if self.ema is not None:  # after this step's generator update, inside the compiled step (kgen.ema)
            self.ema.fold(self.generator.trainable_variables)
        return logs

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit` on float data (images in [-1, 1]): `fit(x)`, or `fit(x, y)` / `fit((x, y))` when
        conditional. NumPy `x` is checked before any step: float dtype, the discriminator's input shape, finite.
        With `ema_decay`, `fit` ends with `update_ema_statistics`; a conditional model's labels are read from `y`
        (an array or a tensor), and when they come in a dataset or generator it warns and leaves that to you.
        """
        array = fit_array(x)
        if array is not None:
            check_data("x", array, self.data_shape, "float data (images scaled to [-1, 1])",
                       "kgen.datasets.to_signed(x, levels)", shape_of="the discriminator's input")
        standing = self.ema is not None and self.ema.statistics
        if standing:
            self.ema.reset_statistics()  # the averages move: until recomputed, the live statistics
        history = super().fit(x, y, **kwargs)
        if standing:
            labels = _fit_labels(x, y) if self.conditional else None
            if not self.conditional or labels is not None:
                self.update_ema_statistics(labels=labels)
            else:  # the labels are in a dataset or generator, which one more pass would have to read
                warnings.warn("fit could not read the labels of a conditional GAN (a dataset or generator): the "
                              "averaged generator keeps the live generator's BatchNorm statistics until "
                              "`update_ema_statistics(labels=...)` is called with the training labels",
                              UserWarning, stacklevel=2)
        return history

    def discriminator_loss(self, x, y, fake):
        """The discriminator's loss on a real batch `x` (labels `y`, or None) and a stop-gradiented `fake`."""
        raise NotImplementedError(f"{type(self).__name__} must implement discriminator_loss(x, y, fake)")

    def generator_loss(self, x, y, fake, z=None):
        """The generator's loss on `fake` = G(z) (differentiable in G), with the real batch `x`, labels `y` and
        the latents `z` that `fake` came from (read only by losses that need them)."""
        raise NotImplementedError(f"{type(self).__name__} must implement generator_loss(x, y, fake, z=None)")

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

    @staticmethod
    def _unpack(data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return x, y

    # ---------------------------------------------------------------- serving (kgen.export)
    def export_endpoints(self):
        """`serve`/`sample(z)` = G(z) with the caller's z, `sample_random(temperature)` with z drawn from the
        artifact's seed state, `critic(x)` = the discriminator's raw output per example. G is the averaged
        generator when the model keeps one (`ema_decay`).

        `temperature` is float32 of shape `(batch, 1)`: one factor per sample scaling its z, and its length is the
        number of samples (e.g. `tf.fill((16, 1), 1.0)`; a scalar or a `(batch,)` vector is refused by the
        SavedModel's signature).
        """
        if self.conditional:
            raise ValueError("export of conditional GANs is not supported yet: export the generator network "
                             "with model.generator.export(path)")
        z_spec = keras.InputSpec(shape=(None,) + self.latent_shape, dtype="float32")
        x_spec = keras.InputSpec(shape=(None,) + tuple(self.generator.output_shape[1:]), dtype="float32")

        def generate(z):
            return self._generate(z, training=False, use_ema=True)

        def sample_random(temperature):
            z = keras.random.normal((ops.shape(temperature)[0],) + self.latent_shape, seed=self.seed_generator)
            return self._generate(z * ops.reshape(temperature, (-1,) + (1,) * len(self.latent_shape)), use_ema=True)

        return [Endpoint("serve", generate, [z_spec]), Endpoint("sample", generate, [z_spec]),
                Endpoint("sample_random", sample_random, [keras.InputSpec(shape=(None, 1), dtype="float32")],
                         random=True),
                Endpoint("critic", lambda x: self.critic(x, training=False), [x_spec])]

    # ---------------------------------------------------------------- saving
    def get_config(self):
        return {**super().get_config(),
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "seed": self.seed, "value_range": None if self.value_range is None else list(self.value_range),
                "ema_decay": self.ema_decay, "ema_start": self.ema_start, "ema_statistics": self.ema_statistics}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.setdefault("ema_statistics", False)  # written before the option: as it was trained and saved
        for key in ("generator", "discriminator", "statistics_network", "encoder"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _fit_labels(x, y):
    """The labels of a conditional `fit(x, y)` / `fit((x, y))` as a NumPy array when they are an array or a
    tensor; None when they come inside a dataset or generator."""
    labels = y if y is not None else (x[1] if isinstance(x, tuple) and len(x) > 1 else None)
    if labels is None or isinstance(labels, np.ndarray):
        return labels
    if getattr(labels, "shape", None) is None:  # a dataset, generator or PyDataset
        return None
    try:  # a tensor of any backend
        return np.asarray(ops.convert_to_numpy(labels))
    except (TypeError, ValueError, RuntimeError):
        return None

