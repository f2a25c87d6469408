"""`Flow`: the model base shared by NICE, RealNVP and Glow.

A flow is an ordered list of invertible layers, some of which factor out part of the state (`Split`, the
multi-scale architecture of RealNVP/Glow). Every latent, factored out or final, is standardised by its
own layers (conditional prior of `Split`, learned `TopPrior`), so the prior over each is the same fixed
density (Gaussian or logistic):

    log p(x) = Σ_k log p_Z(z_k) + Σ_layers log|det ∂f_l/∂h_{l-1}|        (Su 5776 eq. 6; Dinh et al.)

`x` is data in [0, 1] (kgen.datasets.dequantize); preprocessing (logit, shift) is the first layer and its
log-det is included, so `log_prob` is a density on [0, 1]^D and `bits_per_dim` follows
kgen.metrics.bits_per_dim. Training is `model.fit(x)` by maximum likelihood: the loss is the mean
negative log-likelihood in nats per dimension (so learning rates do not depend on D).
"""

import keras
import numpy as np
from keras import ops

from kgen import backend as kb
from kgen._checks import check_data, check_example_shape, check_int, fit_array
from kgen._deprecation import warn_deprecated
from kgen.base import seed_generator_for
from kgen.endpoint import Endpoint
from kgen.backend import replica_mean
from kgen.flows.layers.split import Split
from kgen.flows.priors import get_prior
from kgen.metrics import bits_per_dim as _bits_per_dim


