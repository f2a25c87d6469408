"""`DiffusionModel`: trains any log-SNR-conditioned network with `model.fit`, and samples with kgen's samplers.

Articles: Su Jianlin, "生成扩散模型漫谈(二十二)：信噪比与大图生成(上)" (https://kexue.fm/archives/10047) for the SNR
view and the multi-scale loss, and the series' DDPM parts (https://kexue.fm/archives/9119). Papers: DDPM
(Ho et al. 2020, arXiv:2006.11239), v-prediction (Salimans & Ho 2022, arXiv:2202.00512), min-SNR-γ weighting
(Hang et al. 2023, arXiv:2303.09556), simple diffusion (Hoogeboom et al. 2023, arXiv:2301.11093).

Notation (kgen.diffusion's convention): data x in `value_range` (default [−1, 1]), the noisy sample
z_t = α_t x + σ_t ε with α² + σ² = 1 and λ = log(α²/σ²) = log SNR. Su's ᾱ_t, β̄_t are α_t, σ_t; DDPM's ā_t is
α_t². The network is called as `network([z_t, λ])` (or `[z_t, λ, labels]`) and predicts one of

    "eps": ε,    "x0": x,    "v": v = α ε − σ x.

Training step (`compute_loss`, run by Keras's standard `fit` on every backend): t ~ U[0, 1] (on a discrete
schedule with T steps, t = i/T with i uniform in 1..T, DDPM's training), ε ~ N(0, I), loss = mean squared
error between the network output and its target, times an optional per-example weight w(λ).

Loss weightings (`kgen.diffusion.losses`): min-SNR-γ (Hang et al.) and the multi-scale loss of simple
diffusion (Su 10047). Serving endpoints: `kgen.diffusion.export`.

EMA of the network weights: see `kgen.ema` (non-trainable variables of the model, updated inside
the compiled step; `fit` folds the last step in when it returns).
"""

import functools

import keras
from keras import ops

from kgen import backend as kb
from kgen.backend import replica_mean
from kgen._checks import check_choice, check_data, check_int, check_positive_float, fit_array
from kgen.base import check_value_range, seed_generator_for
from kgen.diffusion import schedules as schedules_module
from kgen._deprecation import renamed_keywords, warn_deprecated
from kgen.diffusion.export import export_endpoints
from kgen.ema import ExponentialMovingAverage
from kgen.diffusion.guidance import ClassifierFreeGuidance
from kgen.diffusion.losses import (  # noqa: F401  (min_snr_weight: its old import path)
    LOSS_WEIGHTINGS, min_snr_weight, multiscale_factors, multiscale_squared_error)
from kgen.diffusion.predictions import PREDICTIONS, alpha_sigma, eps_from_prediction
from kgen.diffusion.samplers import AncestralSampler, DDIMSampler, DDPMSampler

__all__ = ["DiffusionModel", "SAMPLERS"]

SAMPLERS = ("ddim", "ddpm", "ancestral")


def _data_shape(network, data_shape):
    if data_shape is not None:
        return tuple(check_int("data_shape", d, 1) for d in data_shape)
    if hasattr(network, "image_shape"):
        return tuple(network.image_shape)
    try:
        return tuple(int(d) for d in network.inputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError, ValueError):
        raise ValueError("cannot read the data shape from `network` (no `image_shape`, no functional inputs); "
                         "pass `data_shape`") from None


