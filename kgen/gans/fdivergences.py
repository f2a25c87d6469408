"""The f-divergence table of f-GAN, with Su's output activations and stable composites.

Su Jianlin, "f-GAN简介：GAN模型的生产车间" (kexue.fm/archives/6016); Nowozin, Cseke & Tomioka, "f-GAN: Training
Generative Neural Samplers using Variational Divergence Minimization" (NeurIPS 2016, arXiv 1606.00709).

    D_f(P‖Q) = ∫ q(x) f(p(x)/q(x)) dx = max_T  E_{x~p}[T(x)] − E_{x~q}[f*(T(x))],   T*(x) = f'(p(x)/q(x)).

Notation: Su writes the convex conjugate as g(t), the paper as f*(t); here it is `conjugate(t)`. The critic
is T(x) = activation(V(x)) with V unconstrained (the paper's g_f, Su's "激活函数"), so that T stays in f'(D),
the domain of f*. `composite(v)` is f*(activation(v)) simplified by hand: the form to use in losses (no
log(0), no exp overflow where the plain composition would have one).

Naming. Rows are named by f(u) (`"u*log(u)"`, `"(u-1)^2"`, ...), because the two sources disagree on
labels: Su calls f = (1−u)²/u "Pearson χ²" and f = (u−1)² "Neyman χ²"; the paper (and statistics, where
Pearson's χ²(P‖Q) = ∫(p−q)²/q) swaps them. The aliases `"pearson"` / `"neyman"` follow the paper;
`"pearson_su"` / `"neyman_su"` follow Su. Su's JS is the usual ½-scaled one, half the paper's f-row;
`"gan"` is the paper's GAN row, D_GAN = ∫p log(p/(p+q)) + q log(q/(p+q)) = 2·JS(Su) − log 4, which with
D = sigmoid(v) is the original GAN (its f(1) = −log 4: not a divergence, but the same minimiser).

Activations follow Su where he differs from the paper: e^v − 2 for (u−1)² (range (−2, ∞), exact for u ≥ 0;
the paper uses v), −e^v for reverse KL and 1 − e^v for Hellinger (the paper flips the sign of v).

The table only: `kgen.gans.estimation` trains a critic on the bound (`estimate_fdivergence`).

Jeffrey's conjugate needs the Lambert W function, W(e^{1−t}); it is computed by Newton's method on
w + log w = 1 − t in log space (stable where e^{1−t} would overflow). It is exact to float32 but costs
twelve Newton steps per evaluation, and its estimates train poorly in toy runs: no gate covers it.
"""

import math

import keras
from keras import ops

from kgen._checks import check_choice
from kgen._deprecation import warn_deprecated

_LOG2 = math.log(2.0)


def _log_lambert_w_exp(s, iterations=12):
    """y = log W(e^s), i.e. the root of e^y + y = s, by Newton's method (monotone convergence, any real s)."""
    y = ops.where(s > 1.0, ops.log(ops.maximum(s, 1.0)), s)  # W(e^s) ~ s for large s, ~ e^s for small s
    for _ in range(iterations):
        e = ops.exp(y)
        y = y - (e + y - s) / (e + 1.0)
    return y


