"""Benchmarks for kgen.diffusion samplers, each against a peer measured in the same run.

1. Compiled DDIM, 50 steps (`DDIMSampler.sample`: the whole loop in one `compile_function`) vs the keras.io
   DDIM example's style: a Python loop that calls the network once per step, eagerly (`reverse_diffusion`),
   and the same loop calling one compiled step function per step. Twice: with a small convolutional ε-net
   (three 3×3 convolutions, 32 channels, where the network's arithmetic dominates and eager dispatch is cheap)
   and with kgen's `UNet` in the configuration of the shipped 28×28 animal model (the issue's "same UNet":
   residual blocks, GroupNorm, the λ embedding: hundreds of small ops per call, as in real use).
2. Upsample Guidance's cost: DDIM-50 at 64×64 with `UpsampleGuidance(scale=2)` (one extra 32×32 network call
   per step) vs plain DDIM-50 at 64×64; expected ≈ 1 + 1/s² = 1.25 in arithmetic. Measured twice: on every core
   this process may use, and in a child process pinned to one core (Linux). On JAX the two are compiled
   differently: XLA's YNNPACK fusion pass grows one YNNPACK graph around UG's average pool that takes in both
   networks' convolutions and activations, and YNNPACK runs that graph with its own kernels on every core,
   while a plain step is three separate convolutions: YNNPACK's on one core (XLA's defaults) or XLA's slower
   ones on every core (kgen's option). So on 2 cores UG's wall time comes out below plain sampling's
   (×0.73–0.94); pinned to one core the ratio is the arithmetic's plus pooling and upsampling (×1.35–1.49).

On JAX, kgen compiles with its own XLA CPU options where two or more cores are free (YNNPACK for matmuls and
reductions, XLA's convolutions, which use every core: `kgen/backend/_jax.py`); one row repeats the UNet loop with
the options forced on and with XLA's defaults, on every core and pinned to one, after a row that times what the
options change alone (three convolutions). The UG row uses the small ε-net.
A last table repeats the UNet row at other batch sizes (`--batches`): the eager loop pays a fixed per-call
dispatch cost (≈ 60–90 ms per UNet call on JAX, nearly independent of the batch), while the compiled loop's
time is the network's arithmetic, linear in the batch, so the speed-up falls as the batch grows.

    KERAS_BACKEND=jax python benchmarks/bench_diffusion_sampler.py [--batches 1,4,16,64]
"""

import argparse
import contextlib
import json
import os

import keras
from keras import ops

import kgen
from kgen import backend as kb
from kgen.diffusion import CosineSchedule, DDIMSampler, UNet, UpsampleGuidance
from kgen.diffusion.predictions import per_example, state_of

from _child import best_of, can_pin, child_role, run_child

BACKEND = keras.backend.backend()


class SmallEpsNet(keras.layers.Layer):
    """ε̂(x, λ): convolutions on [x, λ broadcast as a channel]."""

    def __init__(self, channels=3, width=32, **kwargs):
        super().__init__(**kwargs)
        self.convs = [keras.layers.Conv2D(width, 3, padding="same", activation="swish"),
                      keras.layers.Conv2D(width, 3, padding="same", activation="swish"),
                      keras.layers.Conv2D(channels, 3, padding="same")]

    def call(self, x, logsnr):
        level = ops.ones_like(x[..., :1]) * ops.reshape(ops.cast(logsnr, x.dtype) / 10.0, (-1, 1, 1, 1))
        h = ops.concatenate([x, level], axis=-1)
        for conv in self.convs:
            h = conv(h)
        return h


