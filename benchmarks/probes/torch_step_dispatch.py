"""What one torch `fit` step dispatches: aten calls, host reads and copies per step, and who makes the copies.

On an H200 the torch backend ran the shipped U-Net's `fit` step at 125–170 ms whatever the batch (host-bound,
benchmarks/RESULTS.md), and earlier notes counted "~200 scalar `aten::to` per step" as a suspect: on a GPU a
copy from host to device, or a read of a device value (`.item()`, `aten::_local_scalar_dense`), costs a
synchronisation. This probe profiles a few steps with torch.profiler (CPU activity, or CUDA too when a GPU is
visible) and prints, per step: wall time, aten calls (all, and those not nested in another aten call, i.e. what
Python dispatched), host reads, `aten::_to_copy` calls with their input shapes (scalar or not), and the callers of
those copies (the parent ops, and the first kgen or Keras frame).

    KERAS_BACKEND=torch python benchmarks/probes/torch_step_dispatch.py [--model unet|gan] [--batch 2] [--steps 8]
        [--no-trace | --jit-compile]

`--no-trace` runs Keras's eager layer calls instead of kgen's traced replays; `--jit-compile` Keras's own
`torch.compile` of the step (2026-12-06, 2-core AMD EPYC with AVX2, two threads: U-Net 65–79 ms per step against
31.9 traced and 56.0 eager, 3509 aten calls against 7808, after a first `fit` of 70–99 s; GAN 55–64 against 26.3
and 68.8, 130–202 s).

Measured (2026-12-06, 2-core AVX-512 Xeon, torch 2.13.0 CPU, Keras 3.15.1, one thread, a 12 000-step JAX bench on
the other core), batch 2:
- shipped U-Net config (channels 16, mults (1, 2)): 20–23 ms per step, 2330–2360 aten calls dispatched from Python
  (7800–7860 in all), 8.1–8.2 host reads, 470 `_to_copy` (448 on 0-d tensors). The copies: 163 from `_foreach_mul_`
  and 82 from `_foreach_add` in Keras's torch Adam (on CPU foreach runs per tensor and converts its Python-number
  scalar each time), about 80 in autograd's backward (mean, pow, rsqrt) and `aten::mean`, 11 in oneDNN's
  convolution backward; none from kgen's code, none between devices. The host reads: 1.2 per step in Keras's
  torch seed generator, `int(seed)` of its seed variable when a draw (noise, time) makes its torch.Generator: on
  a GPU that variable lives on the device, so each such draw is a synchronisation; the rest inside the traced
  network, whose graph has 6 `aten::Int` nodes, every one reading a CPU integer tensor (padding sizes that Keras's
  "same" padding computes as tensors; the trace records them), so no device read.
- SELF-MOD GAN with spectral norm and self-attention, width 32: 17 ms per step, 4190 aten calls dispatched, 18.2
  host reads, almost all inside the traced networks (each generator call: 8 `aten::Int` nodes, all on CPU integer
  tensors, from Keras's transposed-convolution padding); 348 `_to_copy` (342 on 0-d tensors: Python numbers in
  `aten::add` inside the traces and in the optimizer's foreach).
So on a GPU a torch `fit` step reads the device once per random draw (Keras's seed generator) and otherwise only
host scalars; the 0-d copies are Python numbers, not transfers. What the H200's 125–170 ms per step is made of
is for `tools/gpu_check.py --cases torch_fit_profile` (syncs, copies and kernel launches counted on the device).
"""

import argparse
import collections
import time

import keras
import numpy as np

import kgen.backend


def build(name, x, jit_compile=False):
    if name == "unet":
        from kgen.app import presets
        model = presets.diffusion_model(x, seed=0, channels=16, channel_mults=(1, 2))
        if jit_compile:
            model.compile(optimizer=model.optimizer, jit_compile=True)
        return model
    from kgen.gans import GAN, networks
    g = networks.generator((28, 28, 1), 64, norm="selfmod", attention=True, spectral_norm=True, width=32)
    d = networks.discriminator((28, 28, 1), spectral_norm=True, attention=True, width=32)
    model = GAN(g, d, loss="hinge", seed=0)
    model.compile(optimizers={n: keras.optimizers.Adam(2e-4, 0.5, 0.999) for n in ("generator", "discriminator")},
                  jit_compile=jit_compile)
    return model


