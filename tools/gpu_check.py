"""kgen on a GPU in one prepared run: smoke tests and timings per family, then the shipped animal models trained.

    bash tools/gpu_wheels.sh                                   # here, with network: build/gpuwheels (5.3 MiB)
    OUT=dir python3 tools/gpu_check.py --wheels build/gpuwheels --budget 520 --train gans,diffusion,glow
    python3 tools/gpu_check.py --dry-run --out build/gpu_dry   # the same code path on the CPU, tiny sizes

The run has three phases, each with its own share of `--budget` seconds, and ends by itself in time:

1. Install: keras and the few pure-Python wheels of `--wheels` go into `build/gpu_site` (`pip --no-index
   --no-deps --target`), only where keras is missing.
2. Smoke and timings (`--smoke-budget`), one child process per backend of `--backends`, side by side. Per
   family (GAN, diffusion U-Net, UniLM, Glow): build, a short `fit`, sample, save, reload, compare the reloaded
   model's outputs; then training speed at a few batch sizes in float32 and under `mixed_bfloat16` (flows: float32
   only, their log-determinants are not bf16-safe), and sampling time; the GAN's `fit` also beside Keras's
   TerminateOnNaN (Keras then reads every step's loss in the loop) and kgen's StopOnNaN (async-safe). On JAX
   also the achieved TFLOP/s of a wide U-Net training step (XLA's own FLOP count of the compiled step over its
   measured time), as a fraction of a bf16 8192³ matmul's TFLOP/s measured in the same child (the denominator of
   the device at hand); its batch is the largest of 256, 128, 64, 32 whose compiled step (XLA's memory analysis)
   needs at most 60 % of the GPU's free memory (batch 256 needs ~51 GiB in f32: too much for an 80 GB H100 beside
   the training children). On torch, whether each network ran as a trace (kgen.backend.call_network) and, in
   `torch_fit_profile`, a torch.profiler summary of the U-Net's `fit` steps (top ops by host and device time, host
   reads, syncs and kernel launches per step): the H200 ran torch steps at 125–170 ms whatever the batch, and this
   says why; `torch_jit_compile_profile` (last, only when named) the same for Keras's torch.compile of the step.
3. Training (`--train`), JAX, one child per job, all side by side on the one GPU until the deadline:
   `gans`: DCGAN → +SN → +attention → +SELF-MOD, DCGAN with SELF-MOD's generator, and the SELF-MOD paper's
   pair in front of the SNDCGAN critic (benchmarks/bench_gans_animals.py's variants) × `--seeds`,
   under one optimizer recipe (`--gan-recipe`: "equal" or SAGAN's two time-scale "ttur"), each also keeping an
   average of G's weights (`--gan-ema`, from the first milestone on) saved beside G at every later milestone;
   the rest of the article's path in front of the SNDCGAN critic (`sndcgan+attention`,
   `sndcgan+attention+selfmod`) and the discriminator ablations train only when `--jobs` names them;
   `diffusion`: the Upsample Guidance U-Nets at 14×14, 28×28 and 28×28 on the shifted schedule;
   `glow`: Glow 2 × 8 × 64 on the dequantized animals; `patches` (issue 18): the same U-Net recipe on the
   natural-image patches at 16×16 (the 32×32 crops average-pooled), 32×32, and 32×32 on the shifted schedule.
   The GPU machine has no scikit-image: `--prepare-patches` (run here) writes the training crops to
   `build/gpu_patches.npz` (carry it), which the patch jobs read. Each job saves its weights at fixed step milestones (the
   same steps for every job of a family, so the comparisons are made at equal budgets) and its final model (seed 0
   of each self-modulated GAN: the whole GAN, critic and optimizer states too, a shipped model's candidate).

Seen on the H200 (2026-12-04, results in benchmarks/RESULTS.md): with 12 training children starting together,
the GANs compiled in 16–120 s, but the diffusion U-Nets spent their whole ~290 s compiling (XLA's convolution
autotuner times candidate kernels on a GPU that 11 other processes keep busy) and Glow 196 s. Hence
`--train-xla-flags=--xla_gpu_autotune_level=0` (cuDNN's heuristics instead of measurements), `--jobs` (fewer
children) and `--parallel` (smoke tests beside a short training run) for the next call, e.g. the article's path
in front of the SNDCGAN critic (DCGAN → `sndcgan` → `sndcgan+attention` → `sndcgan+attention+selfmod`, the
issue's table), the SELF-MOD paper's pair's self-modulated half (`sndcgan+selfmod`, the CPU's best at 12 000
steps: README, "GANs") and the Upsample Guidance pair:

    --jobs gan:dcgan:0,gan:dcgan:1,gan:sndcgan:0,gan:sndcgan:1,gan:sndcgan+attention:0,gan:sndcgan+attention:1,\
gan:sndcgan+attention+selfmod:0,gan:sndcgan+attention+selfmod:1,gan:sndcgan+selfmod:0,gan:sndcgan+selfmod:1,\
diffusion:14,diffusion:28

Everything lands in `--out` (default `$OUT`) as at most 8 files: `results.json` (machine, versions, every
result), `logs.tar.gz` (logs and PNG grids) and up to 6 tars of weights, `weights<i>.tar` of at most 15 MiB
each: final and best models first, then each job's latest weights, then the milestones every job of a family
reached (the equal-budget tables), then the rest; what does not fit is listed in `results.json` ("left_behind").
Back on the CPU, `tools/gpu_import.py OUT DIR` unpacks them and rebuilds the models the benchmarks load.
`--dry-run` runs every phase on the CPU at tiny sizes, compiling without XLA's optimizations, with short budgets
(tests/test_gpu_check.py runs it in CI).
"""

import argparse
import collections
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# benchmarks/bench_gans_animals.py's VARIANTS + EXTRA_VARIANTS (that module imports Keras; the orchestrator does not)
VARIANTS = ("dcgan", "+sn", "+attention", "+selfmod", "dcgan+selfmod", "sndcgan", "sndcgan+selfmod")
# benchmarks/bench_gans_animals.py's ABLATIONS: trained only when named in `--jobs`
GAN_ABLATIONS = ("dcgan-bnd", "+sn+bnd", "+attention+bnd", "+selfmod+bnd", "dcgan-joint")
# its SNDCGAN_PATH (the article's path with the SNDCGAN critic): also trained only when named in `--jobs`
GAN_SNDCGAN_PATH = ("sndcgan+attention", "sndcgan+attention+selfmod")
GAN_RECIPES = ("equal", "ttur")  # benchmarks/bench_gans_animals.py's RECIPES (that module imports Keras)
GAN_MILESTONES = (2000, 4000, 8000, 16000, 32000, 64000, 128000)
DIFFUSION_MILESTONES = (2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 16000, 24000, 32000, 64000, 128000)
DRY_MILESTONES = (2, 4, 8, 16, 32)
FINAL_STEPS = 10**9  # what _milestone_steps gives a final or best model (no steps in its name)
# The wide U-Net of `unet_training_flops`, largest batch first. XLA's memory analysis of its f32 step (compiled on
# the CPU) needs 51 GiB at batch 256 and 6.5 GiB at 32: on an 80 GB H100 beside the training children it must not
# take everything, so the step may use at most FLOPS_MEMORY_SHARE of the device's free memory.
FLOPS_BATCHES = (256, 128, 64, 32)
FLOPS_MEMORY_SHARE = 0.6


