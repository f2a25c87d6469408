"""`InvertibleConv1x1`: Glow's learned channel mixing, z = x·W at every pixel, full or LU-parameterised.

Glow (Kingma & Dhariwal 2018, §3.2) generalises the fixed channel permutations of NICE/RealNVP to a learned
invertible C×C matrix W, applied as a 1×1 convolution. Su (article 5807) reads it as what it is: one dense
layer h = x·W with weights shared over the pixels (so it works on vectors too), initialised as a random
orthogonal matrix. Row-vector convention throughout: z[..., j] = Σ_i x[..., i] W[i, j].

    log|det ∂z/∂x| = H·W · log|det W|                           (1 for vectors instead of H·W)

Two parameterisations:
- `lu=False` (the branch openai/glow actually runs): W trained directly; log|det W| by `slogdet`, inverse
  by `inv`. O(C³) per step, fine for the channel counts of small models.
- `lu=True` (Glow §3.2, "LU decomposition"; Su's `InvDense`): W = P·L·(U + diag(sign·exp(log_s))) with P a
  fixed permutation, L unit lower-triangular, U strictly upper-triangular, the signs of diag U fixed and
  log_s = log|diag U| trained. Then log|det W| = Σ log_s, O(C).

The LU factorisation of the initial W runs once, in NumPy/SciPy, when the layer is built: in-graph
`keras.ops.lu_factor` returns pivots in a backend-dependent format (LAPACK ipiv on JAX, a permutation on TF),
and P is kept as a non-trainable weight so it is saved with the model. Masks are NumPy constants turned into
tensors inside `call`: backend tensors made in `build` break JAX tracing.
"""

import keras
import numpy as np
import scipy.linalg
from keras import ops

from kgen._checks import check_int
from kgen.backend import static_shape
from kgen.flows.layers.base import FlowLayer, sum_except_batch