def first_frame(event):
    parent = event
    while parent is not None and not parent.stack:  # ops nested in an aten call carry no stack of their own
        parent = parent.cpu_parent
    for frame in (parent.stack if parent is not None else []):
        if "/kgen/" in frame or "keras/src" in frame:
            return frame.split("site-packages/")[-1]
    return "(no Python frame: autograd or the optimizer's C++)"


def parents(event, depth=4):
    chain, parent = [], event.cpu_parent
    while parent is not None and len(chain) < depth:
        chain.append(parent.name.split(" of ")[0])
        parent = parent.cpu_parent
    return " <- ".join(chain)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("unet", "gan"), default="unet")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jit-compile", action="store_true",
                        help="Keras's own torch.compile of the whole step (`compile(jit_compile=True)`)")
    parser.add_argument("--no-trace", action="store_true", help="eager, kgen's traced network calls off")
    args = parser.parse_args()
    if keras.backend.backend() != "torch":
        raise SystemExit("run with KERAS_BACKEND=torch")
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(args.threads)
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch * args.steps, 28, 28, 1)).astype("float32")
    model = build(args.model, x, jit_compile=args.jit_compile)  # static shapes: kgen.backend's torch Trainer
    if args.jit_compile or args.no_trace:
        # Inside the compiled step the networks are plain calls anyway; off, a frame dynamo gives up on does not
        # replay either.
        kgen.backend.set_network_tracing(False)
    fit = dict(batch_size=args.batch, epochs=1, verbose=0, shuffle=False)
    begin = time.perf_counter()
    model.fit(x, **fit)  # traces (or torch.compile), optimizer slots
    print(f"first fit: {time.perf_counter() - begin:.1f} s")
    times = []
    for _ in range(3):
        begin = time.perf_counter()
        model.fit(x, **fit)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - begin) / args.steps)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities, record_shapes=True, with_stack=True) as prof:
        model.fit(x, **fit)
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    per = 1.0 / args.steps
    dispatched = [e for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    copies = [e for e in events if e.name == "aten::_to_copy"]
    reads = [e for e in events if e.name == "aten::_local_scalar_dense"]
    scalar = [e for e in copies if e.input_shapes and e.input_shapes[0] == []]
    print(f"{args.model}, batch {args.batch}, {'CUDA' if torch.cuda.is_available() else 'CPU'}, "
          f"torch {torch.__version__}")
    print(f"ms per step (median of 3): {1e3 * float(np.median(times)):.1f}")
    print(f"aten calls per step: {len(events) * per:.0f} ({len(dispatched) * per:.0f} dispatched from Python)")
    print(f"host reads per step: {len(reads) * per:.1f}")
    print(f"_to_copy per step: {len(copies) * per:.1f} ({len(scalar) * per:.1f} of 0-d tensors)")
    # The traces' own host reads (aten::Int / Float / ScalarImplicit nodes): on which device is what they read?
    from kgen.backend import _torch as torch_glue  # kgen's registry of traced network calls
    read_kinds = ("aten::Int", "aten::Float", "aten::ScalarImplicit", "aten::IntImplicit", "aten::FloatImplicit",
                  "aten::item", "aten::Bool")
    devices = collections.Counter()
    for traces in torch_glue._TRACES.values():
        for entry in traces.values():
            if entry is not None:
                for node in entry[0].inlined_graph.nodes():
                    if node.kind() in read_kinds:
                        kind = node.inputsAt(0).type()
                        devices[str(kind.device()) if hasattr(kind, "device") and kind.device() else "?"] += 1
    print(f"host reads in the traced networks' graphs, by the device of what they read: {dict(devices)}")
    for title, chosen, n_rows in (("host reads", reads, 6), ("_to_copy", copies, 10)):
        print(f"callers of the {title}, per step:")
        sources = collections.Counter((parents(e), first_frame(e)) for e in chosen)
        for (chain, frame), n in sources.most_common(n_rows):
            print(f"  {n * per:6.1f}  {chain}\n          {frame}")


if __name__ == "__main__":
    main()