# ====================================================================== orchestration (no Keras imported here)
def _now():
    return time.monotonic()


def _install(wheels, site, log):
    """keras + the carried wheels into `site`, only where keras cannot be imported already."""
    probe = subprocess.run([sys.executable, "-c", "import keras"], capture_output=True)
    if probe.returncode == 0:
        log.append("keras importable: nothing installed")
        return None
    if not wheels:
        raise SystemExit("gpu_check: keras is not installed and --wheels was not given (bash tools/gpu_wheels.sh)")
    files = sorted(glob.glob(os.path.join(wheels, "*.whl")))
    have_te = subprocess.run([sys.executable, "-c", "import typing_extensions"], capture_output=True).returncode == 0
    files = [f for f in files if not (have_te and os.path.basename(f).startswith("typing_extensions"))]
    os.makedirs(site, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
           "--upgrade", "--target", site] + files
    done = subprocess.run(cmd, capture_output=True, text=True)
    log.append(" ".join(cmd) + f"\nrc={done.returncode}\n{done.stdout}{done.stderr}")
    if done.returncode != 0:
        raise SystemExit(f"gpu_check: installing the wheels failed:\n{done.stderr}")
    return site


def _machine():
    info = {"python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        info["gpu"] = out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as error:
        info["gpu"] = f"none ({type(error).__name__})"
    try:
        info["cpu_count"] = os.cpu_count()
        info["commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                                        text=True).stdout.strip() or None
    except OSError:
        info["commit"] = None
    return info


def _spawn(args, env, log_path):
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, os.path.abspath(__file__)] + args, env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True), log


def _wait_all(children, deadline):
    """Wait for every child until `deadline` (monotonic); terminate, then kill, whatever is left."""
    for proc, log in children:
        try:
            proc.wait(timeout=max(0.0, deadline - _now()))
        except subprocess.TimeoutExpired:
            pass
    for proc, _ in children:
        if proc.poll() is None:
            proc.terminate()
    for proc, log in children:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return [proc.returncode for proc, _ in children]


def train_jobs(names, seeds, dry_run=False, gan_recipe="equal"):
    """The training children of phase 3 (a dry run trains one job per family).

    GAN jobs are `gan:<variant>:<seed>` (recipe "equal") or `gan:<variant>:<seed>:<recipe>` (a key of
    benchmarks/bench_gans_animals.py's RECIPES, e.g. "ttur").
    """
    if gan_recipe not in GAN_RECIPES:
        raise SystemExit(f"gpu_check: --gan-recipe takes one of {', '.join(GAN_RECIPES)}, got {gan_recipe!r}")
    unknown = set(names) - {"gans", "diffusion", "glow", "patches"}
    if unknown:
        raise SystemExit(f"gpu_check: --train takes gans, diffusion, glow, patches (or none), got {sorted(unknown)}")
    tail = "" if gan_recipe == "equal" else ":" + gan_recipe
    if dry_run:
        return [job for name, job in (("gans", "gan:+selfmod:0" + tail), ("diffusion", "diffusion:14"),
                                      ("glow", "glow:animals")) if name in names]
    jobs = []
    if "gans" in names:
        jobs += [f"gan:{v}:{s}{tail}" for v in VARIANTS for s in seeds]
    if "diffusion" in names:
        jobs += ["diffusion:14", "diffusion:28", "diffusion:28shifted"]
    if "glow" in names:
        jobs += ["glow:animals"]
    if "patches" in names:
        jobs += [f"diffusion:{spec}" for spec in PATCH_SPECS]
    return jobs


PATCH_SPECS = ("patches16", "patches32", "patches32shifted")
DIFFUSION_SPECS = ("14", "28", "28shifted") + PATCH_SPECS


def check_jobs(jobs):
    """Explicit `--jobs`, each checked here: a bad one would otherwise fail (or, for diffusion, silently train the
    28×28 model) in its child, on the GPU's time."""
    for job in jobs:
        family, _, spec = job.partition(":")
        parts = spec.split(":")
        if family == "gan":
            ok = (len(parts) in (2, 3) and parts[0] in VARIANTS + GAN_SNDCGAN_PATH + GAN_ABLATIONS
                  and parts[1].isdigit() and (len(parts) == 2 or parts[2] in GAN_RECIPES))
        else:
            ok = spec in {"diffusion": DIFFUSION_SPECS, "glow": ("animals",)}.get(family, ())
        if not ok:
            raise SystemExit(
                f"gpu_check: --jobs: {job!r} is none of gan:<variant>:<seed>[:<recipe>] (variants "
                f"{', '.join(VARIANTS + GAN_SNDCGAN_PATH + GAN_ABLATIONS)}; recipes {', '.join(GAN_RECIPES)}), "
                f"diffusion:<{'|'.join(DIFFUSION_SPECS)}>, glow:animals")
    return jobs


def job_stem(job):
    """The stem of a training job's files (`gan:+selfmod:0` → `gan_selfmod_0`; its log and record are
    `train_<stem>.*`, its weights `<stem>_...`)."""
    return job.replace(":", "_").replace("+", "")


def diffusion_weights(names, job):
    """{steps: name} of a diffusion job's `<stem>_s<steps>.weights.h5` among the file names `names`."""
    stem, found = job_stem(job), {}
    for name in names:
        steps = _milestone_steps(name)
        if name == f"{stem}_s{steps}.weights.h5":
            found[steps] = name
    return found


def resume_file(folder, job):
    """The weights a `--resume` run starts `job` from, or None for a job that does not resume (GANs start
    afresh): Glow's `glow_animals_best.weights.h5` (it goes on from its Adam step count, and stays the best file
    until an epoch beats it), a diffusion job's latest `diffusion_<spec>_s<steps>.weights.h5` (it goes on counting
    from those steps). Raises SystemExit when the folder lacks them."""
    family, _, spec = job.partition(":")
    if family == "glow":
        name = "glow_animals_best.weights.h5"
    elif family == "diffusion":
        found = diffusion_weights(os.listdir(folder), job)
        name = found[max(found)] if found else f"diffusion_{spec}_s<steps>.weights.h5"
    else:
        return None
    if not os.path.isfile(os.path.join(folder, name)):
        raise SystemExit(f"gpu_check: --resume: {folder} has no {name} for job {job}")
    return os.path.join(folder, name)


PATCHES_FILE = os.path.join(ROOT, "build", "gpu_patches.npz")


def prepare_patches(path=PATCHES_FILE):
    """Write the natural-image training patches (kgen.datasets.load_patches, 32×32 uint8) for the GPU machine."""
    import numpy as np

    from kgen.datasets import load_patches

    train, labels = load_patches("train", size=32)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, train=train, labels=labels)
    print(f"gpu_check: wrote {path}: {train.shape} {train.dtype}, {os.path.getsize(path) / 2**20:.1f} MiB")
    return path


def _patch_images():
    """The training patches: from `PATCHES_FILE` when present (the GPU machine), else from scikit-image."""
    import numpy as np

    if os.path.exists(PATCHES_FILE):
        with np.load(PATCHES_FILE) as data:
            return data["train"]
    from kgen.datasets import load_patches

    return load_patches("train", size=32)[0]


