"""Spectral normalization as a reparameterisation, W_SN = W / σ(W), the same in training and inference.

Miyato, Kataoka, Koyama & Yoshida (2018), "Spectral Normalization for Generative Adversarial Networks"
(ICLR); Su, "深度学习中的Lipschitz约束：泛化与生成模型" (kexue.fm/archives/6051) and "从DCGAN到SELF-MOD"
(kexue.fm/archives/6549).

Notation. The wrapped layer's kernel is reshaped to a matrix M of shape (K, C): C = the kernel's last axis
(output units of Dense / Conv2D, input channels of Conv2DTranspose, embedding size of Embedding), K = the
product of the other axes. Keras maps row vectors, x ↦ x M, so M is the transpose of the paper's W; both have
the same singular values. The stored vector u ∈ R^C is the estimate of M's top right singular vector
(the paper's v; its u is our M û / ‖M û‖).

    training:   u ← normalize(Mᵀ normalize(M u))   (`power_iterations` times; u is then stored)
    both modes: σ̂ = ‖M û‖, û = stop_gradient(u / ‖u‖);  the layer runs with the kernel M / σ̂

σ̂ = ‖M û‖ ≤ σ_max(M) for any unit û, so σ_max(M / σ̂) ≥ 1, approaching 1 as u converges; its gradient with
respect to M is v ûᵀ with v = M û / ‖M û‖, the paper's u vᵀ. Like the paper (and compare_gan), u is persistent
across steps with one iteration per step; in addition, `build` starts u at the top singular vector of the
initial kernel (20 iterations), so a fresh layer is already normalized in inference.

Why not `keras.layers.SpectralNormalization`: it assigns W/σ to the kernel variable in training only. On JAX,
`fit` discards assignments to trainable variables made inside the step, so the stored kernel is never
normalized and inference outputs differ from training outputs by σ(W) (×8.7 measured, see
tests/gans/test_layers.py); on TF/torch it trains the projected kernel without the Jacobian of σ.
"""

import keras
import numpy as np
from keras import ops

from kgen._checks import check_int

_INIT_ITERATIONS = 20
_KERNEL_NAMES = ("kernel", "embeddings")


def _normalize(x, epsilon):
    return x / ops.sqrt(ops.sum(ops.square(x)) + epsilon)


def power_iteration(matrix, u, iterations, epsilon=1e-12):
    """`iterations` steps of u ← normalize(Mᵀ normalize(M u)) for a (K, C) matrix and u of shape (C,)."""
    for _ in range(iterations):
        v = _normalize(ops.matmul(matrix, u), epsilon)
        u = _normalize(ops.matmul(ops.transpose(matrix), v), epsilon)
    return u


