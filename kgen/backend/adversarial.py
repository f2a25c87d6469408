"""Several networks, one optimizer each, trained by plain `model.fit` on TF, JAX and torch.

A subclass names its networks and writes one backend-free method, `train_networks(data)`, that calls
`self.minimize(loss_fn, network_name)` once per update (alternating, in the order it chooses) and returns
a dict of scalar logs. The per-backend `train_step` lives in `_jax.py` / `_tensorflow.py` / `_torch.py`.

Why a MultiOptimizer: on JAX, `fit` threads only `model.optimizer.variables` through its compiled step, so
a second optimizer held as an attribute would lose its state. `keras.optimizers.MultiOptimizer` (Keras
3.15) exposes every sub-optimizer's variables as its own; kgen routes each trainable variable to the
optimizer of the network that owns it, and steps each sub-optimizer on its own variables.

Each optimizer variable is saved once. Keras's MultiOptimizer writes its sub-optimizers' variables among its
own and Keras's saving then writes each sub-optimizer again (under `optimizer/optimizers/`, or under a dict
attribute holding them), so a GAN's `.keras` file carried its Adam moments twice. `_RoutingOptimizer` writes
only its own variables (iteration count, learning rate), and `network_optimizers` is a read-only mapping that
saving does not walk. Files written before still load with their optimizer state (`load_own_variables` reads
their full list); Keras then warns that it skips each sub-optimizer's group, empty in those files, which loses
nothing.
"""

import types
import warnings

import keras

from kgen.backend._common import portable_config
from kgen.backend._impl import impl
from kgen.backend.functions import minimize as _minimize


class _RoutingOptimizer(keras.optimizers.MultiOptimizer):
    """`keras.optimizers.MultiOptimizer` that saves and loads only its own variables (iteration count, learning
    rate); Keras's saving reaches each sub-optimizer through `optimizers` and writes it there."""

    def save_own_variables(self, store):
        for i, variable in enumerate(self._variables):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        if len(store.keys()) == len(self.variables):  # written before: every sub-optimizer's variables here too
            super().load_own_variables(store)
            return
        if len(store.keys()) != len(self._variables):
            warnings.warn(f"Skipping variable loading for optimizer '{self.name}': it has {len(self._variables)} "
                          f"variables of its own, the saved one {len(store.keys())}", stacklevel=2)
            return
        for i, variable in enumerate(self._variables):
            variable.assign(store[str(i)])


