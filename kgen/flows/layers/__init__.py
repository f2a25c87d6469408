"""Invertible layers of kgen.flows, one contract (base.py): `call(x) -> (z, logdet)`, `inverse(z) -> x`.

    AdditiveCoupling, AffineCoupling   coupling.py    NICE / RealNVP / Glow couplings, masks, Su's variant
    Permute                            permutation.py reverse or fixed random permutation
    Scale                              scale.py       NICE's diagonal scale layer
    ActNorm                            actnorm.py     Glow actnorm with data-dependent init
    InvertibleConv1x1                  invconv.py     Glow 1×1 conv, full or LU-parameterised
    Squeeze                            squeeze.py     space-to-channel (two channel orders)
    Split, TopPrior                    split.py       factor-out with a learned conditional prior; learned top prior
    Logit, Shift                       preprocessing.py  data in [0, 1] → model space, with log-det
    BatchNormFlow                      batchnorm.py   RealNVP batch normalisation
    Reshape                            reshape.py     flatten images for vector flows
"""

from kgen.flows.layers.actnorm import ActNorm  # noqa: F401
from kgen.flows.layers.base import FlowLayer  # noqa: F401
from kgen.flows.layers.batchnorm import BatchNormFlow  # noqa: F401
from kgen.flows.layers.coupling import AdditiveCoupling, AffineCoupling  # noqa: F401
from kgen.flows.layers.invconv import InvertibleConv1x1  # noqa: F401
from kgen.flows.layers.permutation import Permute  # noqa: F401
from kgen.flows.layers.preprocessing import Logit, Shift  # noqa: F401
from kgen.flows.layers.reshape import Reshape  # noqa: F401
from kgen.flows.layers.scale import Scale  # noqa: F401
from kgen.flows.layers.split import Split, TopPrior  # noqa: F401
from kgen.flows.layers.squeeze import Squeeze  # noqa: F401
