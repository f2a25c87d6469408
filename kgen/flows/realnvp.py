"""RealNVP: affine couplings, masks, squeeze and factor-out (Dinh, Sohl-Dickstein & Bengio 2016; Su 5807).

Vectors `(D,)`: `num_couplings` affine couplings on MLPs. The paper alternates which half is transformed
(`permutation="alternate"`, default); Su shuffles all dimensions at random before each coupling
(`permutation="random"`), which he found mixes better.

Images `(H, W, C)`: per scale, 3 checkerboard couplings → squeeze → 3 channel couplings → factor out half;
the last scale has 4 checkerboard couplings (the paper's architecture), with conv coupling networks.
Factored-out halves get a standard prior (paper) or Su's conditional one (`split_prior="conditional"`).

Data in [0, 1] go through logit(α + (1−2α)x) with α = 0.05 (the RealNVP code), log-det included. Scale
function `exp(scale·tanh(h))` (RealNVP code, default) or `exp` / `sigmoid(h+2)`. Optional batch-norm
flow layers after each coupling (the paper's; off by default: small batches make them noisy on CPU).

Example:
    >>> model = RealNVP((64,), num_couplings=8, hidden=(64, 64))
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> model.fit(x, epochs=60, batch_size=64)
"""

import keras

from kgen.flows.layers.batchnorm import BatchNormFlow
from kgen.flows.layers.coupling import AffineCoupling
from kgen.flows.layers.permutation import Permute
from kgen.flows.layers.preprocessing import Logit
from kgen.flows.layers.split import Split
from kgen.flows.layers.squeeze import Squeeze
from kgen.flows.model import Flow


@keras.saving.register_keras_serializable(package="kgen")
class RealNVP(Flow):
    """RealNVP on vectors or images; see the module docstring.

    Args:
        data_shape: `(D,)` (D even) or `(H, W, C)` (H, W divisible by 2^(scales−1)).
        num_couplings: couplings for vectors.
        hidden: MLP hidden sizes (vectors).
        scales: number of scales (images).
        filters: conv width of the coupling networks (images).
        permutation: "alternate" (paper) or "random" (Su) for vectors.
        scale_fn: "tanh_exp" (default), "exp" or "sigmoid".
        split_prior: "standard" (paper) or "conditional" (Su / Glow) for factored-out halves.
        batch_norm: add BatchNormFlow after each coupling.
        logit_alpha: α of the logit preprocessing; None for unbounded data (no preprocessing, no range check).

    Example:
        >>> x = np.random.default_rng(0).uniform(size=(256, 4)).astype("float32")   # data in [0, 1]
        >>> model = kgen.flows.RealNVP((4,), num_couplings=4, hidden=(16, 16))
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> model.fit(x, epochs=1, batch_size=64, verbose=0)
        >>> model.log_prob(x[:2]).shape                  # (2,): nats per example
        >>> model.sample(3, seed=0).shape                # (3, 4), in model.value_range = (0.0, 1.0)
    """

    def __init__(self, data_shape=None, num_couplings=8, hidden=(64, 64), scales=2, filters=64,
                 permutation="alternate", scale_fn="tanh_exp", split_prior="standard", batch_norm=False,
                 logit_alpha=0.05, prior="gaussian", sample_temperature=1.0, seed=0, **kwargs):
        super().__init__(data_shape, prior=prior, data_init=True, sample_temperature=sample_temperature,
                         seed=seed, **kwargs)
        if permutation not in ("alternate", "random"):
            raise ValueError(f"`permutation` must be 'alternate' or 'random', got {permutation!r}")
        self.num_couplings, self.hidden, self.scales, self.filters = int(num_couplings), tuple(hidden), int(scales), int(filters)
        self.permutation, self.scale_fn, self.split_prior = permutation, scale_fn, split_prior
        self.batch_norm = bool(batch_norm)
        self.logit_alpha = None if logit_alpha is None else float(logit_alpha)
        layers = [Logit(alpha=self.logit_alpha)] if logit_alpha is not None else []
        if logit_alpha is None:
            self.value_range = None  # unbounded data (2-D toys), no preprocessing
        if len(self.data_shape) == 1:
            for k in range(self.num_couplings):
                if permutation == "random":
                    layers.append(Permute("random", seed=seed + k))
                layers.append(AffineCoupling(partition="halves", network="mlp", hidden=self.hidden,
                                             parity=k % 2 if permutation == "alternate" else 0, scale_fn=scale_fn))
                if self.batch_norm:
                    layers.append(BatchNormFlow())
        else:
            self._check_image_side(2 ** (self.scales - 1))
            for s in range(self.scales):
                last = s == self.scales - 1
                layers += self._couplings("checkerboard", 4 if last else 3)
                if not last:
                    layers.append(Squeeze())
                    layers += self._couplings("channel", 3)
                    layers.append(Split(prior=split_prior))
        self._finish(layers)

    def _couplings(self, partition, count):
        layers = []
        for k in range(count):
            layers.append(AffineCoupling(partition=partition, network="conv", filters=self.filters, parity=k % 2,
                                         scale_fn=self.scale_fn))
            if self.batch_norm:
                layers.append(BatchNormFlow())
        return layers

    def _check_image_side(self, factor):
        height, width, _ = self.data_shape
        if height % factor or width % factor:
            raise ValueError(f"`data_shape` {self.data_shape}: height and width must be divisible by {factor}")

    def get_config(self):
        return {**super().get_config(), "num_couplings": self.num_couplings, "hidden": list(self.hidden),
                "scales": self.scales, "filters": self.filters, "permutation": self.permutation,
                "scale_fn": self.scale_fn, "split_prior": self.split_prior, "batch_norm": self.batch_norm,
                "logit_alpha": self.logit_alpha}
