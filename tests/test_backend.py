"""kgen.backend: input gradients (with double backprop), two-optimizer training under fit, compiled loops."""

import os

import numpy as np
import pytest
import keras
from keras import ops

import kgen
from kgen import backend as kb


def _np(x):
    return ops.convert_to_numpy(x)


# ---------------------------------------------------------------- input_gradient

def test_input_gradient_of_quadratic_is_exact():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3)).astype("float32")
    a = a @ a.T
    x = rng.normal(size=(5, 3)).astype("float32")
    a_t = ops.convert_to_tensor(a)
    grad = kb.input_gradient(lambda t: 0.5 * ops.sum(ops.matmul(t, a_t) * t, axis=-1), ops.convert_to_tensor(x))
    np.testing.assert_allclose(_np(grad), x @ a, rtol=1e-5, atol=1e-5)


def test_input_gradient_matches_finite_differences_through_a_network():
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    x = np.random.default_rng(1).normal(size=(3, 4))
    fn = lambda t: ops.squeeze(net(t), -1)  # noqa: E731
    grad = _np(kb.input_gradient(fn, ops.convert_to_tensor(x, "float32")))
    eps, numeric = 1e-3, np.zeros_like(x)
    for j in range(4):
        step = np.zeros_like(x)
        step[:, j] = eps
        up = _np(fn(ops.convert_to_tensor(x + step, "float32")))
        down = _np(fn(ops.convert_to_tensor(x - step, "float32")))
        numeric[:, j] = (up - down) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=2e-2, atol=2e-3)


def test_input_gradient_is_differentiable_again():
    # f(x) = a·Σx², ∇ₓf = 2a x, penalty P = Σ‖∇ₓf‖² = 4a² Σx²  ⇒  dP/da = 8a Σx².
    a = keras.Variable(np.float32(0.7))
    x = ops.convert_to_tensor(np.random.default_rng(2).normal(size=(4, 3)).astype("float32"))

    def penalty():
        grad = kb.input_gradient(lambda t: a * ops.sum(t * t, axis=-1), x)
        return ops.sum(grad * grad)

    value, (grad_a,) = kb.gradients(penalty, [a])
    sum_sq = float(np.sum(_np(x) ** 2))
    np.testing.assert_allclose(float(_np(value)), 4 * 0.49 * sum_sq, rtol=1e-5)
    np.testing.assert_allclose(float(_np(grad_a)), 8 * 0.7 * sum_sq, rtol=1e-5)


def test_gradients_of_unused_variable_are_zero():
    used, unused = keras.Variable(np.ones(2, "float32")), keras.Variable(np.ones(3, "float32"))
    _, grads = kb.gradients(lambda: ops.sum(used * 3.0), [used, unused])
    np.testing.assert_allclose(_np(grads[0]), [3.0, 3.0])
    np.testing.assert_allclose(_np(grads[1]), np.zeros(3))


def test_jacobian_of_linear_map_is_its_matrix():
    w = np.random.default_rng(3).normal(size=(3, 2)).astype("float32")
    w_t = ops.convert_to_tensor(w)
    x = ops.convert_to_tensor(np.ones((2, 3), "float32"))
    jac = _np(kb.jacobian(lambda t: ops.matmul(t, w_t), x))
    assert jac.shape == (2, 2, 3)
    np.testing.assert_allclose(jac[0], w.T, rtol=1e-6)
    np.testing.assert_allclose(jac[1], w.T, rtol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="fn"):
        kb.input_gradient(3, np.zeros((1, 1)))
    with pytest.raises(TypeError, match="optimizer"):
        kb.minimize(lambda: 0.0, [], optimizer="adam")
    with pytest.raises(TypeError, match="state"):
        kb.compile_function(lambda x: x, state=["not a variable"])
    with pytest.raises(ValueError, match="jit_compile"):
        kb.compile_function(lambda x: x, jit_compile="xla")


# ---------------------------------------------------------------- two optimizers under fit

