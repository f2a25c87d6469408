"""Glow: actnorm, invertible 1×1 convolution, affine coupling, multi-scale (Kingma & Dhariwal 2018; Su 5807).

Presets (`preset=`):

- ``"openai"`` (default): the paper and openai/glow code — data shifted to [−½, ½]; per level: squeeze
  (openai channel order), then `depth` × [ActNorm with data-dependent init → LU-parameterised 1×1 conv →
  affine coupling with scale sigmoid(h+2), shift then scale, zero-initialised last conv]; split2d with a
  learned conditional prior between levels; a learned top prior; samples at temperature 0.7.
- ``"su"``: Su's Keras Glow (bojone/flow/glow.py) — data in [−1, 1], additive couplings, a *random
  permutation* instead of the 1×1 conv (his InvDense is written but unused), ActNorm zero-initialised
  without data-dependent init, his squeeze order, the conditional "CondActnorm" split, samples at 0.9.

Every argument overrides its preset's value.

Example:
    >>> model = Glow((8, 8, 1), levels=2, depth=8, filters=64)
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> model.fit(x, epochs=40, batch_size=64)
"""

import keras

from kgen.flows.layers.actnorm import ActNorm
from kgen.flows.layers.coupling import AdditiveCoupling, AffineCoupling
from kgen.flows.layers.invconv import InvertibleConv1x1
from kgen.flows.layers.permutation import Permute
from kgen.flows.layers.preprocessing import Shift
from kgen.flows.layers.split import Split, TopPrior
from kgen.flows.layers.squeeze import Squeeze
from kgen.flows.model import Flow

PRESETS = {
    "openai": dict(coupling="affine", permutation="lu", data_init=True, squeeze_order="openai",
                   offset=-0.5, scale=1.0, sample_temperature=0.7),
    "su": dict(coupling="additive", permutation="random", data_init=False, squeeze_order="su",
               offset=-0.5, scale=2.0, sample_temperature=0.9),
}
PERMUTATIONS = ("lu", "full", "random", "reverse")


@keras.saving.register_keras_serializable(package="kgen")
class Glow(Flow):
    """Glow on images `(H, W, C)`, H and W divisible by 2^levels; see the module docstring.

    Args:
        data_shape: `(H, W, C)`.
        levels: number of levels L (each squeezes by 2).
        depth: steps of flow K per level.
        filters: width of the coupling networks.
        preset: "openai" (default) or "su".
        coupling: "affine" or "additive".
        permutation: "lu" (LU 1×1 conv), "full" (1×1 conv with slogdet), "random" or "reverse".
        split_prior: "conditional" (split2d) or "standard".
        learn_top: learned top prior.

    Example:
        >>> digits = kgen.datasets.load_digits("train")[0][:128].reshape(-1, 8, 8, 1)
        >>> x = kgen.datasets.dequantize(digits, kgen.datasets.DIGIT_LEVELS, seed=0)
        >>> model = kgen.flows.Glow((8, 8, 1), levels=2, depth=2, filters=16)
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> model.fit(x, epochs=1, batch_size=64, verbose=0)   # ActNorm is initialised from the first batch
        >>> model.sample(4, seed=0, temperature=0.7).shape     # (4, 8, 8, 1)
    """

    def __init__(self, data_shape=None, levels=3, depth=32, filters=512, preset="openai", coupling=None,
                 permutation=None, split_prior="conditional", learn_top=True, squeeze_order=None,
                 prior="gaussian", sample_temperature=None, seed=0, **kwargs):
        if preset not in PRESETS:
            raise ValueError(f"`preset` must be one of {sorted(PRESETS)}, got {preset!r}")
        options = PRESETS[preset]
        super().__init__(data_shape, prior=prior, data_init=options["data_init"],
                         sample_temperature=options["sample_temperature"] if sample_temperature is None
                         else sample_temperature, seed=seed, **kwargs)
        self.preset, self.levels, self.depth, self.filters = preset, int(levels), int(depth), int(filters)
        self.coupling = coupling or options["coupling"]
        self.permutation = permutation or options["permutation"]
        self.squeeze_order = squeeze_order or options["squeeze_order"]
        self.split_prior, self.learn_top = split_prior, bool(learn_top)
        if self.coupling not in ("affine", "additive"):
            raise ValueError(f"`coupling` must be 'affine' or 'additive', got {self.coupling!r}")
        if self.permutation not in PERMUTATIONS:
            raise ValueError(f"`permutation` must be one of {PERMUTATIONS}, got {self.permutation!r}")
        if len(self.data_shape) != 3:
            raise ValueError(f"`data_shape` must be (H, W, C) for Glow, got {self.data_shape}")
        height, width, _ = self.data_shape
        if height % 2 ** self.levels or width % 2 ** self.levels:
            raise ValueError(f"`data_shape` {self.data_shape}: height and width must be divisible by "
                             f"2**levels = {2 ** self.levels}")
        layers = [Shift(offset=options["offset"], scale=options["scale"])]
        for level in range(self.levels):
            layers.append(Squeeze(order=self.squeeze_order))
            for step in range(self.depth):
                layers += [ActNorm(), self._permutation(seed + 1000 * level + step), self._coupling()]
            if level < self.levels - 1:
                layers.append(Split(prior=self.split_prior))
        if self.learn_top:
            layers.append(TopPrior())
        self._finish(layers)

    def _permutation(self, seed):
        if self.permutation in ("lu", "full"):
            return InvertibleConv1x1(lu=self.permutation == "lu", seed=seed)
        return Permute(self.permutation, seed=seed)

    def _coupling(self):
        if self.coupling == "additive":
            return AdditiveCoupling(partition="halves", network="conv", filters=self.filters)
        return AffineCoupling(partition="channel", network="conv", filters=self.filters, scale_fn="sigmoid",
                              order="shift_then_scale")

    def get_config(self):
        return {**super().get_config(), "levels": self.levels, "depth": self.depth, "filters": self.filters,
                "preset": self.preset, "coupling": self.coupling, "permutation": self.permutation,
                "split_prior": self.split_prior, "learn_top": self.learn_top, "squeeze_order": self.squeeze_order}