class FDivergence:
    """One row of the f-GAN table: f, its conjugate, the critic's activation, and their stable composite.

    All methods take and return tensors (or anything `keras.ops` accepts) elementwise.

    Args:
        name: canonical name, the formula of f(u).
        aliases: other accepted names.
        description: the divergence as an integral, in words.

    Example:
        >>> import kgen
        >>> kl = kgen.gans.fdivergence("kl")
        >>> kl.conjugate(kl.derivative(2.0))  # f*(f'(u)) = u f'(u) − f(u) = 2.0 at u = 2
    """

    def __init__(self, name, aliases, description, f, derivative, conjugate, activation, composite, t_range):
        self.name = name
        self.aliases = tuple(aliases)
        self.description = description
        self._f, self._derivative, self._conjugate = f, derivative, conjugate
        self._activation, self._composite = activation, composite
        self.t_range = t_range  # f'(D): open interval (low, high) the critic T must stay in

    def f(self, u):
        """The generator f(u), convex with f(1) = 0, for u = p/q > 0."""
        return self._f(ops.convert_to_tensor(u, dtype=keras.config.floatx()))

    def derivative(self, u):
        """f'(u): the optimal critic is T*(x) = f'(p(x)/q(x))."""
        return self._derivative(ops.convert_to_tensor(u, dtype=keras.config.floatx()))

    def conjugate(self, t):
        """f*(t) = sup_u {t·u − f(u)} (Su's g(t)), for t inside `t_range`."""
        return self._conjugate(ops.convert_to_tensor(t, dtype=keras.config.floatx()))

    def activation(self, v):
        """T = activation(v): maps the critic's raw output v ∈ R into `t_range`."""
        return self._activation(ops.convert_to_tensor(v, dtype=keras.config.floatx()))

    def composite(self, v):
        """f*(activation(v)), simplified for stability."""
        return self._composite(ops.convert_to_tensor(v, dtype=keras.config.floatx()))

    def bound(self, v_p, v_q):
        """The variational lower bound mean activation(v_p) − mean f*(activation(v_q)) (v_p on P, v_q on Q)."""
        return ops.mean(self.activation(v_p)) - ops.mean(self.composite(v_q))

    def __repr__(self):
        return f"FDivergence({self.name!r}, aliases={self.aliases})"


def _jeffrey_conjugate(t):
    y = _log_lambert_w_exp(1.0 - t)  # y = log w, w = W(e^{1−t})
    return ops.exp(y) + ops.exp(-y) + t - 2.0