def _as_numpy_if_host(x):
    """NumPy data (arrays, nested lists) for a host-side check; None for tensors, whose values are not copied
    off the device on every call (a GPU would wait for them): only their static shape is checked."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple, float, int)):
        return np.asarray(x)
    return None


def _is_initialized(layer):
    return bool(ops.convert_to_numpy(layer.initialized))


class Flow(kb.Model):
    """Base of kgen's flow models; subclasses build `self.flow_layers` in `__init__`.

    Args:
        data_shape: `(D,)` for vectors or `(H, W, C)` for images: the shape of one example (`input_shape`, its
            name before this release, still works with a DeprecationWarning).
        prior: "gaussian" or "logistic" (NICE paper), the density of every standardised latent.
        data_init: whether `initialize` / the first `fit` run data-dependent initialisation (ActNorm).
        sample_temperature: default temperature of `sample` (Su's NICE samples with 0.75).
        seed: seed of the model's SeedGenerator (sampling).

    Example:
        >>> model = kgen.flows.RealNVP((2,), num_couplings=2, hidden=(8,), logit_alpha=None)  # a Flow
        >>> z = model.encode(np.zeros((3, 2), "float32"))      # [final latent]: one tensor of shape (3, 2)
        >>> model.decode(z).shape                               # (3, 2): decode(encode(x)) == x
        >>> model.value_range is None                           # no logit preprocessing: data on R^2
    """

    def __init__(self, data_shape=None, prior="gaussian", data_init=True, sample_temperature=1.0, seed=0,
                 network_dtype=None, **kwargs):
        if "input_shape" in kwargs:  # the name before this release (and Keras's own, which means the batch's)
            if data_shape is not None:
                raise TypeError("pass `data_shape` only (`input_shape` is its deprecated name)")
            warn_deprecated(f"the `input_shape` argument of {type(self).__name__}", "`data_shape` (the same shape)",
                            stacklevel=4 if type(self) is not Flow else 3)
            data_shape = kwargs.pop("input_shape")
        if data_shape is None:
            raise TypeError(f"{type(self).__name__} needs `data_shape`, the shape of one example: (D,) or (H, W, C)")
        # Mixed precision: the coupling networks compute in the policy (`dtype`, else the global one); the flow
        # itself (state, log-dets, priors, ActNorm, 1×1 convs) in its variable dtype, float32.
        dtype = kwargs.pop("dtype", None)  # a reloaded config holds both: `network_dtype` wins
        policy = keras.dtype_policies.get(network_dtype or dtype or keras.config.dtype_policy())
        super().__init__(dtype=policy.variable_dtype, **kwargs)
        self.network_dtype = policy.name
        data_shape = tuple(int(d) for d in data_shape)
        if len(data_shape) not in (1, 3) or min(data_shape) <= 0:
            raise ValueError(f"`data_shape` must be (D,) or (H, W, C) with positive sizes, got {data_shape}")
        self.data_shape = data_shape
        self.prior_name = prior
        self.prior = get_prior(prior)
        self.data_init = bool(data_init)
        self.sample_temperature = float(sample_temperature)
        self.seed = int(seed)
        self.seed_generator = kb.SeedGenerator(seed)
        self.flow_layers = []
        # The protocol's data range (kgen.base): models whose first layer expects [0, 1] (logit, shift) check
        # it and sample in it; subclasses without bounded preprocessing set None (data and samples on R^D).
        self.value_range = (0.0, 1.0)

    # ------------------------------------------------------------------ structure
    def _finish(self, layers):
        """Set the layers, build them, and record the latent shapes (called by subclasses)."""
        self.flow_layers = list(layers)
        shape, latent_shapes = self.data_shape, []
        for layer in self.flow_layers:
            if hasattr(layer, "network_dtype_given") and not layer.network_dtype_given:
                layer.network_dtype = self.network_dtype  # the flow's policy, whatever was global at construction
            layer.build((None,) + shape)
            if isinstance(layer, Split):
                shape, z_shape = layer.output_shapes_for(shape)
                latent_shapes.append(tuple(z_shape))
            else:
                shape = tuple(layer.output_shape_for(shape))
        latent_shapes.append(shape)
        self.latent_shapes = latent_shapes
        self.num_dims = int(np.prod(self.data_shape))
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    # ------------------------------------------------------------------ the two directions
    def _encode(self, x, training=None):
        h = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        logdet = ops.zeros((ops.shape(h)[0],), dtype=h.dtype)
        latents = []
        for layer in self.flow_layers:
            if isinstance(layer, Split):
                h, z, ld = layer(h, training=training)
                latents.append(z)
            else:
                h, ld = layer(h, training=training)
            logdet = logdet + ld
        latents.append(h)
        return latents, logdet

    def encode(self, x):
        """All latents of `x`: the factored-out ones (first level first) and the final one, standardised."""
        self._check_data(x)
        # Through kb.call_network, as `call` and `decode`: on torch one traced replay of the chain.
        return list(kb.call_network(self, ops.convert_to_tensor(x, dtype=self.compute_dtype), False,
                                    method=self._latents))

    def _latents(self, x, training=None):
        return self._encode(x, training=training)[0]

    def decode(self, latents):
        """Invert `encode`: `decode(encode(x)) == x` when every latent, factored out or not, is given."""
        latents = list(latents)
        if len(latents) != len(self.latent_shapes):
            raise ValueError(f"`latents` must hold {len(self.latent_shapes)} tensors (shapes {self.latent_shapes}), "
                             f"got {len(latents)}")
        latents = [ops.convert_to_tensor(z, dtype=self.compute_dtype) for z in latents]
        # Through kb.call_network: on torch one traced replay of the inverse chain; elsewhere the plain call.
        return kb.call_network(self, latents, False, method=self._decode)

    def _decode(self, latents, training=None):
        k = len(latents) - 1
        h = latents[k]
        for layer in reversed(self.flow_layers):
            if isinstance(layer, Split):
                k -= 1
                h = layer.inverse(h, latents[k])
            else:
                h = layer.inverse(h)
        return h

    def log_prob(self, x, training=False):
        """log p(x) per example, shape (batch,), for data in [0, 1]."""
        self._check_data(x)
        return kb.call_network(self, ops.convert_to_tensor(x, dtype=self.compute_dtype), training,
                               method=self._log_prob)

    def _log_prob(self, x, training=None):
        latents, logdet = self._encode(x, training=training)
        return logdet + sum(self.prior.log_prob(z) for z in latents)

    def sample(self, n, *, seed=None, temperature=None):
        """Draw `n` samples in `value_range`: every latent ~ prior scaled by `temperature` (Glow; T=0 is the mode
        path; None: the model's `sample_temperature`).

        `seed=None` draws from the model's SeedGenerator (each call differs); an int gives the same samples on
        every call and leaves the model's generator as it was (kgen.base).
        """
        n = check_int("n", n, 1)
        temperature = self.sample_temperature if temperature is None else float(temperature)
        if temperature < 0:
            raise ValueError(f"`temperature` must be >= 0, got {temperature}")
        generator = seed_generator_for(self, seed)
        latents = [self.prior.sample((n,) + shape, seed=generator, temperature=temperature)
                   for shape in self.latent_shapes]
        return self.decode(latents)

    @property
    def data_range(self):
        """The former name of `value_range`."""
        return self.value_range

    @data_range.setter
    def data_range(self, value):
        self.value_range = value

    def bits_per_dim(self, x, levels):
        """Mean bits/dim of integer data dequantized into `x` ∈ [0,1]^D with `levels` levels."""
        nll = -ops.convert_to_numpy(self.log_prob(x))
        return float(np.mean(_bits_per_dim(nll, self.num_dims, levels)))

    # ------------------------------------------------------------------ training
    def call(self, x, training=None):
        """Per-example negative log-likelihood in nats, shape (batch,)."""
        # Through kb.call_network: on torch one traced replay of the whole chain (Keras's per-layer Python time
        # is most of a Glow step there); elsewhere the plain call.
        return -kb.call_network(self, x, training, method=self._log_prob)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        return replica_mean(ops.mean(y_pred) / self.num_dims)

    def initialize(self, x):
        """Data-dependent initialisation (ActNorm, ...) from a batch, eagerly, in layer order.

        Layers that are already initialised (a reloaded model) are left alone. Returns self.
        """
        self._check_data(x)
        h = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        for layer in self.flow_layers:
            if self.data_init and getattr(layer, "data_init", False) and not _is_initialized(layer):
                layer.initialize_from(h)
            if isinstance(layer, Split):
                h, _, _ = layer(h, training=False)
            else:
                h, _ = layer(h, training=False)
        return self

    def needs_initialization(self):
        return self.data_init and any(
            getattr(layer, "data_init", False) and not _is_initialized(layer) for layer in self.flow_layers)

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        """`keras.Model.fit` on unlabelled data in [0, 1]; runs `initialize` on the first batch if needed.

        NumPy data is checked first (kgen._checks.fit_array): float, the model's shape, finite, in [0, 1].
        """
        array = fit_array(x)
        if array is not None:
            self._check_data(array)
            if self.needs_initialization():
                self.initialize(array[: max(batch_size or 256, 256)])
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    def _check_data(self, x, name="x"):
        array = _as_numpy_if_host(x)
        if array is None:
            check_example_shape(name, getattr(x, "shape", ()), self.data_shape)
            return
        expects = "float data" if self.value_range is None else "float data in [{:g}, {:g}]".format(*self.value_range)
        check_data(name, array, self.data_shape, expects, "kgen.datasets.dequantize(x, levels)")
        if self.value_range is not None and array.size and (
                array.min() < self.value_range[0] or array.max() > self.value_range[1]):
            raise ValueError(f"`{name}` must lie in [0, 1] (use kgen.datasets.dequantize), "
                             f"got values in [{array.min():.3g}, {array.max():.3g}]")

    # ------------------------------------------------------------------ serving
    def export_endpoints(self):
        """Endpoints for `kgen.export`: `serve`/`log_prob(x)`, `sample(z)` and `sample_random(temperature)`.

        `sample` takes every standardised latent, flattened and concatenated in `encode` order, shape
        `(batch, D)`; `sample_random` takes per-example temperatures, float32 of shape `(batch, 1)` (its length is
        the number of samples; a scalar or a `(batch,)` vector is refused by the SavedModel's signature), and
        draws the latents from the model's seed state (different draws on each call).
        """
        sizes = [int(np.prod(shape)) for shape in self.latent_shapes]
        x_spec = keras.InputSpec(shape=(None,) + self.data_shape, dtype="float32")

        def log_prob(x):
            return self._log_prob(x, training=False)

        def split_latents(z):
            latents, start = [], 0
            for shape, size in zip(self.latent_shapes, sizes):
                latents.append(ops.reshape(z[:, start:start + size], (-1,) + tuple(shape)))
                start += size
            return latents

        def sample(z):
            return self.decode(split_latents(z))

        def sample_random(temperature):
            batch = ops.shape(temperature)[0]
            latents = [self.prior.sample((batch,) + tuple(shape), seed=self.seed_generator)
                       * ops.reshape(temperature, (-1,) + (1,) * len(shape)) for shape in self.latent_shapes]
            return self.decode(latents)

        return [
            Endpoint("serve", log_prob, [x_spec]),
            Endpoint("log_prob", log_prob, [x_spec]),
            Endpoint("sample", sample, [keras.InputSpec(shape=(None, sum(sizes)), dtype="float32")]),
            Endpoint("sample_random", sample_random, [keras.InputSpec(shape=(None, 1), dtype="float32")],
                     random=True),
        ]

    def get_config(self):
        # `data_init` is not here: each model derives it from its own arguments (preset, scale_init).
        return {**super().get_config(), "data_shape": list(self.data_shape), "prior": self.prior_name,
                "sample_temperature": self.sample_temperature, "seed": self.seed, "name": self.name,
                "network_dtype": self.network_dtype}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "input_shape" in config and "data_shape" not in config:  # a file written before the rename
            config["data_shape"] = config.pop("input_shape")
        return cls(**config)

