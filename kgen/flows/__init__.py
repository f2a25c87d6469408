"""Normalizing flows: NICE (Su's Keras NICE and the paper), RealNVP and Glow, in `keras.ops`.

Contract of every invertible layer (kgen/flows/layers/base.py): `call(x) -> (z, logdet)` data→latent with
logdet = +log|det ∂z/∂x| per example, and `inverse(z) -> x`. Models: `log_prob`, `encode`, `decode`,
`sample(n, temperature)`, `bits_per_dim`, `initialize`; trained by `model.fit(x)` on data in [0, 1].
"""

from kgen.flows import layers  # noqa: F401
from kgen.flows.glow import Glow  # noqa: F401
from kgen.flows.model import Flow  # noqa: F401
from kgen.flows.nice import NICE  # noqa: F401
from kgen.flows.realnvp import RealNVP  # noqa: F401