def random_orthogonal(size, seed):
    """A random orthogonal `size`×`size` float64 matrix (QR of a Gaussian matrix; openai/glow's init)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(size, size)))
    return q


def triangular_inverse(matrix, lower):
    """Inverse of a triangular C×C matrix by substitution, one row per step, with matmuls only.

    The same arithmetic as LAPACK's trtri, unrolled over the static C. It keeps LAPACK calls out of the
    graph: a JAX model exported to a SavedModel (jax2tf) cannot run `inv`/`solve`, whose LAPACK custom
    calls TensorFlow's runtime does not register.
    """
    size = static_shape(matrix)[-1]  # plain ints inside a torch trace too (kgen.backend.call_network)
    eye = ops.eye(size, dtype=matrix.dtype)
    rows = [None] * size
    order = range(size) if lower else range(size - 1, -1, -1)
    for i in order:
        known = list(range(i)) if lower else list(range(i + 1, size))
        row = eye[i]
        if known:
            coefficients = ops.take(matrix[i], known)
            row = row - ops.matmul(coefficients[None, :], ops.stack([rows[j] for j in known]))[0]
        rows[i] = row / matrix[i, i]
    return ops.stack(rows)


def _constant(value):
    # An initializer that writes a NumPy array; the array never becomes a tensor outside the variable.
    return lambda shape, dtype=None: np.asarray(value, dtype=dtype or "float32").reshape(shape)


@keras.saving.register_keras_serializable(package="kgen")
class InvertibleConv1x1(FlowLayer):
    """Invertible 1×1 convolution z = x·W on the last axis (Glow §3.2; Su 5807).

    Args:
        lu: True for the LU parameterisation (log-det O(C)), False for a full trainable W (slogdet).
        seed: non-negative int; W starts as the random orthogonal matrix drawn from
            `numpy.random.default_rng(seed)`. Give each layer of a model its own seed.

    Shapes: `x` is `(batch, C)` or `(batch, H, W, C)`; `z` has the shape of `x`; `logdet` is `(batch,)`.

    Example:
        >>> layer = InvertibleConv1x1(lu=True, seed=3)
        >>> x = keras.random.normal((2, 4, 4, 6), seed=0)
        >>> z, logdet = layer(x)              # logdet = 16·Σ log_s (0 at init: W is orthogonal)
        >>> x_back = layer.inverse(z)
    """

    def __init__(self, lu=True, seed=0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(lu, (bool, np.bool_)):
            raise TypeError(f"`lu` must be a bool, got {lu!r} ({type(lu).__name__})")
        self.lu = bool(lu)
        self.seed = check_int("seed", seed, 0)

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"`x` must be (batch, ..., channels) with a known channel count, got {input_shape}")
        channels = int(input_shape[-1])
        w0 = random_orthogonal(channels, self.seed)
        if not self.lu:
            self.kernel = self.add_weight(name="kernel", shape=(channels, channels), initializer=_constant(w0))
            return
        p, lower, upper = scipy.linalg.lu(w0)  # w0 = p @ lower @ upper
        diag = np.diag(upper)
        self.permutation = self.add_weight(name="permutation", shape=(channels, channels),
                                           initializer=_constant(p), trainable=False)
        self.sign_s = self.add_weight(name="sign_s", shape=(channels,), initializer=_constant(np.sign(diag)),
                                      trainable=False)
        self.lower = self.add_weight(name="lower", shape=(channels, channels), initializer=_constant(lower))
        self.upper = self.add_weight(name="upper", shape=(channels, channels),
                                     initializer=_constant(np.triu(upper, 1)))
        self.log_s = self.add_weight(name="log_s", shape=(channels,), initializer=_constant(np.log(np.abs(diag))))

    def lu_factors(self):
        """(P, L, U) with W = P·L·U: L unit lower-triangular, U upper-triangular (diag = sign·exp(log_s))."""
        if not self.lu:
            raise ValueError("`lu_factors` needs a layer built with `lu=True`")
        channels = int(self.log_s.shape[0])
        dtype = self.lower.dtype
        # Only the strict triangles of the trained matrices are used; the rest is ignored, not constrained.
        mask_lower = ops.convert_to_tensor(np.tril(np.ones((channels, channels)), -1), dtype=dtype)
        eye = ops.convert_to_tensor(np.eye(channels), dtype=dtype)
        lower = self.lower * mask_lower + eye
        # eye·d rather than ops.diag(d): torch's ONNX exporter has no aten::diag.
        upper = self.upper * ops.transpose(mask_lower) + eye * (self.sign_s * ops.exp(self.log_s))[None, :]
        return ops.convert_to_tensor(self.permutation), lower, upper

    def matrix(self):
        """W, shape (C, C): z = x·W."""
        if not self.lu:
            return ops.convert_to_tensor(self.kernel)
        p, lower, upper = self.lu_factors()
        return ops.matmul(p, ops.matmul(lower, upper))

    def log_abs_det(self):
        """log|det W| (a scalar): Σ log_s for the LU form, slogdet otherwise."""
        if self.lu:
            return ops.sum(self.log_s)
        return ops.slogdet(self.kernel)[1]

    def call(self, x, training=None):
        z = ops.matmul(x, ops.cast(self.matrix(), x.dtype))
        pixels = sum_except_batch(ops.ones_like(x[..., :1]))
        return z, pixels * ops.cast(self.log_abs_det(), x.dtype)

    def inverse(self, z):
        if self.lu:
            # W⁻¹ = U⁻¹·L⁻¹·Pᵀ: two well-conditioned triangular inverses instead of inverting the product.
            p, lower, upper = self.lu_factors()
            w_inv = ops.matmul(triangular_inverse(upper, lower=False),
                               ops.matmul(triangular_inverse(lower, lower=True), ops.transpose(p)))
        else:
            w_inv = ops.inv(self.kernel)
        return ops.matmul(z, ops.cast(w_inv, z.dtype))

    def get_config(self):
        return {**super().get_config(), "lu": self.lu, "seed": self.seed}
