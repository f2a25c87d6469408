"""Deprecated: the `EMA` callback. Build the model with `GAN(..., ema_decay=d, ema_start=k)` instead: the model
then keeps the average itself (`kgen.ema`, the mechanism diffusion models use), folds it in inside the compiled
step (no host round-trip per update), saves it with the model, and samples and exports with it.

What the callback did (kept for one release):

Yazıcı, Foo, Winkler, Yap, Piliouras & Chandrasekhar (2019), "The Unusual Effectiveness of Averaging in GAN
Training" (ICLR); BigGAN (Brock, Donahue & Simonyan 2019) evaluates its EMA generator; Su's O-GAN code
(o_gan_celeba_ema_256.py) keeps one as well; Su, "从DCGAN到SELF-MOD" (kexue.fm/archives/6549). After each
training step, for every trainable weight θ of the live generator,

    θ̄ ← decay · θ̄ + (1 − decay) · θ

and θ̄ = θ for the first `start_step` steps. Non-trainable weights (BatchNorm moving statistics, the
spectral-norm vectors u) are copied from the live generator, not averaged: the statistics belong to the live
weights, an approximation that BigGAN corrects with "standing statistics" (not done here).

Some backends keep the weights off the Keras variables during `fit`; the callback calls
`kgen.backend.sync_state(model)` before reading them, which costs one pass over the variables per update
there (use `every` to update less often).
"""

import keras
from keras import ops

from kgen import backend as kb
from kgen._checks import check_int
from kgen._deprecation import warn_deprecated
from kgen.base import seed_generator_for


@keras.saving.register_keras_serializable(package="kgen")
class EMA(keras.callbacks.Callback):
    """Deprecated: `GAN(..., ema_decay=..., ema_start=...)` keeps the average in the model (`kgen.ema`).

    A callback that keeps `averaged_generator`, an exponential moving average of a generator's weights.

    Args:
        generator: the live generator (a Keras model). None: `model.generator` of the model being fit
            (kgen.gans.GAN), resolved when training starts.
        decay: the averaging factor, in [0, 1) (BigGAN: 0.9999; 0.999 suits short runs).
        start_step: number of updates during which the average is a plain copy (BigGAN starts at 20k).
        every: update after every `every` training batches.
        seed: seed of the SeedGenerator that `sample` draws z from.

    Example (the replacement):
        >>> import keras
        >>> import kgen
        >>> from kgen.gans import networks
        >>> gan = kgen.gans.GAN(networks.mlp_generator(), networks.mlp_discriminator(), value_range=None,
        ...                     ema_decay=0.999)
        >>> gan.compile(optimizers={"generator": keras.optimizers.Adam(1e-3, 0.5, 0.9),
        ...                         "discriminator": keras.optimizers.Adam(1e-3, 0.5, 0.9)})
        >>> gan.fit(kgen.datasets.toy2d("ring8", 2560), batch_size=256, epochs=1, verbose=0)
        >>> points = gan.sample(64, seed=0)    # from the averaged generator, shape (64, 2)
        >>> gan.averaged_generator().save("g_ema.keras")
    """

    def __init__(self, generator=None, decay=0.999, start_step=0, every=1, seed=0):
        warn_deprecated("the kgen.gans.EMA callback", "GAN(..., ema_decay=d, ema_start=k): the model keeps the "
                        "average (kgen.ema), updated inside the compiled step and saved with the model")
        super().__init__()
        if not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            raise ValueError(f"`decay` must be a number in [0, 1), got {decay!r}")
        if generator is not None and not isinstance(generator, keras.Model):
            raise TypeError(f"`generator` must be a keras.Model or None, got {type(generator).__name__}")
        self.decay = float(decay)
        self.start_step = check_int("start_step", start_step, 0)
        self.every = check_int("every", every, 1)
        self.seed = check_int("seed", seed, 0)
        self.generator = generator
        self.averaged_generator = None
        self.updates = 0
        self._batches = 0
        self._seed_generator = kb.SeedGenerator(self.seed)
        if generator is not None:
            self.reset()

    def reset(self):
        """Start the average over: `averaged_generator` becomes a copy of the live generator."""
        if self.generator is None:
            raise ValueError("EMA has no generator yet: pass one, or call reset() after training starts")
        if self.averaged_generator is None:
            self.averaged_generator = keras.models.clone_model(self.generator)
            self.averaged_generator.trainable = False
        for average, live in zip(self.averaged_generator.weights, self.generator.weights):
            average.assign(ops.copy(live.value))
        self.updates = 0

    def update(self):
        """One averaging step from the live generator's current weights (the callback calls this)."""
        if self.averaged_generator is None:
            self.reset()
        decay = self.decay if self.updates >= self.start_step else 0.0
        trainable = {id(w) for w in self.generator.trainable_weights}
        for average, live in zip(self.averaged_generator.weights, self.generator.weights):
            if id(live) in trainable:
                average.assign(decay * average + (1.0 - decay) * ops.cast(live, average.dtype))
            else:
                # A copy, not the live buffer: JAX `fit` donates (frees) the live arrays at the next step.
                average.assign(ops.copy(live.value))
        self.updates += 1

    def on_train_begin(self, logs=None):
        if self.generator is None:
            generator = getattr(self.model, "generator", None)
            if not isinstance(generator, keras.Model):
                raise ValueError("EMA(generator=None) needs a model with a `generator` attribute (kgen.gans.GAN)")
            self.generator = generator
        if self.averaged_generator is None:
            self.reset()

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self._batches % self.every:
            return
        kb.sync_state(self.model)
        self.update()

    @property
    def seed_generator(self):
        """The SeedGenerator that `sample(n)` draws z from when `seed` is None."""
        return self._seed_generator

    def sample(self, n, *args, seed=None, labels=None):
        """`n` samples from the averaged generator, z ~ N(0, I) (the protocol of `kgen.base`).

        Args:
            n: number of samples.
            seed: None draws z from this callback's SeedGenerator (every call differs); an int gives the same z
                on every call and leaves that generator untouched.
            labels: integer labels of shape (n,) for a conditional generator ([z, labels] inputs); required there.
                (Passing them positionally, `sample(n, labels)`, is deprecated.)
        """
        if args:
            if len(args) > 1 or labels is not None:
                raise TypeError("EMA.sample takes `n` and the keywords `seed` and `labels`")
            warn_deprecated("EMA.sample(n, labels)", "labels=...")
            labels = args[0]
        n = check_int("n", n, 1)
        if self.averaged_generator is None:
            raise ValueError("EMA has no averaged generator yet: pass `generator` or train first")
        inputs = self.averaged_generator.inputs
        z = keras.random.normal((n,) + tuple(inputs[0].shape[1:]), seed=seed_generator_for(self, seed))
        if len(inputs) == 2:
            if labels is None:
                raise ValueError("the generator is conditional: pass `labels` of shape (n,)")
            return self.averaged_generator([z, ops.convert_to_tensor(labels, "int32")], training=False)
        if labels is not None:
            raise ValueError("the generator is unconditional: `labels` must be None")
        return self.averaged_generator(z, training=False)

    def get_config(self):
        return {"decay": self.decay, "start_step": self.start_step, "every": self.every, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
