"""Exponential moving average (EMA) of network weights, kept by the model and updated inside its compiled step.

One mechanism for every family that samples from averaged weights: diffusion models (DDPM, Ho et al. 2020:
decay 0.9999; keras.io DDIM and DDPM examples: 0.999; Su's Keras-DDPM: 0.9999) and GAN generators (Yazıcı et
al. 2019, "The Unusual Effectiveness of Averaging in GAN Training"; BigGAN, Brock et al. 2019; Su's O-GAN code
and "从DCGAN到SELF-MOD", kexue.fm/archives/6549). After optimizer step k has produced weights w_k,

    ema_k = d_k · ema_{k−1} + (1 − d_k) · w_k,      ema_0 = w_0 (the weights before training),
    d_k = 0 for the first `start_step` folds (the average is a plain copy; BigGAN starts at 20k), d after.

Only trainable weights are averaged. A network run with the averages (`call_with_averages`) keeps its live
non-trainable weights (BatchNorm moving statistics, spectral-norm vectors), which belong to the live weights,
unless the average keeps standing copies of them (`statistics=True`, below).
For BatchNorm that is more than an approximation: its moving statistics follow the live weights over the last
~1/(1 − momentum) = 100 steps, the averaged weights over ~1/(1 − d) steps, and the averaged network normalised
with the live statistics can be far from both. With `statistics=True` the average also keeps "standing
statistics" (BigGAN, Brock et al. 2019): `standing_statistics(network, batches)` runs the network with the
averaged weights in training mode on some batches and stores the mean of their BatchNorm batch statistics
(momentum k/(k+1) at batch k: a plain average), which `call_with_averages` then uses in inference. Until they
are computed, and after `reset_statistics()`, the live ones are used. Measured on the 28×28 animal GANs (2000
steps, d = 0.999, classifier FD, median of 2 seeds; `benchmarks/bench_gans_animals.py --ema-decay 0.999`): the
average with the live statistics 47.8 (DCGAN) and 61.7 (SELF-MOD's generator), with standing ones 29.1 and 21.4.

The same goes for the vectors u of the network's spectral norms (kgen's `SpectralNormalization`): u estimates
the top singular vector of the *live* kernel, and σ̂ = ‖M û‖ of the averaged kernel M with it falls short of
σ_max(M): on a +SELF-MOD generator (width 16, 1000 steps, d = 0.999) by 4.4 %, 3.4 % and 30 % in three of its
seven normalised layers (under 0.2 % in the others), so those ran up to 1.4× too large. `standing_statistics`
first converges each u on its averaged kernel (100 power iterations from the live u) and computes the BatchNorm
statistics with them: vectors and statistics both belong to the averaged weights
(`benchmarks/probes/ema_spectral_norm.py`).

Mechanism (why not the alternatives). Keras's own `optimizer(use_ema=True)` keeps the average inside the
optimizer: it is lost with `compile=False` reloads, has to be copied out by hand, and sharing its variables
with the model breaks JAX's buffer donation. A callback cannot see the weights inside a JAX epoch without a
host round-trip per update. So the model owns the averages (this layer's non-trainable variables, saved with
the model) and folds them in from inside the compiled training step, with keras.ops only, on every backend.
Two ways to call it, after how the step is ordered:
- `fold(variables)`, right after the optimizer step, where the model's step runs the optimizer itself (the
  GANs' `train_networks`);
- `update(variables)` at the start of the step and `finish(variables)` after training, where Keras's own
  `train_step` runs the loss before the optimizer (`DiffusionModel.compute_loss`): a step then folds in the
  weights of the *previous* step; a `pending` flag records that the latest step's weights are not folded yet,
  and `finish` (called by `DiffusionModel.fit` at the end) folds them. Each w_k is folded exactly once, however
  `fit` is split.
"""

import keras
from keras import ops

from kgen import backend as kb
from kgen._checks import check_int, check_positive_float

__all__ = ["ExponentialMovingAverage", "batch_norms", "spectral_norms"]