class AdversarialModel(impl.AdversarialTrainer):
    """Base class for models whose networks are trained by separate optimizers (GANs, energy models).

    Subclasses:
      - build their networks in `__init__` (from `keras.Input`, so every variable exists before `fit`),
      - set `log_names`, the keys `train_networks` returns (each gets a `keras.metrics.Mean` averaged over
        the epoch),
      - implement `train_networks(data) -> dict`, calling `self.minimize(loss_fn, name)`.

    `compile(optimizers={"discriminator": ..., "generator": ...})` maps network attribute names to
    optimizers; every trainable variable of the model must belong to exactly one of these networks.

    Example:
        >>> class TwoPlayer(kgen.backend.AdversarialModel):       # a least-squares GAN on 2-D points
        ...     log_names = ("d_loss", "g_loss")
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
        ...         self.discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        ...         self.seed_generator = keras.random.SeedGenerator(0)   # the model owns its randomness
        ...     def train_networks(self, data):
        ...         fake = lambda: self.generator(keras.random.normal((32, 2), seed=self.seed_generator))
        ...         d = self.minimize(lambda: keras.ops.mean((self.discriminator(data) - 1) ** 2)
        ...                           + keras.ops.mean(self.discriminator(fake()) ** 2), "discriminator")
        ...         g = self.minimize(lambda: keras.ops.mean((self.discriminator(fake()) - 1) ** 2), "generator")
        ...         return {"d_loss": d, "g_loss": g}
        >>> model = TwoPlayer()
        >>> model.compile(optimizers={"discriminator": keras.optimizers.Adam(2e-4),
        ...                           "generator": keras.optimizers.Adam(2e-4)})
        >>> history = model.fit(np.ones((64, 2), "float32"), batch_size=32, epochs=1, verbose=0)
    """

    log_names = ("loss",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._trackers = [keras.metrics.Mean(name=name) for name in self.log_names]
        self.network_optimizers = types.MappingProxyType({})

    @property
    def metrics(self):
        return list(self._trackers)

    def compile(self, optimizers=None, **kwargs):
        """Configure training with one optimizer per network.

        Args:
            optimizers: dict `{network attribute name: keras.optimizers.Optimizer}`.
            **kwargs: passed on to `keras.Model.compile` (`jit_compile`, `steps_per_execution`, ...).
        """
        if kwargs.get("optimizer") is not None:
            raise ValueError("AdversarialModel.compile takes `optimizers={network_name: optimizer}`, not `optimizer`")
        kwargs.pop("optimizer", None)
        if not isinstance(optimizers, dict) or not optimizers:
            raise TypeError(f"`optimizers` must be a non-empty dict {{network name: Optimizer}}, got {optimizers!r}")
        owner = {}
        for name, optimizer in optimizers.items():
            network = getattr(self, name, None)
            if not isinstance(network, keras.layers.Layer):
                raise ValueError(f"`optimizers` key {name!r} is not a network (Layer attribute) of {type(self).__name__}")
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                raise TypeError(f"`optimizers[{name!r}]` must be a keras Optimizer, got {type(optimizer).__name__}")
            for variable in network.trainable_variables:
                if id(variable) in owner:
                    raise ValueError(f"variable {variable.path} belongs to two networks: {owner[id(variable)]} and {name}")
                owner[id(variable)] = name
        orphans = [v.path for v in self.trainable_variables if id(v) not in owner]
        if orphans:
            raise ValueError(f"trainable variables owned by no network in `optimizers`: {orphans[:5]}")
        self.network_optimizers = types.MappingProxyType(dict(optimizers))  # saved once, by the MultiOptimizer
        if all(getattr(self, name).built for name in optimizers):
            # The networks hold every variable: nothing for fit to build by tracing `call` on a batch.
            self.built = True

        def route(variable):
            return optimizers[owner[id(variable)]]

        multi = _RoutingOptimizer(route)
        super().compile(optimizer=multi, **kwargs)
        if self.trainable_variables:
            # Build now: fit on JAX needs every sub-optimizer's variables in its state from the first step.
            multi.build(self.trainable_variables)

    def get_compile_config(self):
        """The networks' optimizers (the routing closure itself is rebuilt by `compile`), so that a reloaded model
        is compiled again and Keras restores every optimizer's state (moments, iteration counts)."""
        if not self.network_optimizers:
            return None
        return portable_config({"optimizers": {name: keras.saving.serialize_keras_object(optimizer)
                                               for name, optimizer in self.network_optimizers.items()}})

    def compile_from_config(self, config):
        optimizers = {name: keras.saving.deserialize_keras_object(value)
                      for name, value in portable_config(config)["optimizers"].items()}
        self.compile(optimizers=optimizers)

    def minimize(self, loss_fn, network):
        """One optimizer step of `network` (an attribute name given to `compile`) on the scalar `loss_fn()`."""
        if network not in self.network_optimizers:
            raise ValueError(f"`network` must be one of {sorted(self.network_optimizers)} (from compile), got {network!r}")
        variables = getattr(self, network).trainable_variables
        return _minimize(loss_fn, variables, self.network_optimizers[network])

    def train_networks(self, data):
        """One training step on a batch; returns `{name: scalar}` for each of `log_names`."""
        raise NotImplementedError(f"{type(self).__name__} must implement train_networks(data)")

    def evaluate_networks(self, data):
        """The losses of `log_names` on a batch without any optimizer step (what `evaluate` reports); None when a
        subclass does not say how (evaluate then reports nothing new)."""
        return None

    def _adversarial_test_step(self, data):
        logs = self.evaluate_networks(data)
        if logs is not None:
            for tracker in self._trackers:
                tracker.update_state(logs[tracker.name])
        return {tracker.name: tracker.result() for tracker in self._trackers}

    def _adversarial_train_step(self, data):
        logs = self.train_networks(data)
        missing = set(self.log_names) - set(logs)
        if missing:
            raise ValueError(f"train_networks returned no value for {sorted(missing)} (declared in log_names)")
        for tracker in self._trackers:
            tracker.update_state(logs[tracker.name])
        return {tracker.name: tracker.result() for tracker in self._trackers}
