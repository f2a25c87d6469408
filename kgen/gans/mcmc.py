"""Latent Langevin and MALA sampling on E(z) = U(G(z)) + ½‖z‖², compiled for every backend.

Su Jianlin, "能量视角下的GAN模型（二）：GAN＝“分析”＋“采样”" (kexue.fm/archives/6331); MEG (Kumar et al., arXiv
1901.08508, code ritheshkumar95/energy_based_generative_models, sampler.py); DDLS (Che et al., arXiv 2003.06060)
for the latent energy with the prior included.

Su samples z rather than x, with "energy" U(G(z)), as a better truncation trick: only z is filtered. The chain
here targets p(z) ∝ N(z; 0, I)·e^{−U(G(z))}, i.e. the latent energy

    E(z) = U(G(z)) + ½‖z‖².

Langevin (ULA), Su's step:      z' = z − ½ε ∇E(z) + √ε ξ,   ξ ~ N(0, I).
MALA: the same proposal, accepted with probability min{1, e^{−E(z')} q(z|z') / (e^{−E(z)} q(z'|z))},
    log q(z'|z) = −‖z' − z + ½ε ∇E(z)‖² / (2ε).

Corrections to the sources (say so wherever this is cited):
  * Su's article prints the acceptance ratio's denominator as q(z̃_t) where q(z_t) is meant, and the proposal
    density as exp(−‖z' − z + ε∇U‖²/(2ε)); with the ½ε step it must be exp(−‖z' − z + ½ε∇U‖²/(2ε)).
  * MEG's `MALA_sampler` accepts with min(1, e^{E(z) − E(z')}) only (no proposal correction), and neither of its
    samplers includes the N(0, I) prior term; its `MALA_corrected_sampler` uses the norm, not the squared norm,
    in log q. Here: prior included, squared norm, full Metropolis–Hastings correction.
  * Sampling z with U(G(z)) is only exact when G's Jacobian determinant is constant (Su, MEG issue #4); it is a
    heuristic for filtering latents, not an exact sampler of e^{−U(x)}.

Compiled with `kgen.backend.compile_function` (jax.jit / tf.function / eager torch). The gradient ∇E is taken
inside the loop body by `kgen.backend.input_gradient`: jax.grad inside jit + fori_loop, a nested GradientTape
inside tf.while_loop in a tf.function, torch.autograd.grad with grad re-enabled under no_grad. The networks run
with training=False, so the loop body updates no state (a BatchNorm/seed update inside a JAX loop body could
not be carried out). Noise is drawn before the loop from the sampler's SeedGenerator, as JAX requires.
"""

import keras
from keras import ops

from kgen import backend as kb
from kgen._checks import check_choice, check_int, check_positive_float
from kgen._deprecation import deprecated_state, warn_deprecated

METHODS = ("mala", "langevin")


def latent_energy(generator, energy):
    """E(z) = U(G(z)) + ½‖z‖² per example, as a function of z (batch, ...) -> (batch,)."""

    def fn(z):
        batch = ops.shape(z)[0]
        prior = 0.5 * ops.sum(ops.square(ops.reshape(z, (batch, -1))), axis=-1)
        return ops.reshape(energy(generator(z)), (batch,)) + prior

    return fn


def _sq_norm(t):
    return ops.sum(ops.square(ops.reshape(t, (ops.shape(t)[0], -1))), axis=-1)