class ToyGAN(kb.AdversarialModel):
    """Non-saturating GAN on 2-D points: BatchNorm in G, a SeedGenerator for z, one optimizer per network."""

    log_names = ("d_loss", "g_loss")

    def __init__(self, latent_dim=2, penalty=0.0, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.penalty = penalty
        self.generator = keras.Sequential(
            [keras.Input((latent_dim,)), keras.layers.Dense(16, use_bias=False), keras.layers.BatchNormalization(),
             keras.layers.ReLU(), keras.layers.Dense(2)], name="generator")
        self.discriminator = keras.Sequential(
            [keras.Input((2,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)],
            name="discriminator")
        self.seed_generator = keras.random.SeedGenerator(7)

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def train_networks(self, x):
        batch = ops.shape(x)[0]

        def d_loss():
            z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
            fake = ops.stop_gradient(self.generator(z, training=True))
            loss = ops.mean(ops.softplus(-self.discriminator(x)) + ops.softplus(self.discriminator(fake)))
            if self.penalty:
                grad = kb.input_gradient(lambda t: ops.squeeze(self.discriminator(t), -1), x)
                loss = loss + self.penalty * ops.mean(ops.sum(grad * grad, axis=-1))
            return loss

        def g_loss():
            z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
            return ops.mean(ops.softplus(-self.discriminator(self.generator(z, training=True))))

        return {"d_loss": self.minimize(d_loss, "discriminator"), "g_loss": self.minimize(g_loss, "generator")}


def _fit_toy_gan(steps=6, penalty=0.0, **compile_kwargs):
    model = ToyGAN(penalty=penalty)
    d_opt, g_opt = keras.optimizers.Adam(1e-3), keras.optimizers.SGD(1e-2, momentum=0.5)
    model.compile(optimizers={"discriminator": d_opt, "generator": g_opt}, **compile_kwargs)
    x = np.random.default_rng(0).normal(size=(steps * 8, 2)).astype("float32")
    before = {
        "d": [_np(v).copy() for v in model.discriminator.trainable_variables],
        "g": [_np(v).copy() for v in model.generator.trainable_variables],
        "bn": _np(model.generator.layers[1].moving_mean).copy(),
        "seed": _np(model.seed_generator.state).copy(),
    }
    history = model.fit(x, batch_size=8, epochs=1, verbose=0, shuffle=False)
    return model, d_opt, g_opt, before, history


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_two_optimizers_both_advance_under_fit(penalty):
    model, d_opt, g_opt, before, history = _fit_toy_gan(steps=6, penalty=penalty)
    assert int(_np(d_opt.iterations)) == 6
    assert int(_np(g_opt.iterations)) == 6
    # Adam's moments live in the optimizer state that fit threads (JAX) — they must have moved.
    assert any(np.abs(_np(v)).sum() > 0 for v in d_opt.variables if "momentum" in v.path or "velocity" in v.path)
    for old, new in zip(before["d"], model.discriminator.trainable_variables):
        assert not np.allclose(old, _np(new))
    for old, new in zip(before["g"], model.generator.trainable_variables):
        assert not np.allclose(old, _np(new))
    assert not np.allclose(before["bn"], _np(model.generator.layers[1].moving_mean)), "BatchNorm stats not carried"
    assert not np.array_equal(before["seed"], _np(model.seed_generator.state)), "seed generator not carried"
    assert set(history.history) == {"d_loss", "g_loss"}
    assert all(np.isfinite(v[-1]) for v in history.history.values())


def test_each_optimizer_steps_only_its_network():
    model = ToyGAN()
    d_opt, g_opt = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1)
    model.compile(optimizers={"discriminator": d_opt, "generator": g_opt})
    g_before = [_np(v).copy() for v in model.generator.trainable_variables]
    x = ops.convert_to_tensor(np.ones((4, 2), "float32"))
    model.minimize(lambda: ops.mean(model.discriminator(x)), "discriminator")
    for old, new in zip(g_before, model.generator.trainable_variables):
        np.testing.assert_array_equal(old, _np(new))
    assert int(_np(d_opt.iterations)) == 1 and int(_np(g_opt.iterations)) == 0


def test_compile_rejects_variables_without_an_optimizer():
    model = ToyGAN()
    with pytest.raises(ValueError, match="no network"):
        model.compile(optimizers={"discriminator": keras.optimizers.Adam()})
    with pytest.raises(ValueError, match="optimizers"):
        model.compile(optimizers={"decoder": keras.optimizers.Adam(), "generator": keras.optimizers.Adam()})
    with pytest.raises(TypeError, match="optimizers"):
        model.compile(optimizers=None)


def test_minimize_step_equals_sgd_update():
    w = keras.Variable(np.array([1.0, -2.0], "float32"))
    opt = keras.optimizers.SGD(0.5)
    kb.minimize(lambda: ops.sum(w * w), [w], opt)  # w ← w − 0.5·2w = 0
    np.testing.assert_allclose(_np(w), [0.0, 0.0], atol=1e-7)


# ---------------------------------------------------------------- compiled loops

def _ar1_loop(seed_generator):
    def run(x0, a, steps):
        noise = keras.random.normal((steps,) + tuple(x0.shape), seed=seed_generator)
        body = lambda i, state: (a * state[0] + noise[i], state[1])  # noqa: E731
        x, _ = ops.fori_loop(0, steps, body, (x0, noise))
        return x, noise

    return run


@pytest.mark.parametrize("jit_compile", ["auto", True])
def test_compiled_loop_matches_numpy_recursion(jit_compile):
    seed = keras.random.SeedGenerator(3)
    run = kb.compile_function(_ar1_loop(seed), state=[seed], jit_compile=jit_compile)
    x0 = ops.convert_to_tensor(np.arange(4, dtype="float32"))
    x, noise = run(x0, ops.convert_to_tensor(0.9), steps=5)
    expected = np.arange(4, dtype="float32")
    for k in range(5):
        expected = 0.9 * expected + _np(noise)[k]
    np.testing.assert_allclose(_np(x), expected, rtol=1e-5, atol=1e-6)


def test_compiled_loop_draws_fresh_noise_each_call_and_reproduces_after_reseed():
    def draws():
        seed = keras.random.SeedGenerator(11)
        run = kb.compile_function(_ar1_loop(seed), state=[seed])
        x0 = ops.zeros((3,))
        return [_np(run(x0, ops.convert_to_tensor(0.5), steps=4)[1]) for _ in range(2)]

    first, second = draws()
    assert not np.allclose(first, second), "the seed generator did not advance between calls"
    again_first, again_second = draws()
    np.testing.assert_array_equal(first, again_first)
    np.testing.assert_array_equal(second, again_second)


def test_compiled_function_sees_updated_weights():
    layer = keras.layers.Dense(1, use_bias=False)
    layer.build((None, 1))
    run = kb.compile_function(lambda x: layer(x), state=[layer])
    x = ops.ones((1, 1))
    layer.kernel.assign(np.full((1, 1), 2.0, "float32"))
    np.testing.assert_allclose(_np(run(x)), [[2.0]])
    layer.kernel.assign(np.full((1, 1), 5.0, "float32"))
    np.testing.assert_allclose(_np(run(x)), [[5.0]])


# ---------------------------------------------------------------- XLA CPU options (JAX)

def _conv_loop():
    conv = keras.layers.Conv2D(8, 3, padding="same")
    conv.build((None, 12, 12, 8))
    rng = np.random.default_rng(0)
    conv.kernel.assign(rng.normal(0, 0.2, conv.kernel.shape).astype("float32"))
    x = ops.convert_to_tensor(rng.normal(size=(4, 12, 12, 8)).astype("float32"))
    return conv, x, (lambda x: ops.fori_loop(0, 5, lambda i, h: ops.tanh(conv(h)), x))


@pytest.mark.jax
def test_xla_cpu_options_are_used_and_do_not_change_results(monkeypatch):
    from kgen.backend import _jax

    monkeypatch.setenv("KGEN_XLA_CPU_OPTIONS", "kgen")  # forced: on one core they are off by default
    assert _jax.compiler_options() == _jax.CPU_COMPILER_OPTIONS  # this jaxlib accepts them, on CPU
    conv, x, loop = _conv_loop()
    tuned = _np(kb.compile_function(loop, state=[conv])(x))
    monkeypatch.setenv("KGEN_XLA_CPU_OPTIONS", "default")
    assert _jax.compiler_options() is None
    default = _np(kb.compile_function(loop, state=[conv])(x))
    np.testing.assert_allclose(tuned, default, rtol=1e-5, atol=1e-5)
    assert np.abs(default - _np(x)).max() > 0.1  # the loop does something
    # The options reach the compiler: an invalid value (bypassing the acceptance check) fails the compile.
    monkeypatch.setattr(_jax, "compiler_options", lambda: {"xla_cpu_experimental_ynn_fusion_type": "NOPE"})
    with pytest.raises(Exception, match="NOPE"):
        kb.compile_function(loop, state=[conv])(x)


@pytest.mark.jax
def test_xla_cpu_options_are_chosen_by_cpu_features_and_free_cores(monkeypatch, tmp_path):
    """On by default where they were measured faster: x86 with AVX2 (AVX-512 included) and two or more free cores
    (XLA's own convolutions use them all, YNNPACK's one); pinned to one core the defaults won (×0.85-0.97)."""
    from kgen.backend import _jax

    monkeypatch.delenv("KGEN_XLA_CPU_OPTIONS", raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert _jax._cpu_flags(str(cpuinfo)) >= {"avx2", "fma"}
    assert _jax._options_pay_off(_jax._cpu_flags(str(cpuinfo)), 2)
    assert _jax._options_pay_off(frozenset({"avx2", "avx512f", "avx512bw"}), 2)
    assert not _jax._options_pay_off(frozenset({"avx2", "avx512f", "avx512bw"}), 1)
    assert not _jax._options_pay_off(_jax._cpu_flags(str(cpuinfo)), 1)
    assert not _jax._options_pay_off(_jax._cpu_flags(str(tmp_path / "missing")), 8)  # unknown CPU: defaults
    monkeypatch.setattr(_jax, "_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    monkeypatch.setattr(_jax, "_usable_cores", lambda: 1)
    assert _jax.compiler_options() is None
    monkeypatch.setenv("KGEN_XLA_CPU_OPTIONS", "kgen")
    assert _jax.compiler_options() == _jax.CPU_COMPILER_OPTIONS
    monkeypatch.delenv("KGEN_XLA_CPU_OPTIONS")
    monkeypatch.setattr(_jax, "_usable_cores", lambda: 2)
    assert _jax.compiler_options() == _jax.CPU_COMPILER_OPTIONS
    monkeypatch.setenv("KGEN_XLA_CPU_OPTIONS", "default")
    assert _jax.compiler_options() is None


@pytest.mark.jax
def test_usable_cores_follow_the_affinity_mask(tmp_path):
    from kgen.backend import _jax

    no_cgroup = {"proc": str(tmp_path / "missing")}  # this machine's own CPU quota, if any, left out
    if not hasattr(os, "sched_setaffinity"):
        assert _jax._usable_cores(**no_cgroup) == (os.cpu_count() or 1)
        return
    mask = os.sched_getaffinity(0)
    assert _jax._usable_cores(**no_cgroup) == len(mask)
    try:
        os.sched_setaffinity(0, {min(mask)})  # what `taskset -c 0` gives a process
        assert _jax._usable_cores(**no_cgroup) == 1
    finally:
        os.sched_setaffinity(0, mask)


@pytest.mark.jax
def test_usable_cores_are_capped_by_a_cgroup_cpu_quota(tmp_path):
    """A container limited to one CPU (docker --cpus=1) sees every host core in its affinity mask."""
    from kgen.backend import _jax

    mask = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    root, proc = tmp_path / "cgroup", tmp_path / "self_cgroup"

    def usable(cgroup_lines, files):
        proc.write_text("".join(line + "\n" for line in cgroup_lines))
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        return _jax._usable_cores(str(root), str(proc))

    assert usable(["0::/"], {"cpu.max": "50000 100000\n"}) == 1  # cgroup v2, half a CPU: at least one
    assert usable(["0::/"], {"cpu.max": "max 100000\n"}) == mask  # no quota
    assert usable(["0::/job"], {"job/cpu.max": "100000 100000\n"}) == 1  # the process's own cgroup
    assert usable(["4:memory:/x", "1:cpu,cpuacct:/"], {"cpu/cpu.cfs_quota_us": "100000\n",
                                                        "cpu/cpu.cfs_period_us": "100000\n"}) == 1  # v1
    assert usable(["1:cpu:/"], {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}) == mask
    assert _jax._usable_cores(str(root), str(tmp_path / "missing")) == mask  # nothing readable: the mask
    assert usable(["0::/"], {"cpu.max": "lots 0\n"}) == mask  # unreadable numbers: no quota, and no error
    assert usable(["1:cpu:/"], {"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "0\n"}) == mask
    if mask >= 2:  # a quota above the mask does not raise it; 1.5 CPUs count as 2
        assert usable(["0::/"], {"cpu.max": f"{100000 * (mask + 3)} 100000\n"}) == mask
        assert usable(["0::/"], {"cpu.max": "150000 100000\n"}) == 2


@pytest.mark.jax
def test_unknown_xla_cpu_options_fall_back_to_defaults(monkeypatch):
    from kgen.backend import _jax

    monkeypatch.setenv("KGEN_XLA_CPU_OPTIONS", "kgen")
    monkeypatch.setattr(_jax, "CPU_COMPILER_OPTIONS", {"xla_cpu_experimental_ynn_fusion_type": "NOT_A_TYPE"})
    assert _jax.compiler_options() is None  # what a newer jaxlib without the flag gets
    conv, x, loop = _conv_loop()
    assert _np(kb.compile_function(loop, state=[conv])(x)).shape == (4, 12, 12, 8)


@pytest.mark.jax
def test_fit_compiles_with_the_xla_cpu_options_and_restores_keras_jit(monkeypatch):
    import jax
    from keras.src.backend.jax import trainer as keras_trainer
    from kgen.backend import _jax

    class Regressor(kb.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    x, y = np.ones((8, 2), "float32"), np.zeros((8, 1), "float32")
    model = Regressor()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    assert keras_trainer.jit is jax.jit
    # Negative control: the options must reach fit's compilation (an invalid value fails it), and Keras's
    # `jit` is restored even then.
    monkeypatch.setattr(_jax, "compiler_options", lambda: {"xla_cpu_experimental_ynn_fusion_type": "NOPE"})
    model = Regressor()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(Exception, match="NOPE"):
        model.fit(x, y, epochs=1, verbose=0)
    assert keras_trainer.jit is jax.jit


# ---------------------------------------------------------------- seeding

def test_set_seed_reproduces_initialisation_and_draws():
    def draw():
        kgen.set_seed(123)
        layer = keras.layers.Dense(3)
        layer.build((None, 2))
        return _np(layer.kernel), _np(keras.random.normal((4,), seed=keras.random.SeedGenerator()))

    (k1, n1), (k2, n2) = draw(), draw()
    np.testing.assert_array_equal(k1, k2)
    np.testing.assert_array_equal(n1, n2)
    kgen.set_seed(124)
    layer = keras.layers.Dense(3)
    layer.build((None, 2))
    assert not np.allclose(_np(layer.kernel), k1)


def test_set_seed_rejects_bad_seed():
    with pytest.raises(TypeError, match="seed"):
        kgen.set_seed(1.5)
    with pytest.raises(ValueError, match="seed"):
        kgen.set_seed(-1)


def test_two_optimizer_step_compiles_and_trains_as_the_uncompiled_one():
    # jit_compile=True is XLA on TF, jax.jit on JAX, torch.compile on torch (static shapes, kgen's torch Trainer;
    # there without the gradient penalty: "torch.compile with aot_autograd does not currently support double
    # backward", torch 2.13).
    penalty = 0.0 if keras.backend.backend() == "torch" else 1.0

    def fit(jit_compile, steps=3):
        kgen.set_seed(0)
        return _fit_toy_gan(steps=steps, penalty=penalty, jit_compile=jit_compile)

    model, d_opt, g_opt, _, history = fit(True)
    assert int(_np(d_opt.iterations)) == 3 and int(_np(g_opt.iterations)) == 3
    assert np.isfinite(history.history["d_loss"][-1])
    if keras.backend.backend() == "tensorflow":
        return  # TF's stateless random ops draw another stream under XLA (keras.random.normal(seed=7) differs)
    weights = [_np(v) for v in model.trainable_variables + model.non_trainable_variables]
    plain = fit(False)[0]
    for a, b in zip(weights, [_np(v) for v in plain.trainable_variables + plain.non_trainable_variables], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    shorter = fit(False, steps=2)[0]
    assert any(not np.allclose(a, _np(b)) for a, b in zip(weights, shorter.trainable_variables))  # bites


@pytest.mark.tensorflow
def test_jacobian_log_det_matches_tfp_bijector():
    # TFP is the TF-only oracle of the test extra: its bijectors carry exact forward log-det-Jacobians.
    import tensorflow_probability as tfp

    tfb = tfp.bijectors
    bijector = tfb.Chain([tfb.Shift([0.5, -1.0, 2.0]), tfb.Sinh(), tfb.Scale([1.5, 0.3, -2.0])])
    x = np.random.default_rng(4).normal(size=(5, 3)).astype("float32")
    jac = _np(kb.jacobian(lambda t: bijector.forward(t), ops.convert_to_tensor(x)))
    _, logdet = np.linalg.slogdet(jac.astype("float64"))
    expected = _np(bijector.forward_log_det_jacobian(x, event_ndims=1))
    np.testing.assert_allclose(logdet, expected, rtol=1e-5, atol=1e-5)