def orchestrate(args):
    start = _now()
    out = os.path.abspath(args.out or os.environ.get("OUT") or os.path.join(ROOT, "build", "gpu_check"))
    work = os.path.join(ROOT, "build", "gpu_work")
    names = [n for n in args.train.split(",") if n and n != "none"]
    # Bad names fail here, before any work (the previous run's folders are still there).
    jobs = (check_jobs(args.jobs.split(",")) if args.jobs else
            train_jobs(names, [int(s) for s in args.seeds.split(",")], args.dry_run, args.gan_recipe))
    if args.resume:
        if not os.path.isdir(args.resume):
            raise SystemExit(f"gpu_check: --resume: no folder {args.resume}")
        for job in jobs:
            resume_file(args.resume, job)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.makedirs(out, exist_ok=True)
    notes = []
    site = _install(args.wheels, os.path.join(ROOT, "build", "gpu_site"), notes)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2", XLA_PYTHON_CLIENT_PREALLOCATE="false",
               PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (site, ROOT, env.get("PYTHONPATH")) if p)
    if args.dry_run:
        env["JAX_PLATFORMS"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
        # tiny models on a CPU: XLA's optimizations cost more compile time (eager ops included) than they save
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
                            " --xla_llvm_disable_expensive_passes=true").strip()
    results = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv), "machine": _machine(),
               "dry_run": args.dry_run, "budget_s": args.budget, "install": notes, "smoke": {}, "train": {}}
    mode = ["--dry-run"] if args.dry_run else []

    # phase 2: smoke tests and timings, one child per backend
    backends = [b for b in args.backends.split(",") if b]
    smoke_deadline = start + min(args.smoke_budget, args.budget - 30)
    children = []
    for backend in backends:
        child_env = dict(env, KERAS_BACKEND=backend)
        cases = ["--cases", args.cases] if args.cases else []
        children.append(_spawn(["--child", "smoke", "--work", work, "--deadline", repr(smoke_deadline)] + mode + cases,
                               child_env, os.path.join(work, f"smoke_{backend}.log")))
    smoke_children = children
    if not args.parallel:
        results["smoke_rc"] = dict(zip(backends, _wait_all(children, smoke_deadline + 15)))
    results["smoke_s"] = round(_now() - start, 1)

    # phase 3: training, one JAX child per job
    train_deadline = start + args.budget - args.pack_s
    children = []
    resume = ["--resume", os.path.abspath(args.resume)] if args.resume else []
    for job in jobs:
        child_env = dict(env, KERAS_BACKEND="jax")
        if args.train_xla_flags:
            child_env["XLA_FLAGS"] = (child_env.get("XLA_FLAGS", "") + " " + args.train_xla_flags).strip()
        children.append(_spawn(["--child", "train", "--job", job, "--work", work, "--deadline", repr(train_deadline),
                                "--gan-ema", repr(args.gan_ema)] + mode + resume,
                               child_env, os.path.join(work, f"train_{job_stem(job)}.log")))
    results["train_rc"] = dict(zip(jobs, _wait_all(children, train_deadline + 20)))
    if args.parallel:  # the smoke children keep their own deadline, even if every training child ended early
        results["smoke_rc"] = dict(zip(backends, _wait_all(smoke_children, smoke_deadline + 15)))
    results["train_s"] = round(_now() - start, 1)

    # pack: results.json, logs.tar.gz, one weights tar per family (at most 8 files)
    for path in sorted(glob.glob(os.path.join(work, "*.json"))):
        with open(path) as f:
            part = json.load(f)
        key = os.path.basename(path)[:-5]
        (results["smoke"] if key.startswith("smoke_") else results["train"])[key] = part
    results["total_s"] = round(_now() - start, 1)
    with tarfile.open(os.path.join(out, "logs.tar.gz"), "w:gz") as tar:
        for path in sorted(glob.glob(os.path.join(work, "*.log")) + glob.glob(os.path.join(work, "*.png"))):
            tar.add(path, arcname=os.path.basename(path))
    results["left_behind"] = _pack_weights(work, out)
    results["out_files"] = sorted(set(os.listdir(out)) | {"results.json"})
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    print(summary(results), flush=True)
    return 0 if all(r.get("all_ok") for r in results["smoke"].values()) and results["smoke"] else 1


def ships_whole_gan(variant, seed):
    """Whether a GAN job also saves its whole final GAN (`gan_<variant>_<seed>_final.keras`): seed 0 of every
    self-modulated variant, the candidates for the shipped SELF-MOD models (`selfmod_animals.keras` from `+selfmod`,
    `selfmod_sndcgan_animals.keras` from the SNDCGAN critic's path). A shipped GAN needs its critic (scores, latent
    MCMC) beside G, which the milestones' generator weights lack."""
    return "selfmod" in variant and str(seed) == "0"


def _milestone_steps(path):
    digits = "".join(c for c in os.path.basename(path).split(".")[0].rsplit("_", 1)[-1] if c.isdigit())
    return int(digits) if digits else FINAL_STEPS


def _largest_fitting(batches, compile_at, free_bytes, share=FLOPS_MEMORY_SHARE):
    """Compile at each of `batches` (largest first) until a step needs at most `share` × `free_bytes`.

    `compile_at(batch)` -> (compiled, bytes needed or None). Without a figure for either side (no GPU, no memory
    analysis) the first batch is taken. Returns (batch, compiled, what was tried); raises ValueError, before
    anything runs, if not even the last batch fits."""
    tried = []
    for batch in batches:
        compiled, need = compile_at(batch)
        tried.append({"batch": batch, "bytes_needed": need})
        if need is None or free_bytes is None or need <= share * free_bytes:
            return batch, compiled, tried
    raise ValueError(f"no batch of {list(batches)} fits {share} of the device's {free_bytes / 2**30:.1f} GiB free: "
                     f"{tried}")


def _pack_order(paths):
    """`paths` (weights files) in packing order. A file is named `<family>_<job>_<kind><steps>.<ext>` (`g`, `ema_g`
    or `s` before the steps) or `..._final.keras` / `..._best.weights.h5`. First the final and best models; then each
    job's latest files (the longest-trained weights); then the milestones every job of the family reached, the
    latest first (the equal-budget comparisons: the milestones are the same steps for every job of a family, so a
    table at a milestone some job lacks is no table); then the rest, the latest first."""
    def job(path):
        stem = os.path.basename(path).split(".")[0].rsplit("_", 1)[0]
        return stem[:-len("_ema")] if stem.endswith("_ema") else stem

    steps_of = collections.defaultdict(set)
    for path in paths:
        steps_of[job(path)].add(_milestone_steps(path))
    shared = {}  # family -> the steps at which every one of its jobs has weights
    for name, steps in steps_of.items():
        family = name.split("_", 1)[0]
        shared[family] = shared.get(family, steps) & steps

    def rank(path):
        steps, name = _milestone_steps(path), job(path)
        if steps == FINAL_STEPS:
            tier = 0
        elif steps == max(steps_of[name] - {FINAL_STEPS}):
            tier = 1
        else:
            tier = 2 if steps in shared[name.split("_", 1)[0]] else 3
        return tier, -steps, os.path.basename(path)

    return sorted(paths, key=rank)