def bench_ddim(net, steps=50, shape=(16, 32, 32, 3), peers=True):
    """Seconds of the compiled loop, the eager keras.io loop and the loop of a compiled step (None, None
    without `peers`)."""
    sampler = DDIMSampler(CosineSchedule(), steps)
    x_T = keras.random.normal(shape, seed=0)
    net(x_T, ops.zeros((shape[0],)))  # build
    t_kgen = best_of(lambda: ops.convert_to_numpy(sampler.sample(net, x_T)))
    if not peers:
        return t_kgen, None, None

    def keras_io_loop(x, step_fn):
        for i in range(steps):  # keras.io: one network call per step from Python
            x = step_fn(x, ops.convert_to_tensor(i, dtype="int32"))
        return ops.convert_to_numpy(x)

    def step(x, i):
        logsnr = per_example(sampler.take("logsnr", i, x), x)
        return sampler.step(net(x, logsnr), i, x)

    compiled_step = kb.compile_function(step, state=state_of(net))  # the Layer, or the one a closure reads
    t_eager = best_of(lambda: keras_io_loop(x_T, step))
    t_step = best_of(lambda: keras_io_loop(x_T, compiled_step))
    return t_kgen, t_eager, t_step


def bench_upsample_guidance(net, steps=50, shape=(8, 64, 64, 3)):
    sampler = DDIMSampler(CosineSchedule(), steps)
    x_T = keras.random.normal(shape, seed=1)
    net(x_T, ops.zeros((shape[0],)))
    guided = UpsampleGuidance(net, CosineSchedule(), scale=2)
    t_plain = best_of(lambda: ops.convert_to_numpy(sampler.sample(net, x_T)))
    t_ug = best_of(lambda: ops.convert_to_numpy(sampler.sample(guided, x_T)))
    return t_ug, t_plain


def animal_unet_eps():
    unet = UNet((28, 28, 1), channels=16, channel_mults=(1, 2), attention_resolutions=())
    return lambda x, logsnr: unet([x, logsnr])


@contextlib.contextmanager
def forced_xla_options(choice):
    """`KGEN_XLA_CPU_OPTIONS=choice` ("kgen" or "default") for what is compiled inside; the earlier value after."""
    previous = os.environ.get("KGEN_XLA_CPU_OPTIONS")
    os.environ["KGEN_XLA_CPU_OPTIONS"] = choice
    try:
        yield
    finally:
        if previous is None:
            del os.environ["KGEN_XLA_CPU_OPTIONS"]
        else:
            os.environ["KGEN_XLA_CPU_OPTIONS"] = previous


def conv_stack_times(calls=20):
    """{"kgen": ms, "default": ms} per call of three 3×3 convolutions (8×64×64×32, swish), compiled with kgen's
    XLA CPU option forced on and with XLA's defaults: what the option changes, alone."""
    convs = [keras.layers.Conv2D(32, 3, padding="same", activation="swish") for _ in range(3)]
    x = keras.random.normal((8, 64, 64, 32), seed=2)

    def stack(h):
        for conv in convs:
            h = conv(h)
        return h

    stack(x)  # build
    times = {}
    for choice in ("kgen", "default"):
        with forced_xla_options(choice):
            compiled = kb.compile_function(stack, state=convs)
        times[choice] = 1e3 * best_of(lambda: [ops.convert_to_numpy(compiled(x)) for _ in range(calls)]) / calls
    return times


