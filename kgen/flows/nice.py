"""NICE: additive couplings and a diagonal scale (Dinh, Krueger & Bengio 2014; Su Jianlin, kexue.fm 5776).

Two presets (`preset=`):

- ``"su"`` (default): Su's Keras NICE (bojone/flow/nice.py) as he wrote it — interleaved split (even/odd
  indices), the dimensions reversed *before* each coupling, the **subtracting encoder** z₂ = x₂ − m(x₁) with
  m ending in **ReLU** (so the decoder, which adds m ≥ 0, leans to positive pixels), a final scale layer with
  glorot-normal init, a Gaussian prior, and samples drawn at temperature 0.75. His data noise U[−0.01, 0] is
  an option of `examples/nice_su.py`; kgen evaluates on properly dequantized data.
- ``"paper"``: the NICE paper — additive z₂ = x₂ + m(x₁) with a linear m, the dimensions reversed *after*
  each coupling, the scale ("Homothety") initialised to zeros, a standard **logistic** prior.

`scale_init="data"` initialises the scale from the data (std⁻¹) instead: on the 8×8 digits (an additive MLP
flow, 60 epochs) that alone took test bits/dim from 3.56 to 2.84 when kgen's flows were first measured.

Example:
    >>> model = NICE((64,), hidden=(256, 256))
    >>> model.compile(optimizer="adam")
    >>> model.fit(x, epochs=10, batch_size=64)          # x in [0, 1]^64
"""

import keras

from kgen.flows.layers.coupling import AdditiveCoupling
from kgen.flows.layers.permutation import Permute
from kgen.flows.layers.reshape import Reshape
from kgen.flows.layers.scale import Scale
from kgen.flows.model import Flow

PRESETS = {
    "su": dict(subtract=True, output_activation="relu", permute="before", scale_init="glorot_normal",
               prior="gaussian", sample_temperature=0.75),
    "paper": dict(subtract=False, output_activation=None, permute="after", scale_init="zeros",
                  prior="logistic", sample_temperature=1.0),
}


@keras.saving.register_keras_serializable(package="kgen")
class NICE(Flow):
    """NICE on vectors `(D,)` or images `(H, W, C)` (flattened first).

    Args:
        data_shape: `(D,)` or `(H, W, C)`; D (or H·W·C) must be even.
        preset: "su" (default) or "paper", see the module docstring; the other arguments override it.
        num_couplings: number of additive couplings (4 in both).
        hidden: hidden sizes of each coupling's MLP m (5 × 1000 in both).
        scale_init: "glorot_normal" (Su), "zeros" (paper) or "data" (data-dependent, from `initialize`).
        prior, sample_temperature: override the preset's.
        seed: sampling seed.

    Example:
        >>> digits = kgen.datasets.load_digits("train")[0][:256].reshape(-1, 64)
        >>> x = kgen.datasets.dequantize(digits, kgen.datasets.DIGIT_LEVELS, seed=0)   # in [0, 1]^64
        >>> model = kgen.flows.NICE((64,), hidden=(64, 64))
        >>> model.compile(optimizer="adam")
        >>> model.fit(x, epochs=1, batch_size=64, verbose=0)
        >>> model.bits_per_dim(x, kgen.datasets.DIGIT_LEVELS)    # a float
        >>> model.sample(4, seed=0).shape                        # (4, 64), unbounded: value_range is None
    """

    def __init__(self, data_shape=None, preset="su", num_couplings=4, hidden=(1000,) * 5, scale_init=None,
                 prior=None, sample_temperature=None, seed=0, **kwargs):
        if preset not in PRESETS:
            raise ValueError(f"`preset` must be one of {sorted(PRESETS)}, got {preset!r}")
        options = PRESETS[preset]
        scale_init = options["scale_init"] if scale_init is None else scale_init
        if scale_init not in ("glorot_normal", "zeros", "data"):
            raise ValueError(f"`scale_init` must be 'glorot_normal', 'zeros' or 'data', got {scale_init!r}")
        super().__init__(data_shape, prior=prior or options["prior"], data_init=scale_init == "data",
                         sample_temperature=options["sample_temperature"] if sample_temperature is None
                         else sample_temperature, seed=seed, **kwargs)
        self.preset, self.num_couplings, self.hidden, self.scale_init = preset, int(num_couplings), tuple(hidden), scale_init
        # No bounded preprocessing: the density is on R^D, and Su trains on x/255 + U[-0.01, 0] (below 0).
        self.value_range = None
        layers = [] if len(self.data_shape) == 1 else [Reshape((-1,))]
        for k in range(self.num_couplings):
            # parity stays 0: the reversal between couplings already alternates the halves (alternating
            # parity as well would transform the same half every time).
            coupling = AdditiveCoupling(partition="interleave", network="mlp", hidden=self.hidden, parity=0,
                                        subtract=options["subtract"], output_activation=options["output_activation"])
            if options["permute"] == "before":
                layers += [Permute("reverse"), coupling]
            else:
                layers += [coupling, Permute("reverse")]
        layers.append(Scale(init="zeros" if scale_init == "data" else scale_init, data_init=scale_init == "data"))
        self._finish(layers)

    def get_config(self):
        return {**super().get_config(), "preset": self.preset, "num_couplings": self.num_couplings,
                "hidden": list(self.hidden), "scale_init": self.scale_init}