class LatentMCMC:
    """MALA (default) or unadjusted Langevin on E(z) = U(G(z)) + ½‖z‖².

    A Markov chain in latent space (not a `kgen.diffusion` or `kgen.text` sampler): `run(z0)` moves given
    latents, `sample(n)` starts n chains at z ~ N(0, I).

    Args:
        generator: z -> x (a keras.Model, or any callable of keras.ops; `lambda z: z` samples U itself + prior).
        energy: x -> U(x), shape (batch,), low on data: `EnergyGAN.energy`, or `GAN.energy` (= −D).
        method: "mala" or "langevin".
        step_size: ε of z' = z − ½ε∇E + √ε ξ.
        steps: number of steps per `run`.
        seed: seed of the sampler's SeedGenerator.
        state: deprecated: the Keras state `generator` and `energy` read is found from them
            (`kgen.backend.state_of`: a Layer/Model, a bound method, partial or closure of one).
        jit_compile: passed to `kgen.backend.compile_function`.

    Example:
        >>> import keras
        >>> import kgen
        >>> from kgen.gans.mcmc import LatentMCMC
        >>> from kgen.gans.networks import mlp
        >>> gan = kgen.gans.GAN(mlp(2, 2), mlp(2, 1), value_range=None)
        >>> gan.compile(optimizers={"generator": keras.optimizers.Adam(1e-3, 0.5, 0.9),
        ...                         "discriminator": keras.optimizers.Adam(1e-3, 0.5, 0.9)})
        >>> gan.fit(kgen.datasets.toy2d("ring8", 25600), batch_size=256, epochs=1, verbose=0)
        >>> chain = LatentMCMC(gan.generator, gan.energy, step_size=0.01, steps=50)   # U = −D
        >>> x, z, acceptance = chain.sample(1000)   # x = G(z) after 50 MALA steps; acceptance ≈ 0.85 on the 8-ring
    """

    def __init__(self, generator, energy, method="mala", step_size=0.01, steps=50, seed=0, state=None,
                 jit_compile="auto"):
        if not callable(generator) or not callable(energy):
            raise TypeError("`generator` and `energy` must be callables (keras.Model or functions of keras.ops)")
        self.method = check_choice("method", method, METHODS)
        self.step_size = check_positive_float("step_size", step_size)
        self.steps = check_int("steps", steps, 1)
        self.generator, self.energy = generator, energy
        self.latent_energy = latent_energy(generator, energy)
        self.seed_generator = kb.SeedGenerator(check_int("seed", seed, 0))
        self.acceptance_rate = None
        state = (deprecated_state(state, "LatentMCMC") + kb.state_of(generator) + kb.state_of(energy)
                 + [self.seed_generator])
        self._run = kb.compile_function(self._chain, state=state, jit_compile=jit_compile)

    def _energy_and_gradient(self, z):
        return self.latent_energy(z), ops.stop_gradient(kb.input_gradient(self.latent_energy, z))

    def _chain(self, z0, step_size, steps, method):
        batch = ops.shape(z0)[0]
        # ops.shape, not z0.shape: tf.function (reduce_retracing) leaves the batch size unknown when tracing.
        noise = keras.random.normal((steps,) + tuple(ops.shape(z0)), dtype=z0.dtype, seed=self.seed_generator)
        uniform = keras.random.uniform((steps, batch), dtype=z0.dtype, seed=self.seed_generator)
        energy0, grad0 = self._energy_and_gradient(z0)

        def body(i, carry):
            z, energy, grad, accepted = carry
            proposal = z - 0.5 * step_size * grad + ops.sqrt(step_size) * noise[i]
            if method == "langevin":
                new_energy, new_grad = self._energy_and_gradient(proposal)
                return proposal, new_energy, new_grad, accepted + ops.cast(batch, z.dtype)
            new_energy, new_grad = self._energy_and_gradient(proposal)
            log_forward = -_sq_norm(proposal - z + 0.5 * step_size * grad) / (2.0 * step_size)
            log_backward = -_sq_norm(z - proposal + 0.5 * step_size * new_grad) / (2.0 * step_size)
            log_alpha = energy - new_energy + log_backward - log_forward
            accept = ops.log(uniform[i]) < log_alpha
            mask = ops.reshape(accept, (batch,) + (1,) * (len(z.shape) - 1))
            return (ops.where(mask, proposal, z), ops.where(accept, new_energy, energy),
                    ops.where(mask, new_grad, grad), accepted + ops.sum(ops.cast(accept, z.dtype)))

        carry = (z0, energy0, grad0, ops.zeros((), dtype=z0.dtype))
        z, _, _, accepted = ops.fori_loop(0, steps, body, carry)
        return z, accepted / ops.cast(steps * batch, z0.dtype)

    def run(self, z0, *, seed=None):
        """Run the chain from `z0` (batch, ...); returns `(z, acceptance_rate)` (rate a float, 1.0 for Langevin).

        `seed`: None draws the proposals and acceptances from the chain's SeedGenerator (every run differs); an int
        gives the same chain on every call and leaves that generator's state as it was.
        """
        z0 = ops.convert_to_tensor(z0, dtype=keras.config.floatx())
        step_size = ops.convert_to_tensor(self.step_size, dtype=z0.dtype)
        if seed is None:
            z, rate = self._run(z0, step_size, steps=self.steps, method=self.method)
        else:
            # The compiled chain reads self.seed_generator (its state is threaded through the loop): run it from
            # the state of SeedGenerator(seed), then put the chain's own state back.
            saved = ops.copy(self.seed_generator.state.value)
            self.seed_generator.state.assign(kb.SeedGenerator(check_int("seed", seed, 0)).state.value)
            try:
                z, rate = self._run(z0, step_size, steps=self.steps, method=self.method)
            finally:
                self.seed_generator.state.assign(saved)
        self.acceptance_rate = float(ops.convert_to_numpy(rate))
        return z, self.acceptance_rate

    def sample(self, n, latent_shape=None, *, seed=None):
        """Start `n` chains at z ~ N(0, I) and run them; returns `(G(z), z, acceptance_rate)`.

        `latent_shape` defaults to the generator's input shape (a keras.Model built from keras.Input). `seed`: None
        uses the chain's SeedGenerator (every call differs); an int gives the same start and chain on every call
        and leaves that generator untouched (the protocol of `kgen.base`).
        """
        if latent_shape is None:
            inputs = getattr(self.generator, "inputs", None)
            if not inputs:
                raise ValueError("`latent_shape` is needed: the generator is not a keras.Model built from keras.Input")
            latent_shape = tuple(inputs[0].shape[1:])
        n = check_int("n", n, 1)
        start = None if seed is None else kb.SeedGenerator(check_int("seed", seed, 0))
        z0 = keras.random.normal((n,) + tuple(latent_shape), seed=start or self.seed_generator)
        z, rate = self.run(z0, seed=None if seed is None else seed + 1)
        if isinstance(self.generator, keras.layers.Layer):
            return self.generator(z, training=False), z, rate
        return self.generator(z), z, rate


class LatentSampler(LatentMCMC):
    """Deprecated name of `LatentMCMC` (it clashed with the diffusion and text samplers)."""

    def __init__(self, *args, **kwargs):
        warn_deprecated("kgen.gans.mcmc.LatentSampler", "kgen.gans.mcmc.LatentMCMC (same arguments)")
        super().__init__(*args, **kwargs)