def spectral_norms(network):
    """The layers in `network` that normalise a kernel with a stored power-iteration vector `u` (kgen's
    `SpectralNormalization`: they have `kernel_variable`, `u` and `converged_vector`), nested ones too."""
    return [layer for layer in kb.sublayers(network)
            if all(hasattr(layer, name) for name in ("kernel_variable", "u", "converged_vector"))]


def _averaged_spectral_norms(network):
    """The spectral norms whose kernel is trainable, hence averaged (a frozen kernel's live u is its own)."""
    trainable = {id(v) for v in network.trainable_variables}
    return [layer for layer in spectral_norms(network) if id(layer.kernel_variable) in trainable]


def batch_norms(network):
    """The BatchNormalization layers in `network`, nested ones too (those inside self-modulated and
    class-conditional BatchNorm): the layers whose statistics `statistics=True` keeps standing copies of."""
    return [layer for layer in kb.sublayers(network) if isinstance(layer, keras.layers.BatchNormalization)]


@keras.saving.register_keras_serializable(package="kgen")
class ExponentialMovingAverage(keras.layers.Layer):
    """Non-trainable copies of some variables, moved towards them by `fold` (or `update` / `finish`).

    Args:
        decay: d in (0, 1).
        start_step: number of folds during which the average is a plain copy of the weights (d = 0).
        statistics: also keep standing BatchNorm statistics and spectral-norm vectors of the tracked network for
            the averaged weights (`standing_statistics`; then `track(variables, network)`).

    Call `track(variables)` once (it creates the averages, initialised to the variables' current values).
    Models own one: `DiffusionModel(ema_decay=...)`, `GAN(..., ema_decay=...)`.

    Example:

    ```python
    import keras
    from kgen.ema import ExponentialMovingAverage

    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    ema = ExponentialMovingAverage(0.9)
    ema.track(dense.trainable_variables)     # averages = the weights now
    dense.kernel.assign(dense.kernel + 1.0)  # an optimizer step
    ema.fold(dense.trainable_variables)      # averages = 0.9 · averages + 0.1 · weights
    y = ema.call_with_averages(dense, keras.ops.ones((4, 3)))   # the layer run with the averaged weights
    ```
    """

    def __init__(self, decay=0.999, start_step=0, statistics=False, **kwargs):
        super().__init__(**kwargs)
        self.decay = check_positive_float("decay", decay)
        if self.decay >= 1.0:
            raise ValueError(f"`decay` must be in (0, 1), got {decay}")
        self.start_step = check_int("start_step", start_step, 0)
        if not isinstance(statistics, bool):
            raise TypeError(f"`statistics` must be True or False, got {statistics!r}")
        self.statistics = statistics
        self.averages = []
        self.standing = []  # with `statistics`: one per BatchNorm moving mean / variance of the tracked network
        self._positions = []  # where each sits in the network's non_trainable_variables
        # Keras's saving writes a layer held in a list attribute under the first path that reaches it: the
        # tracked network's BatchNorm layers have always been written here (ema/_batch_norms/...), so files keep
        # them there. Its spectral norms are not held (found from the network when needed): their weights stay
        # under the network, where files written before the standing vectors have them.
        self._batch_norms = []
        self.standing_vectors = []  # with `statistics`: one per spectral-norm vector u of the tracked network
        self._vector_positions, self._vector_kernels = [], []  # u's place in the state, its kernel's in the weights

    def track(self, variables, network=None):
        """Create one average per variable, equal to it now, the `pending` flag (0) and, with `start_step`, the
        count of folds. With `statistics=True`, `network` (whose trainable variables `variables` are) is needed:
        one standing statistic per moving mean and variance of its BatchNorm layers, and a `ready` flag (0)."""
        if self.averages:
            raise ValueError("ExponentialMovingAverage already tracks variables")
        if self.statistics and not isinstance(network, keras.layers.Layer):
            raise ValueError("an average with `statistics=True` needs the tracked `network` (a keras Layer or "
                             f"Model) in `track`, got {type(network).__name__}")
        for i, variable in enumerate(variables):
            average = self.add_weight(shape=tuple(variable.shape), initializer="zeros", trainable=False,
                                      dtype=variable.dtype, name=f"average_{i}")
            average.assign(ops.copy(variable.value))  # a copy: JAX must not see one buffer twice
            self.averages.append(average)
        self.pending = self.add_weight(shape=(), initializer="zeros", trainable=False, name="pending")
        # Only with a warm-up, so that files saved before `start_step` existed load unchanged.
        self.folds = (self.add_weight(shape=(), initializer="zeros", trainable=False, name="folds")
                      if self.start_step else None)
        if self.statistics:
            self._track_statistics(network)
        self.built = True

    def _track_statistics(self, network):
        self._batch_norms = batch_norms(network)
        where = {id(v): i for i, v in enumerate(network.non_trainable_variables)}
        moving = [v for layer in self._batch_norms for v in (layer.moving_mean, layer.moving_variance)]
        self._positions = [where[id(v)] for v in moving]
        for i, variable in enumerate(moving):
            copy = self.add_weight(shape=tuple(variable.shape), initializer="zeros", trainable=False,
                                   dtype=variable.dtype, name=f"standing_{i}")
            copy.assign(ops.copy(variable.value))
            self.standing.append(copy)
        self.ready = self.add_weight(shape=(), initializer="zeros", trainable=False, name="ready")
        # After `ready`, and only for networks with spectral norms: files saved before these existed load.
        trainable = {id(v): i for i, v in enumerate(network.trainable_variables)}
        vector_layers = _averaged_spectral_norms(network)
        self._vector_positions = [where[id(layer.u)] for layer in vector_layers]
        self._vector_kernels = [trainable[id(layer.kernel_variable)] for layer in vector_layers]
        for i, layer in enumerate(vector_layers):
            copy = self.add_weight(shape=tuple(layer.u.shape), initializer="zeros", trainable=False,
                                   dtype=layer.u.dtype, name=f"standing_vector_{i}")
            copy.assign(ops.copy(layer.u.value))
            self.standing_vectors.append(copy)
        if vector_layers:
            self.vectors_ready = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                                 name="vectors_ready")

    def load_own_variables(self, store):
        """Also reads files written before the standing spectral-norm vectors existed: their variables are this
        layer's first ones, and the vectors stay not ready (the live ones are used, as those files did)."""
        extra = len(self.standing_vectors) + (1 if self.standing_vectors else 0)
        own = self._trainable_variables + self._non_trainable_variables
        if extra and len(store.keys()) == len(own) - extra:
            for i, variable in enumerate(own[:-extra]):
                variable.assign(store[str(i)])
            return
        super().load_own_variables(store)

    def _fold(self, variables, pending):
        """ema ← ema + pending·(1 − d_k)·(w − ema): a fold when `pending` is 1, nothing when it is 0."""
        variables = list(variables)
        if len(variables) != len(self.averages):
            raise ValueError(f"expected the {len(self.averages)} tracked variables, got {len(variables)}")
        pending = ops.cast(pending, "float32")
        if self.folds is None:
            keep = ops.convert_to_tensor(self.decay, "float32")
        else:
            warm = ops.cast(self.folds.value >= self.start_step, "float32")
            keep = warm * self.decay
            self.folds.assign(self.folds.value + pending)
        kb.move_towards(self.averages, [variable.value for variable in variables], pending * (1.0 - keep))

    def fold(self, variables):
        """Fold the current `variables` in now (call right after an optimizer step)."""
        self._fold(variables, ops.ones_like(self.pending.value))

    def update(self, variables):
        """Start of a training step: fold in `variables` if a step has changed them since the last fold."""
        self._fold(variables, self.pending.value)
        self.pending.assign(ops.ones_like(self.pending.value))

    def finish(self, variables):
        """After training: fold in the weights of the last optimizer step (nothing if already folded)."""
        self._fold(variables, self.pending.value)
        self.pending.assign(ops.zeros_like(self.pending.value))

    def _check_network(self, network):
        if len(network.trainable_variables) != len(self.averages):
            raise ValueError(f"`network` has {len(network.trainable_variables)} trainable variables; this EMA "
                             f"tracks {len(self.averages)}")

    def averaged_state(self, network):
        """The non-trainable values that go with the averages in inference: `network`'s live ones (it must be
        the one tracked), with the standing BatchNorm statistics and spectral-norm vectors in their places once
        they are computed."""
        state = [v.value for v in network.non_trainable_variables]
        if self.standing:
            ready = self.ready.value > 0.5  # a traced choice: no host round-trip in a compiled sampling loop
            for i, standing in zip(self._positions, self.standing):
                state[i] = ops.where(ready, standing.value, state[i])
        if self.standing_vectors:
            ready = self.vectors_ready.value > 0.5
            for i, standing in zip(self._vector_positions, self.standing_vectors):
                state[i] = ops.where(ready, standing.value, state[i])
        return state

    def call_with_averages(self, network, inputs, training=False):
        """`network(inputs)` computed with the averages in place of its trainable weights (which it must be the
        one tracked), its live non-trainable weights (in inference, the standing BatchNorm statistics and
        spectral-norm vectors where they have been computed: `averaged_state`), and no change to either."""
        self._check_network(network)
        averages = [a.value for a in self.averages]
        if not self.standing or training:  # training: BatchNorm normalises with the batch's own statistics
            return kb.call_network(network, inputs, training, trainable_values=averages)
        return kb.call_network(network, inputs, training, trainable_values=averages,
                               non_trainable_values=self.averaged_state(network))

    def standing_statistics(self, network, batches):
        """Compute the standing BatchNorm statistics of `network` (the tracked one) with the averaged weights:
        the plain mean over `batches` (an iterable of network inputs) of each BatchNorm layer's batch mean and
        batch variance, the network run in training mode as `stateless_call` (no live variable changes), then
        mark them ready. Each spectral norm's u is first converged on its averaged kernel (`converged_vector`),
        so the statistics are those of the averaged network as it runs in inference, and kept beside them.
        Eager, once after training: not for a compiled step."""
        if not self.statistics:
            raise ValueError("this average keeps no statistics: build it with statistics=True")
        self._check_network(network)
        averages = [a.value for a in self.averages]
        state = [v.value for v in network.non_trainable_variables]
        for layer, i, k in zip(_averaged_spectral_norms(network), self._vector_positions, self._vector_kernels):
            state[i] = ops.convert_to_tensor(layer.converged_vector(averages[k]))  # u of the averaged kernel
        momenta = [layer.momentum for layer in self._batch_norms]
        count = 0
        try:
            for count, inputs in enumerate(batches, start=1):
                for layer in self._batch_norms:  # moving ← m·moving + (1 − m)·batch, m = k/(k+1): the mean
                    layer.momentum = (count - 1) / count
                state = network.stateless_call(averages, state, inputs, training=True)[1]
        finally:
            for layer, momentum in zip(self._batch_norms, momenta):
                layer.momentum = momentum
        if count == 0:
            raise ValueError("`batches` gave no batch")
        for i, standing in zip(self._positions + self._vector_positions, self.standing + self.standing_vectors):
            standing.assign(state[i])
        self.ready.assign(ops.ones_like(self.ready.value))
        if self.standing_vectors:
            self.vectors_ready.assign(ops.ones_like(self.vectors_ready.value))

    def reset_statistics(self):
        """Forget the standing statistics and vectors (the live ones are used until they are computed again)."""
        if self.standing:
            self.ready.assign(ops.zeros_like(self.ready.value))
        if self.standing_vectors:
            self.vectors_ready.assign(ops.zeros_like(self.vectors_ready.value))

    def call(self, inputs):
        return inputs

    def get_config(self):
        config = {**super().get_config(), "decay": self.decay}
        if self.start_step:
            config["start_step"] = self.start_step
        if self.statistics:  # only when set, as `start_step`: older files' configs stay what they were
            config["statistics"] = True
        return config