def _pack_weights(work, out, tars=6, per_tar=15 * 2**20):
    """Weights into at most `tars` tars of at most `per_tar` bytes, in `_pack_order`. Returns the names of the
    files that did not fit."""
    files = _pack_order(glob.glob(os.path.join(work, "*.keras")) + glob.glob(os.path.join(work, "*.weights.h5")))
    bins, left = [[] for _ in range(tars)], []
    sizes = [0] * tars
    for path in files:
        size = os.path.getsize(path)
        slot = next((i for i in range(tars) if sizes[i] + size <= per_tar), None)
        if slot is None:
            left.append(os.path.basename(path))
            continue
        bins[slot].append(path)
        sizes[slot] += size
    for i, chunk in enumerate(b for b in bins if b):
        with tarfile.open(os.path.join(out, f"weights{i}.tar"), "w") as tar:
            for path in chunk:
                tar.add(path, arcname=os.path.basename(path))
    return left


def summary(results):
    lines = [f"gpu_check: {results['machine'].get('gpu')} python {results['machine']['python']}, "
             f"total {results['total_s']} s (smoke {results['smoke_s']} s)"]
    for key, part in sorted(results["smoke"].items()):
        lines.append(f"{key}: {part.get('versions')} all_ok={part.get('all_ok')}")
        for name, res in part.get("cases", {}).items():
            shown = {k: v for k, v in res.items() if k not in ("trace",)}
            lines.append(f"  {name}: {json.dumps(shown, default=str)[:400]}")
    for key, part in sorted(results["train"].items()):
        lines.append(f"{key}: steps {part.get('steps')} in {part.get('train_s')} s, milestones "
                     f"{[m['steps'] for m in part.get('milestones', [])]}, last {part.get('last')}")
    return "\n".join(lines)


# ====================================================================== children (Keras imported)
def _deadline(args):
    return args.deadline if args.deadline is not None else _now() + (args.deadline_s or 600)


class Child:
    """Shared by the smoke and training children: backend facts, device sync, JSON written after every case."""

    def __init__(self, path, deadline, dry_run):
        import keras
        import numpy as np

        self.keras, self.np = keras, np
        self.path, self.dry = path, dry_run
        self.deadline = deadline  # time.monotonic() is one clock for every process of the machine
        self.backend = keras.backend.backend()
        self.record = {"backend": self.backend, "versions": self.versions(), "cases": {}}
        self.save()

    def versions(self):
        import keras
        import numpy as np

        v = {"keras": keras.__version__, "numpy": np.__version__}
        if keras.backend.backend() == "jax":
            import jax

            v.update(jax=jax.__version__, devices=[str(d) for d in jax.devices()])
        elif keras.backend.backend() == "torch":
            import torch

            v.update(torch=torch.__version__, device=(torch.cuda.get_device_name(0) if torch.cuda.is_available()
                                                      else "cpu"))
        return v

    def sync(self, x):
        """`x` once the device has computed it (timings stop here)."""
        if self.backend == "jax":
            import jax

            jax.block_until_ready(x)
        elif self.backend == "torch":
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
        return x

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.record, f, indent=1, default=str)
        os.replace(tmp, self.path)

    def left(self):
        return self.deadline - _now()


def _free_device_bytes():
    """Bytes this JAX process can still take on its GPU: the least of what nvidia-smi says is free (every process
    counted) and what is left under XLA's allocator limit; None on a CPU."""
    import jax

    device = jax.devices()[0]
    if device.platform != "gpu":
        return None
    figures = []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits",
                              f"--id={device.id}"], capture_output=True, text=True, timeout=30)
        figures.append(int(out.stdout.split()[0]) * 2**20)
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        pass
    stats = device.memory_stats() or {}
    if "bytes_limit" in stats:
        figures.append(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return min(figures) if figures else None


def _bytes_needed(compiled):
    """Device memory of a compiled JAX step (XLA's memory analysis: arguments, outputs, temporaries, less what
    donation aliases), or None where the backend gives none."""
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes)
    except Exception:  # noqa: BLE001 - no analysis on this backend: the caller takes its first batch
        return None


def _numpy(x):
    import keras
    import numpy as np

    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(x, "float32")))


def _timed_fit(model, x, batch, steps, **kwargs):
    """Seconds per optimizer step of `model.fit` over `steps` batches (after a warm-up fit of 2 batches)."""
    n = batch * steps
    data = x[:n] if not isinstance(x, dict) else {k: v[:n] for k, v in x.items()}
    warm = data[: 2 * batch] if not isinstance(data, dict) else {k: v[: 2 * batch] for k, v in data.items()}
    model.fit(warm, batch_size=batch, epochs=1, verbose=0, shuffle=False, **kwargs)
    begin = time.perf_counter()
    history = model.fit(data, batch_size=batch, epochs=1, verbose=0, shuffle=False, **kwargs)
    return (time.perf_counter() - begin) / steps, history


def _speeds(res, policy, batch, per_step, history, loss):
    key = f"train_{policy}_b{batch}"
    return {key + "_ms_per_step": round(1e3 * per_step, 2), key + "_examples_per_s": round(batch / per_step, 1),
            key + "_finite": math.isfinite(float(history.history[loss][-1]))}


def _policy(name):
    import keras

    keras.config.set_dtype_policy(name)