@keras.saving.register_keras_serializable(package="kgen")
class SpectralNormalization(keras.layers.Wrapper):
    """Wrap a Dense, Conv or Embedding layer so that it runs with its kernel divided by its spectral norm.

    The wrapped layer's own variables (kernel, bias) stay the trainable parameters; the normalized kernel
    W/σ̂(W) is computed in `call` in both modes, so `training=True` and `training=False` give the same
    output for the same weights, on every backend and inside `fit`. The vector `u` is a non-trainable
    weight, updated only when `training=True`.

    Args:
        layer: a Keras layer with a `kernel` (Dense, Conv1D/2D/3D, Conv2DTranspose, ...) or `embeddings`
            (Embedding) weight, created by its `build`. The layer should keep no state of its own
            (no non-trainable weights): it is called with the normalized kernel substituted.
        power_iterations: power-iteration steps per training call (the paper: 1).
        epsilon: added under the square roots of the normalizations.

    Example:
        >>> import keras
        >>> import numpy as np
        >>> from kgen.gans.layers import SpectralNormalization
        >>> sn = SpectralNormalization(keras.layers.Dense(8))
        >>> y = sn(keras.random.normal((4, 16)), training=True)
        >>> sigma = np.linalg.svd(keras.ops.convert_to_numpy(sn.normalized_kernel()), compute_uv=False)[0]
        >>> bool(1.0 <= sigma < 1.01)
        True
    """

    def __init__(self, layer, power_iterations=1, epsilon=1e-12, **kwargs):
        super().__init__(layer, **kwargs)
        self.power_iterations = check_int("power_iterations", power_iterations, 1)
        if not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise ValueError(f"`epsilon` must be a number > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        super().build(input_shape)
        kernel = self._kernel_variable()
        if len(self.layer.non_trainable_weights):
            raise ValueError(
                f"`layer` must keep no non-trainable state, got {type(self.layer).__name__} with "
                f"{[w.path for w in self.layer.non_trainable_weights]}"
            )
        self.u = self.add_weight(
            name="u",
            shape=(kernel.shape[-1],),
            initializer=keras.initializers.RandomNormal(0.0, 1.0),
            trainable=False,
        )
        # Start u at the top singular vector of the initial kernel (in NumPy: no per-shape compilation on JAX).
        self.u.assign(self.converged_vector(kernel, _INIT_ITERATIONS))

    def _kernel_variable(self):
        for name in _KERNEL_NAMES:
            variable = getattr(self.layer, name, None)
            if isinstance(variable, keras.Variable):
                return variable
        raise ValueError(
            f"`layer` must have a `kernel` or `embeddings` weight after build; "
            f"{type(self.layer).__name__} has neither"
        )

    @property
    def kernel_variable(self):
        """The wrapped layer's kernel (or embeddings) variable: the weight this layer normalises."""
        return self._kernel_variable()

    def converged_vector(self, kernel, iterations=100):
        """u for another value of the kernel (an average of it, say): `iterations` power iterations from the
        stored u, in float64 NumPy (eager, once: no per-shape compilation). What a network running with those
        weights should normalise with; `kgen.ema` keeps it for an averaged generator's inference."""
        iterations = check_int("iterations", iterations, 1)
        matrix = np.asarray(ops.convert_to_numpy(kernel), dtype=np.float64)
        if matrix.shape != tuple(self._kernel_variable().shape):
            raise ValueError(f"`kernel` must have the kernel's shape {tuple(self._kernel_variable().shape)}, "
                             f"got {matrix.shape}")
        matrix = matrix.reshape(-1, matrix.shape[-1])
        u = np.asarray(ops.convert_to_numpy(self.u), dtype=np.float64)
        for _ in range(iterations):
            u = matrix.T @ (matrix @ u)
            u /= max(np.linalg.norm(u), self.epsilon)
        return u.astype(self.u.dtype)

    @staticmethod
    def _matrix(kernel):
        return ops.reshape(kernel, (-1, kernel.shape[-1]))

    def _sigma(self, matrix, u):
        u_hat = ops.stop_gradient(_normalize(u, self.epsilon))
        return ops.sqrt(ops.sum(ops.square(ops.matmul(matrix, u_hat))) + self.epsilon)

    def normalized_kernel(self, training=False):
        """The kernel divided by σ̂, with the kernel's shape (updates u first when `training`)."""
        kernel = self._kernel_variable()
        matrix = self._matrix(kernel)
        u = self.u
        if training:
            u = ops.stop_gradient(power_iteration(matrix, u, self.power_iterations, self.epsilon))
            self.u.assign(u)
        return kernel / self._sigma(matrix, u)

    def call(self, inputs, training=False):
        kernel = self._kernel_variable()
        normalized = self.normalized_kernel(training=bool(training))
        # Run the wrapped layer with W/σ̂ in place of W, without assigning to W: a StatelessScope reads
        # mapped values. Nested scopes do not read through to an enclosing one (JAX `fit`), so every
        # variable of the layer is mapped, each to its current value.
        mapping = [(v, normalized if v is kernel else v.value) for v in self.layer.variables]
        with keras.StatelessScope(state_mapping=mapping):
            return self.layer(inputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"power_iterations": self.power_iterations, "epsilon": self.epsilon})
        return config