_ROWS = [
    FDivergence(
        "|u-1|/2", ("tv", "total_variation"), "total variation ½∫|p−q|",
        f=lambda u: 0.5 * ops.abs(u - 1.0),
        derivative=lambda u: 0.5 * ops.sign(u - 1.0),
        conjugate=lambda t: t,
        activation=lambda v: 0.5 * ops.tanh(v),
        composite=lambda v: 0.5 * ops.tanh(v),
        t_range=(-0.5, 0.5)),
    FDivergence(
        "u*log(u)", ("kl",), "Kullback–Leibler ∫p log(p/q)",
        f=lambda u: u * ops.log(u),
        derivative=lambda u: 1.0 + ops.log(u),
        conjugate=lambda t: ops.exp(t - 1.0),
        activation=lambda v: v,
        composite=lambda v: ops.exp(v - 1.0),
        t_range=(-math.inf, math.inf)),
    FDivergence(
        "-log(u)", ("reverse_kl",), "reverse Kullback–Leibler ∫q log(q/p)",
        f=lambda u: -ops.log(u),
        derivative=lambda u: -1.0 / u,
        conjugate=lambda t: -1.0 - ops.log(-t),
        activation=lambda v: -ops.exp(v),
        composite=lambda v: -1.0 - v,
        t_range=(-math.inf, 0.0)),
    FDivergence(
        "(u-1)^2", ("pearson", "neyman_su"), "∫(p−q)²/q: Pearson χ² in the paper, Neyman χ² in Su",
        f=lambda u: ops.square(u - 1.0),
        derivative=lambda u: 2.0 * (u - 1.0),
        conjugate=lambda t: 0.25 * ops.square(t) + t,
        activation=lambda v: ops.exp(v) - 2.0,
        composite=lambda v: 0.25 * ops.exp(2.0 * v) - 1.0,
        t_range=(-2.0, math.inf)),
    FDivergence(
        "(1-u)^2/u", ("neyman", "pearson_su"), "∫(q−p)²/p: Neyman χ² in the paper, Pearson χ² in Su",
        f=lambda u: ops.square(1.0 - u) / u,
        derivative=lambda u: 1.0 - 1.0 / ops.square(u),
        conjugate=lambda t: 2.0 - 2.0 * ops.sqrt(1.0 - t),
        activation=lambda v: 1.0 - ops.exp(v),
        composite=lambda v: 2.0 - 2.0 * ops.exp(0.5 * v),
        t_range=(-math.inf, 1.0)),
    FDivergence(
        "(sqrt(u)-1)^2", ("hellinger",), "squared Hellinger ∫(√p−√q)²",
        f=lambda u: ops.square(ops.sqrt(u) - 1.0),
        derivative=lambda u: 1.0 - 1.0 / ops.sqrt(u),
        conjugate=lambda t: t / (1.0 - t),
        activation=lambda v: 1.0 - ops.exp(v),
        composite=lambda v: ops.exp(-v) - 1.0,
        t_range=(-math.inf, 1.0)),
    FDivergence(
        "(u-1)*log(u)", ("jeffrey",), "Jeffrey ∫(p−q) log(p/q)",
        f=lambda u: (u - 1.0) * ops.log(u),
        derivative=lambda u: ops.log(u) + 1.0 - 1.0 / u,
        conjugate=_jeffrey_conjugate,
        activation=lambda v: v,
        composite=_jeffrey_conjugate,
        t_range=(-math.inf, math.inf)),
    FDivergence(
        "u/2*log(u)-(u+1)/2*log((u+1)/2)", ("js", "jensen_shannon"),
        "Jensen–Shannon ½∫p log(2p/(p+q)) + q log(2q/(p+q)) (Su; half the paper's)",
        f=lambda u: 0.5 * u * ops.log(u) - 0.5 * (u + 1.0) * ops.log(0.5 * (u + 1.0)),
        derivative=lambda u: 0.5 * ops.log(2.0 * u / (1.0 + u)),
        conjugate=lambda t: -0.5 * ops.log(2.0 - ops.exp(2.0 * t)),
        activation=lambda v: 0.5 * _LOG2 - 0.5 * ops.softplus(-v),
        composite=lambda v: -0.5 * _LOG2 + 0.5 * ops.softplus(v),
        t_range=(-math.inf, 0.5 * _LOG2)),
    FDivergence(
        "u*log(u)-(u+1)*log(u+1)", ("gan",), "the original GAN's ∫p log(2p/(p+q)) + q log(2q/(p+q)) − log 4",
        f=lambda u: u * ops.log(u) - (u + 1.0) * ops.log(u + 1.0),
        derivative=lambda u: ops.log(u / (1.0 + u)),
        conjugate=lambda t: -ops.log(1.0 - ops.exp(t)),
        activation=lambda v: -ops.softplus(-v),  # log sigmoid(v)
        composite=lambda v: ops.softplus(v),
        t_range=(-math.inf, 0.0)),
]

FDIVERGENCES = {row.name: row for row in _ROWS}
"""Canonical name (the formula of f) → FDivergence."""

_BY_NAME = {name: row for row in _ROWS for name in (row.name,) + row.aliases}
FDIVERGENCE_NAMES = tuple(_BY_NAME)
"""Every accepted name: canonical formulas, then aliases."""


def fdivergence(name):
    """The f-GAN table row called `name` (a formula of f(u) or an alias such as "kl", "js", "hellinger").

    Raises:
        ValueError: unknown name; the message lists every valid one.

    Example:
        >>> import kgen
        >>> js = kgen.gans.fdivergence("js")
        >>> js.composite(0.0)  # f*(activation(0)) = −½ log 2 + ½ log 2 = 0
    """
    check_choice("name", name, FDIVERGENCE_NAMES)
    return _BY_NAME[name]


def __getattr__(name):
    # Deprecated paths: the variational estimator moved to kgen.gans.estimation (this module is the math table).
    if name in ("VariationalCritic", "estimate_fdivergence"):
        from kgen.gans import estimation  # only on the deprecated path: estimation imports this module

        warn_deprecated(f"kgen.gans.fdivergences.{name}", f"kgen.gans.estimation.{name} (also kgen.gans.{name})")
        return getattr(estimation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