def _repeat(x, n):
    import numpy as np

    reps = -(-n // len(x))
    return np.concatenate([x] * reps)[:n]


def smoke(args):
    import keras
    import numpy as np

    import kgen
    from kgen.datasets import ANIMAL_LEVELS, dequantize, load_animals

    child = Child(os.path.join(args.work, f"smoke_{keras.backend.backend()}.json"), _deadline(args), args.dry_run)
    dry, B = args.dry_run, child.backend
    train = load_animals("train")[0]
    signed = train.astype("float32") / 127.5 - 1.0
    tmp = os.path.join(args.work, f"smoke_{B}_models")
    os.makedirs(tmp, exist_ok=True)

    wanted = set(args.cases.split(",")) if args.cases else None

    def case(name, fn, named_only=False):
        if (wanted is None and named_only) or (wanted is not None and name not in wanted):
            return
        if child.left() < 5:
            child.record["cases"][name] = {"ok": False, "error": "skipped: out of time"}
            child.save()
            return
        import traceback

        begin = _now()
        kgen.set_seed(0)
        try:
            res = dict(fn(), ok=True)
        except Exception as error:  # noqa: BLE001 - a failing case is a result, the next case still runs
            res = {"ok": False, "error": f"{type(error).__name__}: {error}"[:800], "trace": traceback.format_exc()[-3000:]}
        finally:
            _policy("float32")
        res["wall_s"] = round(_now() - begin, 1)
        child.record["cases"][name] = res
        child.save()
        print(f"[{B}] {name}: {json.dumps({k: v for k, v in res.items() if k != 'trace'}, default=str)}", flush=True)

    def reload(model, name):
        path = os.path.join(tmp, name + ".keras")
        model.save(path)
        return keras.saving.load_model(path, safe_mode=True)

    def precision():
        a = np.random.default_rng(0).normal(size=(512, 512)).astype("float32")
        exact = a.astype(np.float64) @ a.astype(np.float64)
        got = _numpy(keras.ops.matmul(keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(a)))
        res = {"matmul_f32_rel_err": float(np.max(np.abs(got - exact)) / np.max(np.abs(exact)))}
        if B == "torch":
            import torch

            res.update(tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
        return res

    def untraced(res, key, model, x, batch, steps):
        """torch: the same fit timed again with Keras's eager layer calls (no `call_network` replay), beside it."""
        if B != "torch":
            return
        from kgen import backend as kb

        res[key.replace("_untraced_ms_per_step", "_traces")] = traces(model)
        previous = kb.set_network_tracing(False)
        try:
            res[key] = round(1e3 * _timed_fit(model, x, batch, steps)[0], 2)
        finally:
            kb.set_network_tracing(previous)

    def traces(model):
        """torch: per network of `model`, how many input shapes run as a TorchScript replay
        (kgen.backend.call_network) and how many were refused and run eagerly (Keras's per-layer Python)."""
        from kgen.backend import _keras_compat, _torch

        inside = {id(layer) for layer in _keras_compat.sublayers(model)}
        found = {}
        for network, table in list(_torch._TRACES.items()):
            if id(network) not in inside:
                continue
            made = sum(t is not None for t in table.values())
            found[network.name] = {"traced": made, "refused": len(table) - made}
        return found

    def torch_profile(jit_compile=False):
        """torch: where a `fit` step of the shipped U-Net goes (the H200 ran it at 125–170 ms whatever the batch):
        torch.profiler over a few steps, the ops with the most self host and self device time per step, host
        reads of device values and kernel launches per step, and whether the network ran as a trace. With
        `jit_compile`, the same for Keras's own torch.compile of the whole step (on the 2-core CPU it compiles
        for 99 s and steps ×2 slower than the traces, with ×0.45 the aten calls:
        benchmarks/probes/torch_step_dispatch.py --jit-compile), i.e. whether fewer kernel launches pay on the
        GPU."""
        from kgen import backend as kb
        from kgen.app import presets

        channels, mults = (8, (1,)) if dry else (16, (1, 2))
        batch, steps = (8, 2) if dry else (128, 5)
        model = presets.diffusion_model(signed[:64], seed=0, channels=channels, channel_mults=mults)
        data = _repeat(signed, batch * steps)
        extra, tracing = {}, kb.set_network_tracing(not jit_compile)
        try:
            if jit_compile:  # static shapes: kgen.backend's torch Trainer
                model.compile(optimizer=model.optimizer, jit_compile=True)
                begin = _now()
                model.fit(data[:batch], batch_size=batch, epochs=1, verbose=0, shuffle=False)
                extra["first_fit_s"] = round(_now() - begin, 1)
            return dict(extra, **profile_fit(model, data, batch, steps))
        finally:
            kb.set_network_tracing(tracing)

    def profile_fit(model, data, batch, steps):
        import torch
        from torch.profiler import ProfilerActivity, profile

        per_step = _timed_fit(model, data, batch, steps)[0]  # also the warm-up (traces, optimizer slots)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        begin = _now()
        with profile(activities=activities) as prof:
            model.fit(data, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            child.sync(None)
        profiled = (_now() - begin) / steps
        events = prof.key_averages()

        def device_us(e):
            return getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0))

        def top(measure, n=15):
            rows = sorted(events, key=measure, reverse=True)[:n]
            return [[e.key, round(e.count / steps, 1), round(measure(e) / 1e3 / steps, 3)] for e in rows]

        def count(*names):
            return round(sum(e.count for e in events if any(name in e.key for name in names)) / steps, 1)

        return {"batch": batch, "ms_per_step": round(1e3 * per_step, 2),
                "profiled_ms_per_step": round(1e3 * profiled, 2),
                "self_host_ms_per_step": round(sum(e.self_cpu_time_total for e in events) / 1e3 / steps, 2),
                "self_device_ms_per_step": round(sum(device_us(e) for e in events) / 1e3 / steps, 2),
                "host_reads_per_step": count("aten::_local_scalar_dense"),  # what `item()` runs, once per read
                "syncs_per_step": count("cudaStreamSynchronize", "cudaDeviceSynchronize"),
                "copies_per_step": count("cudaMemcpy"),
                "kernel_launches_per_step": count("cudaLaunchKernel", "cuLaunchKernel"),
                "top_self_host_ms": top(lambda e: e.self_cpu_time_total),
                "top_self_device_ms": top(device_us) if torch.cuda.is_available() else [],
                "traces": traces(model)}

    def gan():
        from kgen.gans import GAN, networks

        width = 8 if dry else 32
        batches = (16,) if dry else (64, 256)  # smoke model at the first, timings at the last
        steps = 2 if dry else 20

        def build():
            g = networks.generator((28, 28, 1), 64, norm="selfmod", attention=True, spectral_norm=True, width=width)
            d = networks.discriminator((28, 28, 1), spectral_norm=True, attention=True, width=width)
            model = GAN(g, d, loss="hinge", seed=0)
            model.compile(optimizers={n: keras.optimizers.Adam(2e-4, 0.5, 0.999)
                                      for n in ("generator", "discriminator")})
            return model

        res = {}
        model = build()
        per_step, history = _timed_fit(model, signed, batches[0], steps)
        z = np.random.default_rng(1).normal(size=(8, 64)).astype("float32")
        loaded = reload(model, "gan")
        res["reload_max_diff"] = float(np.max(np.abs(_numpy(loaded.generate(z)) - _numpy(model.generate(z)))))
        res["losses_finite"] = bool(np.isfinite(history.history["d_loss"][-1]) and np.isfinite(history.history["g_loss"][-1]))
        res.update(_speeds(res, "float32", batches[0], per_step, history, "d_loss"))
        untraced(res, f"train_float32_b{batches[0]}_untraced_ms_per_step", model, signed, batches[0], steps)
        # A batch-end callback that is not async-safe (Keras's TerminateOnNaN) makes Keras read every step's logs
        # in the training loop, a wait per step on a GPU; kgen's StopOnNaN (a check every 50 steps there) is
        # async-safe and leaves the loop free. Beside the plain fit above:
        from kgen.callbacks import StopOnNaN

        for key, callback in (("terminate_on_nan", keras.callbacks.TerminateOnNaN()), ("stop_on_nan", StopOnNaN())):
            per_step = _timed_fit(model, signed, batches[0], steps, callbacks=[callback])[0]
            res[f"train_float32_b{batches[0]}_{key}_ms_per_step"] = round(1e3 * per_step, 2)
        for policy in () if dry else ("float32", "mixed_bfloat16"):  # the larger batch, both policies
            _policy(policy)
            model = build()
            per_step, history = _timed_fit(model, _repeat(signed, batches[-1] * steps), batches[-1], steps)
            res.update(_speeds(res, policy, batches[-1], per_step, history, "d_loss"))
            _policy("float32")
        res["generate_finite"] = bool(np.all(np.isfinite(_numpy(model.generate(64)))))
        return res

    def diffusion():
        from kgen.app import presets

        channels, mults = (8, (1,)) if dry else (16, (1, 2))  # dry: one level, half the graph to compile
        batches = (8,) if dry else (32, 128)
        steps = 2 if dry else 20
        res = {}
        model = presets.diffusion_model(signed[:64], seed=0, channels=channels, channel_mults=mults)
        per_step, history = _timed_fit(model, signed, batches[0], steps)
        res.update(_speeds(res, "float32", batches[0], per_step, history, "loss"))
        untraced(res, f"train_float32_b{batches[0]}_untraced_ms_per_step", model, signed, batches[0], steps)
        loaded = reload(model, "diffusion")
        x = keras.ops.convert_to_tensor(signed[:4])
        logsnr = keras.ops.zeros((4,))
        res["reload_max_diff"] = float(np.max(np.abs(_numpy(loaded.eps_fn(x, logsnr)) - _numpy(model.eps_fn(x, logsnr)))))
        n_steps = 5 if dry else 50
        model.sample(16, steps=n_steps, seed=0)
        begin = _now()
        samples = child.sync(model.sample(16, steps=n_steps, seed=0))
        res[f"ddim{n_steps}_b16_s"] = round(_now() - begin, 4)
        res["samples_in_range"] = bool(np.all(np.abs(_numpy(samples)) <= 1.0 + 1e-5))
        for policy in () if dry else ("float32", "mixed_bfloat16"):  # the larger batch, both policies
            _policy(policy)
            model = presets.diffusion_model(signed[:64], seed=0, channels=channels, channel_mults=mults)
            per_step, history = _timed_fit(model, _repeat(signed, batches[-1] * steps), batches[-1], steps)
            res.update(_speeds(res, policy, batches[-1], per_step, history, "loss"))
            _policy("float32")
        return res

    def text():
        from kgen.text import UniLM

        hidden, layers = (32, 2) if dry else (128, 4)
        model = UniLM(1000, hidden_dim=hidden, num_layers=layers, num_heads=4, intermediate_dim=4 * hidden,
                      max_length=96, initializer_range=0.1)
        rng = np.random.default_rng(0)
        src = np.zeros((32, 64), np.int32)
        for row, n in zip(src, rng.integers(32, 65, size=32)):
            row[:n] = rng.integers(3, 1000, size=n)
        ids = rng.integers(3, 1000, size=(2048, 64)).astype("int32")
        seg = np.zeros_like(ids)
        seg[:, 32:] = 1
        data = {"token_ids": ids, "segment_ids": seg}
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        per_step, history = _timed_fit(model, data, 32, 2 if dry else 20)
        res = {"train_float32_b32_ms_per_step": round(1e3 * per_step, 2),
               "loss_finite": bool(np.isfinite(history.history["loss"][-1]))}
        untraced(res, "train_float32_b32_untraced_ms_per_step", model, data, 32, 2 if dry else 20)
        tokens = {}
        new = 4 if dry else 32
        for cache in (True, False):
            model.generate(src, new, use_cache=cache)
            begin = _now()
            tokens[cache] = np.asarray(keras.ops.convert_to_numpy(model.generate(src, new, use_cache=cache)))
            res["decode_cached_s" if cache else "decode_full_s"] = round(_now() - begin, 4)
        res["cached_equals_full"] = bool(np.array_equal(tokens[True], tokens[False]))
        loaded = reload(model, "unilm")
        res["reload_same_tokens"] = bool(np.array_equal(
            np.asarray(keras.ops.convert_to_numpy(loaded.generate(src, new))), tokens[True]))
        if dry:
            return res
        _policy("mixed_bfloat16")
        bf = UniLM(1000, hidden_dim=hidden, num_layers=layers, num_heads=4, intermediate_dim=4 * hidden,
                   max_length=96, initializer_range=0.1)
        bf.compile(optimizer=keras.optimizers.Adam(1e-3))
        per_step, history = _timed_fit(bf, data, 32, 2 if dry else 20)
        res["train_mixed_bfloat16_b32_ms_per_step"] = round(1e3 * per_step, 2)
        res["bf16_loss_finite"] = bool(np.isfinite(history.history["loss"][-1]))
        return res

    def flows():
        from kgen.flows import Glow

        depth, filters, batch, steps = (2, 8, 16, 2) if dry else (8, 64, 64, 20)
        x = dequantize(train[: batch * steps], ANIMAL_LEVELS, seed=0)
        model = Glow((28, 28, 1), levels=2, depth=depth, filters=filters, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        per_step, history = _timed_fit(model, x, batch, steps)
        res = {"train_float32_b64_ms_per_step": round(1e3 * per_step, 2),
               "train_float32_examples_per_s": round(batch / per_step, 1),
               "loss_finite": bool(np.isfinite(history.history["loss"][-1]))}
        untraced(res, "train_float32_b64_untraced_ms_per_step", model, x, batch, steps)
        xb = x[:16]
        loaded = reload(model, "glow")
        res["reload_log_prob_max_diff"] = float(np.max(np.abs(_numpy(loaded.log_prob(xb)) - _numpy(model.log_prob(xb)))))
        model.sample(16, temperature=0.7)
        begin = _now()
        s = child.sync(model.sample(16, temperature=0.7))
        res["sample16_s"] = round(_now() - begin, 4)
        res["sample_finite"] = bool(np.all(np.isfinite(_numpy(s))))
        res["roundtrip_max_err"] = float(np.max(np.abs(_numpy(model.decode(model.encode(xb))) - xb)))
        if B == "jax":
            import jax

            with jax.default_matmul_precision("highest"):
                res["roundtrip_max_err_highest"] = float(np.max(np.abs(_numpy(model.decode(model.encode(xb))) - xb)))
        res["bits_per_dim"] = round(model.bits_per_dim(xb, ANIMAL_LEVELS), 3)
        return res

    def unet_flops():
        """A U-Net where the GPU can be busy: channels 128 at 64×64, batch 256 (less where the device's free memory
        is short, `_largest_fitting`); XLA's FLOP count of the compiled step over its measured time."""
        import jax

        from kgen.diffusion import UNet

        size, channels, reps = (16, 8, 2) if dry else (64, 128, 10)
        batches = (4,) if dry else FLOPS_BATCHES
        mults = (1,) if dry else (1, 2, 2)  # dry: one level (the eager build and the compile dominate on a CPU)
        res = {}
        for policy in ("float32",) if dry else ("float32", "mixed_bfloat16"):
            _policy(policy)
            net = UNet((size, size, 3), channels=channels, channel_mults=mults, attention_resolutions=())
            net([keras.ops.zeros((1, size, size, 3)), keras.ops.zeros((1,))])
            optimizer = keras.optimizers.Adam(1e-4)
            optimizer.build(net.trainable_variables)

            def loss_fn(trainable, non_trainable, x, lam, eps):
                out, non_trainable = net.stateless_call(trainable, non_trainable, [x, lam], training=True)
                return jax.numpy.mean(jax.numpy.square(out.astype("float32") - eps)), non_trainable

            def step(trainable, non_trainable, opt_vars, x, lam, eps):
                (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                    trainable, non_trainable, x, lam, eps)
                trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
                return trainable, non_trainable, opt_vars, loss

            state = ([v.value for v in net.trainable_variables], [v.value for v in net.non_trainable_variables],
                     [v.value for v in optimizer.variables])

            def compile_at(batch):
                images = jax.ShapeDtypeStruct((batch, size, size, 3), "float32")
                lowered = jax.jit(step, donate_argnums=(0, 1, 2)).lower(
                    *state, images, jax.ShapeDtypeStruct((batch,), "float32"), images)
                compiled = lowered.compile()
                return compiled, _bytes_needed(compiled)

            free = _free_device_bytes()
            batch, compiled, tried = _largest_fitting(batches, compile_at, free)
            cost = compiled.cost_analysis()
            cost = cost[0] if isinstance(cost, (list, tuple)) else cost
            flops = float(cost.get("flops", float("nan")))
            keys = jax.random.split(jax.random.PRNGKey(0), 3)
            data = (jax.random.normal(keys[0], (batch, size, size, 3)), jax.random.normal(keys[1], (batch,)),
                    jax.random.normal(keys[2], (batch, size, size, 3)))
            *state, loss = compiled(*state, *data)
            jax.block_until_ready(loss)
            begin = _now()
            for _ in range(reps):
                *state, loss = compiled(*state, *data)
            jax.block_until_ready(loss)
            seconds = (_now() - begin) / reps
            res[policy] = {"batch": batch, "flops_per_step": flops, "ms_per_step": round(1e3 * seconds, 2),
                           "tflops": round(flops / seconds / 1e12, 2), "loss": float(loss),
                           "params": int(sum(np.prod(v.shape) for v in net.trainable_variables)),
                           "free_bytes": free, "tried": tried}
            del compiled, data
            _policy("float32")
        res["shape"] = f"{size}x{size}x3, channels {channels}, mults {mults} (batch per policy)"
        # The denominator, measured on this device (an H100 and an H200 differ): a bf16 n×n×n matmul's TFLOP/s.
        n = 256 if dry else 8192
        a = jax.random.normal(jax.random.PRNGKey(3), (n, n), "bfloat16")
        b = jax.random.normal(jax.random.PRNGKey(4), (n, n), "bfloat16")
        matmul = jax.jit(lambda a, b: a @ b)
        jax.block_until_ready(matmul(a, b))
        begin = _now()
        for _ in range(reps):
            c = matmul(a, b)
        jax.block_until_ready(c)
        peak = 2.0 * n**3 / ((_now() - begin) / reps) / 1e12
        res["bf16_matmul"] = {"n": n, "tflops": round(peak, 3)}
        for policy in ("float32", "mixed_bfloat16"):
            if policy in res:
                res[policy]["fraction_of_bf16_matmul"] = round(res[policy]["tflops"] / peak, 4)
        return res

    case("precision", precision)
    if B == "jax":
        case("unet_training_flops", unet_flops)
    case("diffusion_unet", diffusion)
    if B == "torch":
        case("torch_fit_profile", torch_profile)
    case("gan_selfmod_sn_attention", gan)
    case("flows_glow", flows)
    case("text_unilm", text)
    if B == "torch":  # last: minutes of compiling, only when named
        case("torch_jit_compile_profile", lambda: torch_profile(jit_compile=True), named_only=True)
    child.record["all_ok"] = all(r.get("ok") for r in child.record["cases"].values())
    child.save()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def fit_steps(n, batch):
    """The optimizer steps of one `fit` epoch over n examples: Keras runs the last, partial batch too."""
    return -(-n // batch)


class _Deadline:
    """A keras callback factory: stop `fit` at the end of the epoch where the deadline has passed."""

    @staticmethod
    def make(deadline):
        import keras

        class Deadline(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if _now() > deadline:
                    self.model.stop_training = True

        return Deadline()


def train(args):
    import keras
    import numpy as np

    import kgen

    family, _, spec = args.job.partition(":")
    stem = "train_" + job_stem(args.job)
    child = Child(os.path.join(args.work, stem + ".json"), _deadline(args), args.dry_run)
    dry, record = args.dry_run, child.record
    record.update(job=args.job, milestones=[], epochs=[], steps=0)
    milestones = DRY_MILESTONES if dry else (GAN_MILESTONES if family == "gan" else DIFFUSION_MILESTONES)
    from kgen.datasets import ANIMAL_LEVELS, dequantize, load_animals

    train_images = load_animals("train")[0]
    test_images = load_animals("test")[0]
    if family == "diffusion" and spec.startswith("patches"):
        train_images = _patch_images()
    if dry:
        train_images, test_images = train_images[:256], test_images[:64]
    out_stem = os.path.join(args.work, job_stem(args.job))

    if family == "gan":
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
        from bench_gans_animals import build_gan, describe, recipe_of

        variant, seed, recipe_name = (spec.split(":") + ["equal"])[:3]
        recipe = recipe_of(recipe_name)
        # The average of G's weights starts moving at the first milestone (until then it is a copy of G).
        ema = dict(ema_decay=args.gan_ema or None, ema_start=milestones[0] if args.gan_ema else 0)
        model = build_gan(variant, int(seed), recipe, 64, 8 if dry else 32, **ema)
        batch = 64
        x = train_images.astype("float32") / 127.5 - 1.0
        record.update(variant=variant, seed=int(seed), batch_size=batch, width=8 if dry else 32, loss="hinge",
                      recipe=recipe, optimizer=describe(recipe), **ema)

        def data(epoch):
            return x

        def save_milestone(steps):  # the live G, and the average with its standing statistics (fit's end)
            model.generator.save_weights(f"{out_stem}_g{steps}.weights.h5")
            if model.ema is not None and steps > ema["ema_start"]:  # until then a copy of G
                model.averaged_generator().save_weights(f"{out_stem}_ema_g{steps}.weights.h5")

        def final():  # the whole GAN (critic and optimizer states too) where a shipped model may come from it
            if ships_whole_gan(variant, seed):
                model.save(out_stem + "_final.keras")
            save_milestone(record["steps"])

        grid = lambda: model.generate(64)  # noqa: E731
    elif family == "diffusion":
        from kgen.app import presets
        from kgen.diffusion.guidance import average_pool

        x = train_images.astype("float32") / 127.5 - 1.0
        if spec in ("14", "patches16"):
            x = keras.ops.convert_to_numpy(average_pool(x, 2))
        kgen.set_seed(0)
        channels, mults = (8, (1,)) if dry else (16, (1, 2))
        shift = 2 if spec.endswith("shifted") else None
        model = presets.diffusion_model(x, seed=0, schedule_shift=shift, channels=channels, channel_mults=mults)
        batch = 24 if dry else 128  # neither divides its data (256, 8000): the last batch of an epoch is partial
        record.update(model=spec, image_shape=list(x.shape[1:]), batch_size=batch, channels=channels,
                      channel_mults=mults, schedule_shift=shift, ema_decay=0.995,
                      optimizer="Adam(5e-4)")  # tools/gpu_import.py rebuilds the model from these

        def data(epoch):
            return x

        def save_milestone(steps):
            model.save_weights(f"{out_stem}_s{steps}.weights.h5")

        if args.resume:  # weights, EMA and Adam's moments; the steps go on from the file's
            path = resume_file(args.resume, args.job)
            model.build()
            model.optimizer.build(model.trainable_variables)
            model.load_weights(path)
            record.update(steps=_milestone_steps(path), resumed_from=os.path.basename(path))

        def final():  # the network, its EMA and the optimizer state (a later call's --resume goes on from it)
            model.save_weights(f"{out_stem}_s{record['steps']}.weights.h5")

        grid = lambda: model.sample(64, steps=5 if dry else 50, seed=0)  # noqa: E731
    elif family == "glow":
        from kgen.flows import Glow

        kgen.set_seed(0)
        depth, filters = (2, 8) if dry else (8, 64)
        model = Glow((28, 28, 1), levels=2, depth=depth, filters=filters, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        batch = 16 if dry else 64
        x_test = dequantize(test_images, ANIMAL_LEVELS, seed=10_000)
        record.update(batch_size=batch, image_shape=[28, 28, 1], depth=depth, filters=filters, levels=2,
                      optimizer="Adam(1e-3)", n_test=len(x_test), best_test_bits_per_dim=None)
        milestones = ()
        best_file = out_stem + "_best.weights.h5"  # the best test bits/dim so far (resumed, or an epoch's)

        def data(epoch):
            return dequantize(train_images, ANIMAL_LEVELS, seed=epoch)

        if args.resume:  # weights and Adam's state (the one-batch fit builds the optimizer they load into)
            model.fit(data(0)[:batch], batch_size=batch, epochs=1, verbose=0)  # builds (actnorm init), then replaced
            path = resume_file(args.resume, args.job)
            model.load_weights(path)
            resumed = round(model.bits_per_dim(x_test, ANIMAL_LEVELS), 4)
            # The steps go on from Adam's counter, and the file is the best so far: a continued run that only gets
            # worse still leaves it as glow_animals_best.weights.h5 (what gpu_import and a later --resume read).
            record.update(resumed_from=os.path.basename(path), resumed_test_bits_per_dim=resumed,
                          steps=int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
                          best_test_bits_per_dim=resumed)
            record["best_epoch"] = record["steps"] // fit_steps(len(train_images), batch)
            model.save_weights(best_file)

        def save_milestone(steps):
            pass

        def final():
            pass

        grid = lambda: keras.ops.clip(model.sample(64, temperature=0.7), 0.0, 1.0)  # noqa: E731
    else:
        raise SystemExit(f"unknown job {args.job}")

    steps_per_epoch = fit_steps(len(train_images), batch)
    record["steps_per_epoch"] = steps_per_epoch
    margin = 20 if dry else 40  # room to save the weights and draw the grid
    stop = _Deadline.make(child.deadline - margin)
    begin = _now()
    targets = [m for m in milestones if m > record["steps"]] + [10**9]  # a resumed run is past some
    epoch = record["steps"] // steps_per_epoch  # a resumed run's epochs (and Glow's dequantization seeds) go on
    for target in targets:
        stopped = False
        while record["steps"] < target:
            epochs = 1 if family == "glow" else max(1, (target - record["steps"]) // steps_per_epoch)
            history = model.fit(data(epoch), batch_size=batch, epochs=epochs, verbose=0, shuffle=True,
                                callbacks=[stop])
            ran = len(history.epoch)
            epoch += ran
            record["steps"] += ran * steps_per_epoch
            losses = {k: float(v[-1]) for k, v in history.history.items()}
            record["last"] = losses
            record["epochs"].append({"epoch": epoch, "steps": record["steps"], "s": round(_now() - begin, 1), **losses})
            if not all(np.isfinite(v) for v in losses.values()):
                record["nan"] = True
                stopped = True
                break
            if family == "glow":
                bpd = model.bits_per_dim(x_test, ANIMAL_LEVELS)
                record["epochs"][-1]["test_bits_per_dim"] = round(bpd, 4)
                if record["best_test_bits_per_dim"] is None or bpd < record["best_test_bits_per_dim"]:
                    record["best_test_bits_per_dim"] = round(bpd, 4)
                    record["best_epoch"] = epoch
                    model.save_weights(best_file)
            record["train_s"] = round(_now() - begin, 1)
            child.save()
            if model.stop_training or _now() > child.deadline - margin:
                stopped = True
                break
        saved = [m["steps"] for m in record["milestones"]]
        if record["steps"] >= target and target < 10**9 and record["steps"] not in saved:
            save_milestone(record["steps"])
            record["milestones"].append({"steps": record["steps"], "s": round(_now() - begin, 1)})
            child.save()
        if stopped:
            break
    record["train_s"] = round(_now() - begin, 1)
    final()
    child.save()
    try:
        if child.left() < margin / 2:
            raise TimeoutError(f"{child.left():.0f} s left")
        from kgen.images import save_grid

        images = _numpy(grid())
        low = 0.0 if family == "glow" else -1.0
        save_grid(os.path.join(args.work, stem + ".png"), np.clip((images - low) / (1.0 - low), 0, 1), scale=2)
    except Exception as error:  # noqa: BLE001 - the grid is a picture, not a result
        record["grid_error"] = f"{type(error).__name__}: {error}"[:400]
    record["all_ok"] = not record.get("nan", False)
    child.save()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="output folder (default $OUT, else build/gpu_check)")
    parser.add_argument("--wheels", default=None, help="folder of carried wheels (tools/gpu_wheels.sh)")
    parser.add_argument("--dry-run", action="store_true", help="the same code path on the CPU at tiny sizes")
    parser.add_argument("--budget", type=int, default=None, help="seconds for the whole run (default 520; dry 150)")
    parser.add_argument("--smoke-budget", type=int, default=None, help="seconds for phase 2 (default 150; dry 75)")
    parser.add_argument("--pack-s", type=int, default=None, help="seconds kept for packing (default 25; dry 10)")
    parser.add_argument("--backends", default="jax,torch")
    parser.add_argument("--train", default="gans,diffusion,glow", help="gans,diffusion,glow,patches or none")
    parser.add_argument("--prepare-patches", action="store_true", help="write build/gpu_patches.npz (the patch "
                        "jobs' data; needs scikit-image, so run it here) and exit")
    parser.add_argument("--seeds", default="0,1", help="GAN seeds")
    parser.add_argument("--gan-recipe", default="equal", choices=GAN_RECIPES, help="the GAN jobs' optimizer recipe "
                        "(benchmarks/bench_gans_animals.py: equal = Adam(2e-4, 0.5) both, ttur = SAGAN's)")
    parser.add_argument("--jobs", default=None, help="explicit training jobs (e.g. diffusion:14,glow:animals), "
                        "instead of those of --train")
    parser.add_argument("--cases", default=None, help="smoke cases to run (default all)")
    parser.add_argument("--parallel", action="store_true", help="smoke tests side by side with the training "
                        "(their timings are then shared-GPU numbers)")
    parser.add_argument("--gan-ema", type=float, default=0.999, help="the GAN jobs keep an average of G's weights "
                        "with this decay from the first milestone on, saved beside G at each milestone "
                        "(..._ema_g<steps>, standing BatchNorm statistics); 0: none")
    parser.add_argument("--train-xla-flags", default=None, help="XLA_FLAGS of the training children (e.g. "
                        "--xla_gpu_autotune_level=0: compile fast when many processes share the GPU)")
    parser.add_argument("--resume", default=None, help="folder with weights to start from (an earlier call's, "
                        "unpacked): glow_animals_best.weights.h5 and each diffusion job's latest "
                        "diffusion_<spec>_s<steps>.weights.h5, whose step counts it goes on from; GAN jobs start "
                        "afresh")
    parser.add_argument("--child", choices=["smoke", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)   # time.monotonic() to stop at
    parser.add_argument("--deadline-s", type=float, help=argparse.SUPPRESS)  # or seconds from now
    args = parser.parse_args(argv)
    if args.prepare_patches:
        prepare_patches()
        return 0
    if args.child:
        return smoke(args) if args.child == "smoke" else train(args)
    defaults = (150, 75, 10) if args.dry_run else (520, 150, 25)
    args.budget = args.budget or defaults[0]
    args.smoke_budget = args.smoke_budget or defaults[1]
    args.pack_s = args.pack_s or defaults[2]
    for name in ("budget", "smoke_budget", "pack_s"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0")
    if not 0.0 <= args.gan_ema < 1.0:
        parser.error(f"--gan-ema must be in [0, 1), got {args.gan_ema}")
    if args.smoke_budget >= args.budget:
        parser.error("--smoke-budget must be below --budget")
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