@keras.saving.register_keras_serializable(package="kgen")
class DiffusionModel(kb.Model):
    """A diffusion model: a network predicting ε, x₀ or v from `[z_t, λ]` (+ labels), a schedule, an EMA.

    Args:
        network: a built Keras model called as `network([z_t, logsnr])`, or `network([z_t, logsnr, labels])`
            when conditional; output shaped like z_t. `kgen.diffusion.UNet` or any functional model (an MLP
            for 2-D).
        schedule: a `kgen.diffusion` Schedule (LinearSchedule, CosineSchedule, shifted(...), ...).
        prediction: "eps", "x0" or "v": what the network outputs.
        loss_weighting: None (plain MSE in the prediction's space) or "min_snr".
        min_snr_gamma: γ of min-SNR weighting.
        multiscale: False, True (scales 1, 2, 4, ... down to 4×4) or a tuple of pooling factors.
        ema_decay: decay of the weight EMA (`kgen.ema`, the same mechanism as the GANs'), or None for no EMA.
        ema_start: number of training steps during which the EMA is a plain copy of the weights.
        label_dropout: probability of replacing a label by the null label while training (classifier-free
            guidance; conditional networks only).
        num_classes: classes of a conditional network (default: `network.num_classes`, None if absent); label
            `num_classes` is the null label.
        data_shape: shape of one example (default: read from the network).
        seed: seed of the model's SeedGenerator (t, ε and label dropout while training; sampling noise).
        value_range: (low, high) of the data, default (−1, 1) (images, `kgen.datasets.to_signed`), or None
            for unbounded data (a 2-D toy). Sampling clips every x̂₀ to it by default (`sample`'s
            `clip_denoised`); the schedules' SNRs assume unit-scale, roughly centred data.

    Data: `fit(x)` for unconditional, `fit(x, labels)` for conditional models, with x in `value_range`.

    Example:

    ```python
    import keras
    import numpy as np
    from kgen.diffusion import CosineSchedule, DiffusionModel, UNet

    net = UNet((8, 8, 1), channels=8, channel_mults=(1,), attention_resolutions=())
    model = DiffusionModel(net, CosineSchedule(), prediction="v")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(np.random.uniform(-1, 1, (32, 8, 8, 1)).astype("float32"), epochs=1, verbose=0)
    images = model.sample(4, seed=0, steps=10)        # (4, 8, 8, 1) in [−1, 1]; the same for every seed=0 call
    chain = model.make_sampler("ddpm", 10)             # or run a sampler yourself: the weights are found
    images = chain.sample(model.eps_fn, keras.random.normal((4, 8, 8, 1)))
    ```
    """

    def __init__(self, network, schedule, prediction="eps", loss_weighting=None, min_snr_gamma=5.0,
                 multiscale=False, ema_decay=0.999, label_dropout=0.1, num_classes=None, data_shape=None,
                 seed=0, value_range=(-1.0, 1.0), ema_start=0, **kwargs):
        # Mixed precision lives in the network's own policy; the model (noising, targets, loss, EMA, samplers)
        # computes in the variable dtype, float32, and casts the network's output to it.
        policy = keras.dtype_policies.get(kwargs.pop("dtype", None) or keras.config.dtype_policy())
        super().__init__(dtype=policy.variable_dtype, **kwargs)
        if not isinstance(network, keras.Model) or not network.built:
            raise TypeError(f"`network` must be a built keras.Model, got {type(network).__name__}")
        if not isinstance(schedule, schedules_module.Schedule):
            raise TypeError(f"`schedule` must be a kgen.diffusion Schedule, got {type(schedule).__name__}")
        self.network, self.schedule = network, schedule
        self.prediction = check_choice("prediction", prediction, PREDICTIONS)
        if loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"`loss_weighting` must be one of {list(LOSS_WEIGHTINGS)}, got {loss_weighting!r}")
        self.loss_weighting = loss_weighting
        self.min_snr_gamma = check_positive_float("min_snr_gamma", min_snr_gamma)
        self.data_shape = _data_shape(network, data_shape)
        self.multiscale = multiscale if isinstance(multiscale, bool) else tuple(multiscale)
        self.multiscale_factors = multiscale_factors(multiscale, self.data_shape)
        self.num_classes = getattr(network, "num_classes", None) if num_classes is None else num_classes
        if self.num_classes is not None:
            self.num_classes = check_int("num_classes", self.num_classes, 1)
        if not 0.0 <= float(label_dropout) < 1.0:
            raise ValueError(f"`label_dropout` must be in [0, 1), got {label_dropout}")
        self.label_dropout = float(label_dropout)
        self.ema_decay = None if ema_decay is None else check_positive_float("ema_decay", ema_decay)
        self.ema_start = check_int("ema_start", ema_start, 0)
        self.ema = None
        if self.ema_decay is not None:
            self.ema = ExponentialMovingAverage(self.ema_decay, start_step=self.ema_start, name="ema")
            self.ema.track(self.network.trainable_variables)
        self.value_range = check_value_range(value_range)
        self.seed = int(seed)
        self.seed_generator = kb.SeedGenerator(self.seed)
        # Compiled helpers, kept out of Keras's attribute tracking.
        object.__setattr__(self, "_sampling_cache", {})
        object.__setattr__(self, "_finish_ema_fn", None)
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    # ------------------------------------------------------------------ the network as an eps function
    def _labels(self, labels, x):
        if self.num_classes is None:
            if labels is not None:
                raise ValueError("`labels` given to an unconditional DiffusionModel")
            return None
        if labels is None:  # unconditional branch: the null label
            labels = self.num_classes
        labels = ops.cast(labels, "int32")
        return ops.zeros((ops.shape(x)[0],), "int32") + labels

    def _network_inputs(self, z_t, logsnr, labels):
        logsnr = ops.cast(ops.reshape(logsnr, (-1,)), z_t.dtype)
        labels = self._labels(labels, z_t)
        return [z_t, logsnr] if labels is None else [z_t, logsnr, labels]

    @renamed_keywords(x="x_t")
    def predict_output(self, x_t, logsnr, labels=None, use_ema=True, training=False):
        """The network's raw output (ε̂, x̂₀ or v̂) at the noisy sample `x_t` and log-SNR `logsnr` (batch,)."""
        inputs = self._network_inputs(x_t, logsnr, labels)
        if use_ema and self.ema is not None:
            return ops.cast(self.ema.call_with_averages(self.network, inputs, training=training), x_t.dtype)
        return ops.cast(kb.call_network(self.network, inputs, training), x_t.dtype)

    @renamed_keywords(x="x_t")
    def eps_fn(self, x_t, logsnr, labels=None, use_ema=True):
        """ε̂(x_t, λ) whatever the network predicts (conversion in `predictions.eps_from_prediction`).

        `x_t`: the noisy sample z_t, (batch,) + data_shape; `logsnr`: (batch,). `labels`: None means the null
        label (unconditional) for conditional models. With `use_ema` the EMA weights are used (when the model
        has an EMA). Pass `model.eps_fn` to any kgen sampler or guidance wrapper: they find the model's state.
        """
        x_t = ops.convert_to_tensor(x_t)
        output = self.predict_output(x_t, logsnr, labels, use_ema=use_ema)
        return eps_from_prediction(self.prediction, output, x_t, ops.reshape(logsnr, (-1,)))

    # ------------------------------------------------------------------ training
    def target(self, x, noise, alpha, sigma):
        """The regression target of the chosen prediction (α, σ broadcast against x)."""
        if self.prediction == "eps":
            return noise
        if self.prediction == "x0":
            return x
        return alpha * noise - sigma * x

    def per_example_loss(self, x, t, noise, labels=None, training=False):
        """Weighted loss per example, shape (batch,), at given times `t` (batch,) and noise ε (shape of x).

        The network sees z_t = α_t x + σ_t ε; the squared error of its output against `target` is averaged
        over the multi-scale factors and weighted (`kgen.diffusion.losses`).
        """
        x = ops.convert_to_tensor(x)
        noise = ops.convert_to_tensor(noise, dtype=x.dtype)
        t = ops.cast(t, x.dtype)
        logsnr = ops.cast(self.schedule.logsnr(t), x.dtype)
        alpha, sigma = alpha_sigma(logsnr, x)
        z_t = alpha * x + sigma * noise
        inputs = self._network_inputs(z_t, logsnr, labels)
        residual = ops.cast(kb.call_network(self.network, inputs, training), x.dtype) - self.target(x, noise, alpha, sigma)
        loss = multiscale_squared_error(residual, self.multiscale_factors)
        if self.loss_weighting == "min_snr":
            loss = loss * min_snr_weight(logsnr, self.prediction, self.min_snr_gamma)
        return loss

    def draw_times(self, batch):
        """t ~ U[0, 1], or t = i/T with i uniform in 1..T on a discrete schedule; shape (batch,)."""
        steps = self.schedule.num_steps
        if steps is None:
            return keras.random.uniform((batch,), seed=self.seed_generator)
        i = keras.random.randint((batch,), 1, steps + 1, seed=self.seed_generator)
        return ops.cast(i, keras.config.floatx()) / float(steps)

    def call(self, inputs, training=None):
        # Keras's fit needs a forward pass; the loss, which alone sees both images and labels, does the work.
        return inputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self.num_classes is not None and y is None:
            raise ValueError("a conditional DiffusionModel trains on (images, labels): call fit(x, labels)")
        if self.num_classes is None and y is not None:
            raise ValueError("an unconditional DiffusionModel trains on images only: call fit(x)")
        if training and self.ema is not None:
            self.ema.update(self.network.trainable_variables)
        x = ops.convert_to_tensor(x)
        if x.dtype != self.compute_dtype:
            x = ops.cast(x, self.compute_dtype)
        batch = ops.shape(x)[0]
        labels = None
        if y is not None:
            labels = ops.cast(ops.reshape(y, (-1,)), "int32")
            if training and self.label_dropout > 0:
                drop = keras.random.uniform((batch,), seed=self.seed_generator) < self.label_dropout
                labels = ops.where(drop, self.num_classes, labels)
        t = self.draw_times(batch)
        noise = keras.random.normal(ops.shape(x), dtype=x.dtype, seed=self.seed_generator)
        loss = self.per_example_loss(x, t, noise, labels, training=training)
        if sample_weight is not None:
            weights = ops.cast(ops.reshape(sample_weight, (-1,)), loss.dtype)
            return replica_mean(ops.sum(loss * weights) / ops.maximum(ops.sum(weights), 1e-12))
        return replica_mean(ops.mean(loss))  # data-parallel training sums the replicas' gradients

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit` on data in `value_range` (and labels when conditional); folds the last step into the EMA.

        NumPy `x` is checked before Keras builds anything: float dtype, the model's data shape, finite.
        Tensors, tf.data and generators are not read on the host (stop on a NaN loss with
        `kgen.callbacks.StopOnNaN`).
        """
        array = fit_array(x)
        if array is not None:
            low_high = "" if self.value_range is None else " in [{:g}, {:g}]".format(*self.value_range)
            expects = "float data" + low_high
            check_data("x", array, self.data_shape, expects, "kgen.datasets.to_signed(x, levels)")
            labels = x[1] if isinstance(x, tuple) and len(x) > 1 else y
            if self.num_classes is not None and labels is None:
                raise ValueError("a conditional DiffusionModel trains on (images, labels): call fit(x, labels)")
            if self.num_classes is None and labels is not None:
                raise ValueError("an unconditional DiffusionModel trains on images only: call fit(x)")
        history = super().fit(x, y, **kwargs)
        self.finish_ema()
        return history

    def finish_ema(self):
        """Fold the weights of the latest optimizer step into the EMA (`fit` does it; call after train_on_batch)."""
        if self.ema is None:
            return
        if self._finish_ema_fn is None:  # one compiled update instead of a few eager ops per weight
            def finish():
                self.ema.finish(self.network.trainable_variables)

            object.__setattr__(self, "_finish_ema_fn", kb.compile_function(finish, state=[self.ema, self.network]))
        self._finish_ema_fn()

    # ------------------------------------------------------------------ sampling
    def make_sampler(self, name="ddim", steps=50, clip_denoised="auto", **kwargs):
        """A kgen.diffusion sampler on this model's schedule: "ddim" (η=0 unless `eta`), "ddpm", "ancestral".

        Like `sample`, it clips every x̂₀ to the model's `value_range` (`clip_denoised="auto"`; None for the exact,
        unclipped chain that the oracle tests use; a sampler built from a bare schedule knows no data range and
        does not clip). `kwargs` go to the sampler (`eta`, `variance`, `spacing`, `seed`). Run it with
        `make_sampler(...).sample(model.eps_fn, x_T)`: the model's weights are found from `model.eps_fn`.
        """
        check_choice("sampler", name, SAMPLERS)
        classes = {"ddim": DDIMSampler, "ddpm": DDPMSampler, "ancestral": AncestralSampler}
        return classes[name](self.schedule, steps, clip_denoised=self._resolve_clip(clip_denoised), **kwargs)

    def sampler(self, name="ddim", steps=50, **kwargs):
        """Deprecated alias of `make_sampler` (the name clashed with `sample(sampler="ddim")`)."""
        warn_deprecated("DiffusionModel.sampler()", "DiffusionModel.make_sampler()")
        kwargs.setdefault("clip_denoised", None)  # what sampler() returned: the unclipped chain
        return self.make_sampler(name, steps, **kwargs)

    def _resolve_clip(self, clip_denoised):
        """`clip_denoised="auto"` is the data range (`value_range`; None: no clipping); anything else as given."""
        if isinstance(clip_denoised, str):
            if clip_denoised != "auto":
                raise ValueError(f"`clip_denoised` must be 'auto', None, a number > 0 or (low, high), "
                                 f"got {clip_denoised!r}")
            return self.value_range
        return tuple(clip_denoised) if isinstance(clip_denoised, list) else clip_denoised

    def sample(self, n, *, seed=None, steps=50, sampler="ddim", labels=None, guidance_scale=None, use_ema=True,
               clip_denoised="auto"):
        """Draw `n` samples (in `value_range` data units) from x_T ~ N(0, I) with a kgen.diffusion sampler.

        Args:
            n: number of samples.
            seed: None draws x_T and the sampler noise from the model's SeedGenerator (every call differs); an
                int gives the same samples on every call (x_T from `seed`, the per-step noise from `seed + 1`)
                and leaves the model's generator untouched; a `keras.random.SeedGenerator` is drawn from.
            steps: sampling steps.
            sampler: "ddim" (deterministic, η = 0), "ddpm" or "ancestral".
            labels: conditional models only: an int or (n,) ints; None samples unconditionally (null label).
            guidance_scale: classifier-free guidance scale g (needs `labels`); None for plain conditioning.
            use_ema: sample with the EMA weights.
            clip_denoised: "auto" (default) clips every x̂₀ to `value_range` ([−1, 1] by default; no clipping
                when the model's `value_range` is None); c > 0 clips to [−c, c], (low, high) to that range, None
                does not clip. Clipping tames the first steps of ε-prediction models, where x̂₀ = (z_t − σ ε̂)/α
                divides by a tiny α: the shipped 28×28 animal U-Net gives mean |x| ≈ 150 unclipped on the
                cosine schedule.

        Returns:
            A tensor of shape `(n,) + data_shape`; with clipping, within the clip range.

        Unconditional sampling loops are compiled once per (sampler, steps, use_ema, clip) and reused; labelled
        ones are compiled on each call (the labels are constants of the compiled loop).
        """
        n = check_int("n", n, 1)
        if guidance_scale is not None and labels is None:
            raise ValueError("`guidance_scale` needs `labels`")
        clip_denoised = self._resolve_clip(clip_denoised)
        start_seed = noise_seed = seed_generator_for(self, seed)
        if not (seed is None or isinstance(seed, keras.random.SeedGenerator)):  # an int: two fixed draws, the
            noise_seed = seed_generator_for(self, seed + 1)                     # model's generator untouched
        self.finish_ema()
        x_T = keras.random.normal((n,) + self.data_shape, seed=start_seed)
        chain, eps_fn = self._sampling_loop(sampler, steps, use_ema, labels, guidance_scale, clip_denoised, x_T)
        noise = None
        if chain.needs_noise:  # drawn here, so that a cached sampler still honours `seed`
            noise = keras.random.normal((chain.steps,) + tuple(x_T.shape), seed=noise_seed)
        return chain.sample(eps_fn, x_T, noise=noise)

    def _sampling_loop(self, sampler, steps, use_ema, labels, guidance_scale, clip_denoised, x_T):
        key = (sampler, steps, bool(use_ema), clip_denoised)
        if labels is None and key in self._sampling_cache:
            return self._sampling_cache[key]
        chain = self.make_sampler(sampler, steps, clip_denoised=clip_denoised)
        # functools.partial rather than a closure: tf.function's autograph mis-resolves reassigned closure
        # variables, and a partial of `self.eps_fn` shows the samplers whose weights it reads (`state_of`).
        unconditional = functools.partial(self.eps_fn, labels=None, use_ema=use_ema)
        if labels is None:
            self._sampling_cache[key] = (chain, unconditional)
            return chain, unconditional
        conditional = functools.partial(self.eps_fn, labels=self._labels(labels, x_T), use_ema=use_ema)
        if guidance_scale is None:
            return chain, conditional
        return chain, ClassifierFreeGuidance(conditional, unconditional, guidance_scale)

    # ------------------------------------------------------------------ serving
    def export_endpoints(self, steps=50, upsample_scale=None, upsample_w=1.0, use_ema=True, clip_denoised="auto"):
        """Endpoints for `kgen.export`: the network and a whole deterministic DDIM (η = 0) loop of `steps`.

        - `serve` / `denoise(x, logsnr)`: ε̂ at the noisy sample x (whatever the network predicts, converted
          to ε), `logsnr` (batch,);
        - `sample(x_T)`: x₀ from the caller's x_T (deterministic; x_T ~ N(0, I) gives a sample);
        - `sample_random(temperature)`: x_T ~ N(0, t²I) drawn from the artifact's seed state; `temperature` is
          float32 of shape `(batch, 1)`, one t per sample, and its length is the number of samples (e.g.
          `tf.fill((16, 1), 1.0)`; a scalar or a `(batch,)` vector is refused by the SavedModel's signature);
        - with `upsample_scale=s`: `sample_upsampled(x_T)` at s× the resolution with `UpsampleGuidance`
          (guidance weight `upsample_w`, the paper's w_t).
        Unconditional models only; the weights are the EMA weights unless `use_ema=False`; x̂₀ is clipped in
        the loops as in `sample` (`clip_denoised="auto"`: to `value_range`; None to not clip). Built by
        `kgen.diffusion.export.export_endpoints`.
        """
        return export_endpoints(self, steps=steps, upsample_scale=upsample_scale, upsample_w=upsample_w,
                                use_ema=use_ema, clip_denoised=clip_denoised)

    # ------------------------------------------------------------------ saving
    def get_config(self):
        return {**super().get_config(),
                "network": keras.saving.serialize_keras_object(self.network),
                "schedule": schedules_module.serialize(self.schedule), "prediction": self.prediction,
                "loss_weighting": self.loss_weighting, "min_snr_gamma": self.min_snr_gamma,
                "multiscale": self.multiscale if isinstance(self.multiscale, bool) else list(self.multiscale),
                "ema_decay": self.ema_decay, "ema_start": self.ema_start, "label_dropout": self.label_dropout,
                "num_classes": self.num_classes,
                "data_shape": list(self.data_shape), "seed": self.seed,
                "value_range": None if self.value_range is None else list(self.value_range)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        # Either format: Keras's (kgen >= this release) or `{"class_name", "config"}` (the first .keras files).
        config["schedule"] = schedules_module.deserialize(config["schedule"])
        return cls(**config)