def option_times(unet_eps):
    """{"kgen": s, "default": s}: the UNet loop with kgen's XLA CPU option forced on, and with XLA's defaults."""
    times = {}
    for choice in ("kgen", "default"):
        with forced_xla_options(choice):
            times[choice], _, _ = bench_ddim(unet_eps, shape=(16, 28, 28, 1), peers=False)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,4,16", help="batch sizes of the UNet speed-up table")
    args = parser.parse_args(argv)
    kgen.set_seed(0)
    net = SmallEpsNet()
    if child_role() == "upsample-guidance":  # run_child(..., one_core=True) below
        t_ug, t_plain = bench_upsample_guidance(net)
        print(json.dumps({"ug": t_ug, "plain": t_plain}))
        return
    if child_role() == "xla-options":
        print(json.dumps({"unet": option_times(animal_unet_eps()), "convs": conv_stack_times()}))
        return
    t_kgen, t_eager, t_step = bench_ddim(net)
    print(f"[{BACKEND}] DDIM 50 steps, 16×32×32×3: kgen compiled loop {t_kgen:.3f} s, keras.io eager Python loop "
          f"{t_eager:.3f} s (speed-up ×{t_eager / t_kgen:.2f}), Python loop of a compiled step {t_step:.3f} s "
          f"(speed-up ×{t_step / t_kgen:.2f})")
    unet_eps = animal_unet_eps()
    t_kgen, t_eager, t_step = bench_ddim(unet_eps, shape=(16, 28, 28, 1))
    print(f"[{BACKEND}] DDIM 50 steps, kgen UNet (the shipped 28×28 animal configuration), 16×28×28×1: kgen "
          f"compiled loop {t_kgen:.3f} s, keras.io eager Python loop {t_eager:.3f} s (speed-up "
          f"×{t_eager / t_kgen:.2f}), Python loop of a compiled step {t_step:.3f} s (speed-up ×{t_step / t_kgen:.2f})")
    if BACKEND == "jax":  # the same loop with the YNNPACK option forced on and off (kgen/backend/_jax.py)
        from kgen.backend import _jax

        times, convs = option_times(unet_eps), conv_stack_times()
        cores = len(_cores())
        pinned = run_child(__file__, BACKEND, role="xla-options", one_core=True) if can_pin() else None
        line = (f"[{BACKEND}] three 3×3 convolutions, 8×64×64×32: kgen's XLA CPU option forced on "
                f"{convs['kgen']:.1f} ms, XLA's defaults {convs['default']:.1f} ms on {cores} cores")
        if pinned:
            line += f"; on one core {pinned['convs']['kgen']:.1f} and {pinned['convs']['default']:.1f} ms"
        print(line + " (YNNPACK's convolutions, XLA's default, use one core)")
        line = (f"[{BACKEND}] the same compiled UNet loop with kgen's XLA CPU option forced on "
                f"{times['kgen']:.3f} s, with XLA's defaults {times['default']:.3f} s: the option "
                f"×{times['default'] / times['kgen']:.2f} faster on {cores} cores")
        if pinned:
            line += (f"; on one core {pinned['unet']['kgen']:.3f} s and {pinned['unet']['default']:.3f} s, "
                     f"×{pinned['unet']['default'] / pinned['unet']['kgen']:.2f}")
        chosen = "on" if _jax._options_pay_off(_jax._cpu_flags(), _jax._usable_cores()) else "off"
        print(f"{line}; kgen's choice here: {chosen}")
    measured = {16: (t_kgen, t_eager)}  # the row above
    for batch in (int(b) for b in args.batches.split(",")):
        if batch not in measured:
            measured[batch] = bench_ddim(unet_eps, shape=(batch, 28, 28, 1))[:2]
        t_kgen, t_eager = measured[batch]
        print(f"[{BACKEND}] DDIM 50 steps, kgen UNet, batch {batch}: compiled {1e3 * t_kgen / 50:.1f} ms/step, "
              f"keras.io eager {1e3 * t_eager / 50:.1f} ms/step, speed-up ×{t_eager / t_kgen:.2f}", flush=True)
    t_ug, t_plain = bench_upsample_guidance(net)
    line = (f"[{BACKEND}] Upsample Guidance, DDIM 50 steps, 8×64×64×3 (s=2), on {len(_cores())} cores: UG "
            f"{t_ug:.3f} s, plain {t_plain:.3f} s, cost ×{t_ug / t_plain:.2f}")
    pinned = run_child(__file__, BACKEND, role="upsample-guidance", one_core=True) if can_pin() else None
    if pinned:
        line += (f"; on one core: UG {pinned['ug']:.3f} s, plain {pinned['plain']:.3f} s, cost "
                 f"×{pinned['ug'] / pinned['plain']:.2f} (arithmetic: ≈ 1.25)")
    print(line)


def _cores():
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)


if __name__ == "__main__":
    main()
