"""tools/gpu_check.py: the one prepared GPU run, checked here on the CPU.

`--dry-run` runs the run's own code path (orchestrator, smoke children, training children, packing) at tiny
sizes; the other tests cover its pure-Python pieces without a subprocess.
"""

import json
import os
import subprocess
import sys
import tarfile
import time

import keras
import numpy as np
import pytest
from repo_scripts import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "gpu_check.py")
# The dry run's smoke phase runs three of its cases (the GAN, Glow and UniLM ones would need about a minute more
# on 2 cores) and ends when they do, at most 15 s past SMOKE_BUDGET; the three training children share the rest
# of BUDGET, and the run ends at most ~20 s past it.
CASES = "precision,unet_training_flops,diffusion_unet"
BUDGET, SMOKE_BUDGET = 140, 70
DRY_JOBS = {"gan:+selfmod:0": "gan_selfmod_0_", "diffusion:14": "diffusion_14_", "glow:animals": "glow_animals_"}


def _gpu_check():
    return load_script("tools/gpu_check.py")


def _resumed_train_child(job, resume, work, seconds):
    """Runs the dry training child of `job --resume resume` on JAX-CPU for about `seconds`: (its record, stderr)."""
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, SCRIPT, "--child", "train", "--job", job, "--work", str(work),
                           "--dry-run", "--deadline", repr(time.monotonic() + seconds), "--resume", str(resume)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(os.path.join(work, f"train_{_gpu_check().job_stem(job)}.json")) as handle:
        return json.load(handle), done.stderr


def test_train_jobs_refuse_an_unknown_family_by_name():
    gpu_check = _gpu_check()
    with pytest.raises(SystemExit, match="vae"):
        gpu_check.train_jobs(["gans", "vae"], [0])
    assert gpu_check.train_jobs(["glow", "gans"], [0], dry_run=True) == ["gan:+selfmod:0", "glow:animals"]
    assert len(gpu_check.train_jobs(["gans", "diffusion", "glow"], [0, 1])) == 7 * 2 + 3 + 1


def test_a_bad_explicit_job_stops_the_run_before_any_work(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="--jobs: 'diffusion:32' is none of"):
        _gpu_check().main(["--dry-run", "--jobs", "gan:sndcgan:0,diffusion:32", "--out", str(out)])
    assert not out.exists()


def test_patch_jobs_and_their_data_file(tmp_path, monkeypatch):
    """`--train patches` gives the three issue-18 U-Nets; `--prepare-patches` writes the crops they train on (the
    GPU machine has no scikit-image) and the children read that file."""
    gpu_check = _gpu_check()
    assert gpu_check.train_jobs(["patches"], [0]) == ["diffusion:patches16", "diffusion:patches32",
                                                      "diffusion:patches32shifted"]
    path = str(tmp_path / "patches.npz")
    monkeypatch.setattr(gpu_check, "PATCHES_FILE", path)
    gpu_check.prepare_patches(path)
    import kgen

    expected = kgen.datasets.load_patches("train", size=32)[0]
    np.testing.assert_array_equal(gpu_check._patch_images(), expected)


def test_smoke_budget_must_be_below_the_budget(capsys):
    gpu_check = _gpu_check()
    with pytest.raises(SystemExit) as error:
        gpu_check.main(["--dry-run", "--budget", "100", "--smoke-budget", "100"])
    assert error.value.code == 2
    assert "--smoke-budget must be below --budget" in capsys.readouterr().err


def test_the_flops_case_takes_the_largest_batch_that_fits_the_free_memory():
    """`unet_training_flops` compiles its step at 256, 128, ... until XLA's memory analysis of it fits a share of
    the GPU's free memory (on an 80 GB H100 beside the training children, batch 256's ~51 GiB would not)."""
    gpu_check = _gpu_check()
    calls = []

    def compile_at(batch):  # 0.2 GiB per example, as the wide U-Net's f32 step on the CPU
        calls.append(batch)
        return f"step at {batch}", int(batch * 0.2 * 2**30)

    batches = (256, 128, 64, 32)
    batch, compiled, tried = gpu_check._largest_fitting(batches, compile_at, 40 * 2**30, share=0.7)
    assert (batch, compiled) == (128, "step at 128") and calls == [256, 128]  # 51.2 GiB > 28, 25.6 ≤ 28
    assert [t["batch"] for t in tried] == [256, 128] and tried[0]["bytes_needed"] > 0.7 * 40 * 2**30
    calls.clear()
    assert gpu_check._largest_fitting(batches, compile_at, 100 * 2**30, share=0.7)[0] == 256  # room: the first
    assert gpu_check._largest_fitting(batches, compile_at, None)[0] == 256  # no GPU figure: the first
    assert gpu_check._largest_fitting(batches, lambda b: (b, None), 2**30)[0] == 256  # no analysis: the first
    with pytest.raises(ValueError, match=r"no batch of \[256, 128, 64, 32\] fits 0.6 of the device's 1.0 GiB free"):
        gpu_check._largest_fitting(batches, compile_at, 2**30, share=0.6)


@pytest.mark.jax
def test_bytes_needed_reads_xla_memory_analysis_of_a_compiled_step():
    import jax

    gpu_check = _gpu_check()
    step = jax.jit(lambda a, b: (a @ b, (a @ b).sum()), donate_argnums=0)
    small = gpu_check._bytes_needed(step.lower(np.ones((64, 64), "float32"), np.ones((64, 64), "float32")).compile())
    big = gpu_check._bytes_needed(step.lower(np.ones((512, 64), "float32"), np.ones((64, 64), "float32")).compile())
    assert small >= 64 * 64 * 4 * 2 and big > 4 * small  # the arguments at least; grows with the batch
    assert gpu_check._bytes_needed(object()) is None  # no analysis: None, and the case takes its first batch
    if jax.devices()[0].platform == "cpu":
        assert gpu_check._free_device_bytes() is None  # no GPU figure: the first batch


def _fake(work, name, size):
    with open(os.path.join(work, name), "wb") as handle:
        handle.write(b"\0" * size)


def test_every_self_modulated_variant_keeps_its_whole_final_gan_for_seed_0():
    """The shipped SELF-MOD models are whole GANs (critic too): each self-modulated job's seed 0 saves one, on the
    article's path and on the SNDCGAN critic's (the prepared call trains only the latter)."""
    ships = _gpu_check().ships_whole_gan
    for variant in ("+selfmod", "dcgan+selfmod", "sndcgan+selfmod", "sndcgan+attention+selfmod"):
        assert ships(variant, "0") and ships(variant, 0), variant
        assert not ships(variant, "1"), variant
    for variant in ("dcgan", "+sn", "+attention", "sndcgan", "sndcgan+attention"):
        assert not ships(variant, "0"), variant


def test_pack_weights_puts_finals_and_bests_first_within_the_tar_limits(tmp_path):
    gpu_check = _gpu_check()
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    for name in ("diffusion_14_s2.weights.h5", "diffusion_14_s8.weights.h5", "diffusion_14_s4.weights.h5",
                 "gan_selfmod_0_g4.weights.h5", "gan_selfmod_0_final.keras", "glow_animals_best.weights.h5"):
        _fake(work, name, 300)
    _fake(work, "diffusion_28_s16.weights.h5", 800)  # larger than a tar: never packed
    _fake(work, "notes.txt", 10)  # not weights
    left = gpu_check._pack_weights(str(work), str(out), tars=2, per_tar=700)

    tars = sorted(os.listdir(out))
    assert tars == ["weights0.tar", "weights1.tar"]
    packed = {}
    for name in tars:
        with tarfile.open(out / name) as tar:
            members = tar.getmembers()
        assert sum(m.size for m in members) <= 700
        packed.update({m.name: name for m in members})
    assert packed["gan_selfmod_0_final.keras"] == packed["glow_animals_best.weights.h5"] == "weights0.tar"
    # then each job's latest weights, while they fit; the oversized file is never packed
    assert set(packed) == {"gan_selfmod_0_final.keras", "glow_animals_best.weights.h5",
                           "diffusion_14_s8.weights.h5", "gan_selfmod_0_g4.weights.h5"}
    assert left == ["diffusion_28_s16.weights.h5", "diffusion_14_s4.weights.h5", "diffusion_14_s2.weights.h5"]


def test_pack_order_keeps_the_milestone_every_job_reached_before_the_later_ones_of_the_fast_jobs(tmp_path):
    """A fast job's later milestones make no table (the slow jobs lack them): when the tars are full they go
    before the last milestone every job of the family reached, which is an equal-budget comparison."""
    gpu_check = _gpu_check()
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    runs = {"gan_dcgan_0": (2, 4, 8, 16, 20), "gan_dcgan_1": (2, 4, 8, 16, 19), "gan_selfmod_0": (2, 4, 6),
            "diffusion_14": (2, 4, 8, 9), "diffusion_28": (2, 3)}  # milestones ..., then the final steps
    for job, steps in runs.items():
        for i, n in enumerate(steps):
            _fake(work, f"{job}_{'s' if job.startswith('diffusion') else 'g'}{n}.weights.h5", 100)
            if job.startswith("gan") and i:
                _fake(work, f"{job}_ema_g{n}.weights.h5", 100)
    _fake(work, "gan_selfmod_0_final.keras", 100)
    order = [os.path.basename(p) for p in gpu_check._pack_order(sorted(str(p) for p in work.iterdir()))]
    assert order[0] == "gan_selfmod_0_final.keras"
    latest = {"gan_dcgan_0_g20", "gan_dcgan_0_ema_g20", "gan_dcgan_1_g19", "gan_dcgan_1_ema_g19", "gan_selfmod_0_g6",
              "gan_selfmod_0_ema_g6", "diffusion_14_s9", "diffusion_28_s3"}
    assert {name.split(".")[0] for name in order[1:9]} == latest
    # the milestones every job of the family reached: the GANs' 4 (G and average) and 2 (G only), diffusion's 2
    assert [name.split(".")[0] for name in order[9:15]] == [
        "gan_dcgan_0_ema_g4", "gan_dcgan_0_g4", "gan_dcgan_1_ema_g4", "gan_dcgan_1_g4", "gan_selfmod_0_ema_g4",
        "gan_selfmod_0_g4"]
    assert {name.split(".")[0] for name in order[15:20]} == {
        "diffusion_14_s2", "diffusion_28_s2", "gan_dcgan_0_g2", "gan_dcgan_1_g2", "gan_selfmod_0_g2"}
    rest = [name.split(".")[0] for name in order[20:]]  # then the fast jobs' later milestones, the latest first
    assert rest[:4] == ["gan_dcgan_0_ema_g16", "gan_dcgan_0_g16", "gan_dcgan_1_ema_g16", "gan_dcgan_1_g16"]
    assert len(order) == len(os.listdir(work))

    left = gpu_check._pack_weights(str(work), str(out), tars=2, per_tar=800)  # 16 of the files
    assert "gan_dcgan_0_g16.weights.h5" in left and "gan_selfmod_0_g4.weights.h5" not in left


# A stand-in smoke child: takes its time, then writes its result where a real one does.
FAKE_SMOKE = """
import json, os, sys, time
time.sleep(float(sys.argv[1]))
with open(os.path.join(sys.argv[2], "smoke_" + os.environ["KERAS_BACKEND"] + ".json"), "w") as f:
    json.dump({"all_ok": True, "cases": {}}, f)
"""


@pytest.mark.parametrize("jobs", [[], ["glow:animals"]])
def test_parallel_smoke_children_keep_their_own_deadline_when_training_ends_first(tmp_path, monkeypatch, jobs):
    """`--parallel`: if every training child ends early (none asked for, or all crashed on the GPU), the smoke
    children, which hold the TFLOP/s case and the profiles, still run to their own deadline (they were killed at
    once before)."""
    gpu_check = _gpu_check()
    monkeypatch.setattr(gpu_check, "ROOT", str(tmp_path))  # its work folder; the repository's stays untouched
    spawned = []

    def spawn(args, env, log_path):
        log = open(log_path, "w")
        if args[:2] == ["--child", "smoke"]:
            cmd = [sys.executable, "-c", FAKE_SMOKE, "3", args[args.index("--work") + 1]]
        else:  # a training child that fails at once
            cmd = [sys.executable, "-c", "raise SystemExit(3)"]
        spawned.append(args[1])
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log

    monkeypatch.setattr(gpu_check, "_spawn", spawn)
    out = tmp_path / "out"
    job_args = ["--jobs", ",".join(jobs)] if jobs else ["--train", "none"]
    code = gpu_check.main(["--dry-run", "--parallel", "--backends", "jax,torch", "--budget", "60",
                           "--smoke-budget", "30", "--out", str(out)] + job_args)
    with open(out / "results.json") as handle:
        results = json.load(handle)
    assert spawned == ["smoke", "smoke"] + ["train"] * len(jobs)
    assert results["smoke_rc"] == {"jax": 0, "torch": 0}, results
    assert set(results["smoke"]) == {"smoke_jax", "smoke_torch"}
    assert results["train_rc"] == {job: 3 for job in jobs}
    assert code == 0
    assert results["total_s"] < 20  # waited for the smoke children, not for the budget


@pytest.mark.jax  # ~2.5 minutes; once is enough
def test_dry_run_smokes_trains_and_packs_every_family(tmp_path):
    backend = keras.backend.backend()
    out = tmp_path / "out"
    env = dict(os.environ, KERAS_BACKEND=backend)
    begin = time.monotonic()
    done = subprocess.run([sys.executable, SCRIPT, "--dry-run", "--backends", backend, "--out", str(out),
                           "--budget", str(BUDGET), "--smoke-budget", str(SMOKE_BUDGET), "--cases", CASES],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=BUDGET + 120, check=False)
    seconds = time.monotonic() - begin
    report = f"rc={done.returncode} after {seconds:.0f} s\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"

    assert (out / "results.json").exists(), report
    assert done.returncode == 0, report  # every smoke case passed
    with open(out / "results.json") as handle:
        results = json.load(handle)
    assert results["dry_run"] is True
    assert len(os.listdir(out)) <= 8
    assert sorted(results["out_files"]) == sorted(os.listdir(out))

    cases = results["smoke"][f"smoke_{backend}"]["cases"]
    assert cases, report
    failed = {name: case["error"] for name, case in cases.items()
              if case["ok"] is False and case["error"] != "skipped: out of time"}
    assert failed == {}, report
    for name in CASES.split(","):
        assert cases.get(name, {}).get("ok") is True, f"{name} did not run and pass\n{report}"
    flops = cases["unet_training_flops"]  # the U-Net's TFLOP/s over a bf16 matmul's, both measured in the child
    assert flops["bf16_matmul"]["tflops"] > 0, flops
    assert flops["float32"]["fraction_of_bf16_matmul"] == pytest.approx(
        flops["float32"]["tflops"] / flops["bf16_matmul"]["tflops"], rel=0.05, abs=1e-4), flops

    names = []
    for path in sorted(out.glob("weights*.tar")):
        with tarfile.open(path) as tar:
            names += tar.getnames()
    for job, prefix in DRY_JOBS.items():
        record = results["train"]["train_" + job.replace(":", "_").replace("+", "")]
        assert record.get("epochs"), f"{job} finished no epoch\n{report}"
        assert not record.get("nan"), job
        assert any(n.startswith(prefix) for n in names), f"no weights of {job} in {names}"
    gan = results["train"]["train_gan_selfmod_0"]
    assert gan["ema_decay"] == 0.999 and gan["ema_start"] == 2, gan
    assert any(n.startswith("gan_selfmod_0_ema_g") for n in names), f"no averaged generator in {names}"
    assert "gan_selfmod_0_final.keras" in names, names  # the whole GAN a shipped SELF-MOD model comes from
    assert seconds < BUDGET + 30, report
    _check_import(out, tmp_path / "imported", results, names)


def _check_import(out, to, results, packed):
    """tools/gpu_import.py on the dry run's output: models the benchmarks load, Glow's bits/dim re-measured."""
    gpu_import = load_script("tools/gpu_import.py")
    assert gpu_import.main([str(out), str(to)]) == 0
    with open(to / "import.json") as handle:
        models = {m["file"]: m for m in json.load(handle)["models"]}
    diffusion = results["train"]["train_diffusion_14"]
    assert models["diffusion14_animals.keras"]["steps"] == diffusion["steps"]  # the latest weights
    glow = models["glow_animals.keras"]  # re-measured here, on the same CPU (other XLA flags in the child)
    assert glow["test_bits_per_dim_here"] == pytest.approx(glow["test_bits_per_dim_recorded"], abs=1e-3), glow
    assert set(models) == {"diffusion14_animals.keras", "glow_animals.keras", "gan_selfmod_0.keras"}
    assert sorted(os.listdir(to / "weights")) == sorted(packed)  # every packed file, for --load and --resume
    unet = keras.saving.load_model(to / "diffusion14_animals.keras", safe_mode=True)
    assert getattr(unet, "optimizer", None) is None  # written without optimizer state
    assert bool(keras.ops.all(keras.ops.isfinite(unet.sample(2, steps=3, seed=0))))
    keras.saving.load_model(to / "glow_animals.keras", safe_mode=True)
    whole = keras.saving.load_model(to / "gan_selfmod_0.keras", safe_mode=True)  # from gan_selfmod_0_final.keras
    assert whole.discriminator.built and whole.generator.built
    assert bool(keras.ops.all(keras.ops.isfinite(whole.generate(2))))
    with pytest.raises(SystemExit, match="already has diffusion14_animals.keras"):  # nothing replaced by default
        gpu_import.main([str(out), str(to)])
    # negative controls: the rebuild checks bite
    glow = dict(results["train"]["train_glow_animals"], best_test_bits_per_dim=9.0)
    with pytest.raises(SystemExit, match="Glow rebuilt here gives .* the GPU child recorded 9.0"):
        gpu_import.rebuild(glow, str(to / "weights" / "glow_animals_best.weights.h5"))
    wider = dict(diffusion, channels=2 * diffusion["channels"])
    with pytest.raises(SystemExit, match="does not fit the model rebuilt from results.json"):
        gpu_import.rebuild(wider, str(to / "weights" / models["diffusion14_animals.keras"]["from"]))


def test_import_plan_names_the_models_as_the_benchmarks_load_them_and_refuses_what_it_cannot_rebuild():
    plan = load_script("tools/gpu_import.py").plan

    def diffusion(spec, shift=None):
        return {"job": f"diffusion:{spec}", "image_shape": [32, 32, 3], "channels": 16, "channel_mults": [1, 2],
                "schedule_shift": shift}

    results = {"train": {"train_diffusion_patches32shifted": diffusion("patches32shifted", 2),
                         "train_diffusion_28": diffusion("28"), "train_diffusion_14": diffusion("14"),
                         "train_gan_sndcganselfmod_0": {"job": "gan:sndcgan+selfmod:0", "steps": 900},
                         "train_gan_selfmod_0_ttur": {"job": "gan:+selfmod:0:ttur", "steps": 700},
                         "train_gan_dcgan_0": {"job": "gan:dcgan:0", "steps": 1200}}}
    names = ["diffusion_28_s2000.weights.h5", "diffusion_28_s3000.weights.h5", "diffusion_28_s3500.weights.h5",
             "diffusion_patches32shifted_s2000.weights.h5", "diffusion_patches32shifted_s3000.weights.h5",
             "gan_sndcganselfmod_0_final.keras", "gan_sndcganselfmod_0_g900.weights.h5", "gan_dcgan_0_g1200.weights.h5",
             "gan_selfmod_0_ttur_final.keras"]
    todo = {name: (source, steps) for name, _, source, steps in plan(results, names)}
    assert todo == {"diffusion28_animals.keras": ("diffusion_28_s3500.weights.h5", 3500),  # no weights for 14
                    "diffusion32shifted_patches.keras": ("diffusion_patches32shifted_s3000.weights.h5", 3000),
                    "gan_sndcganselfmod_0.keras": ("gan_sndcganselfmod_0_final.keras", 900),
                    "gan_selfmod_0_ttur.keras": ("gan_selfmod_0_ttur_final.keras", 700)}  # another recipe's run
    at = {name: source for name, _, source, _ in plan(results, names, steps=2000)}
    assert at["diffusion28_animals.keras"] == "diffusion_28_s2000.weights.h5"
    with pytest.raises(SystemExit, match=r"--steps 3500: diffusion:patches32shifted has weights at \[2000, 3000\]"):
        plan(results, names, steps=3500)
    bad = {"train": {"train_diffusion_28shifted": diffusion("28shifted")}}  # the shift is not in the weights
    with pytest.raises(SystemExit, match="job diffusion:28shifted with schedule_shift None"):
        plan(bad, ["diffusion_28shifted_s2000.weights.h5"])
    old = {"train": {"train_diffusion_28": {"job": "diffusion:28", "channels": 16}}}
    with pytest.raises(SystemExit, match="has no image_shape"):
        plan(old, ["diffusion_28_s2000.weights.h5"])


def test_import_refuses_a_folder_without_results_before_writing_anything(tmp_path):
    with pytest.raises(SystemExit, match="OUT: no results.json"):
        load_script("tools/gpu_import.py").main([str(tmp_path), str(tmp_path / "to")])
    assert not (tmp_path / "to").exists()


def test_resume_takes_each_job_s_latest_weights_and_refuses_a_folder_without_them(tmp_path):
    gpu_check = _gpu_check()
    for name in ("diffusion_14_s2000.weights.h5", "diffusion_14_s16000.weights.h5", "diffusion_14_s8000.weights.h5",
                 "diffusion_28shifted_s4000.weights.h5", "glow_animals_best.weights.h5"):
        _fake(tmp_path, name, 10)
    assert gpu_check.resume_file(str(tmp_path), "diffusion:14") == str(tmp_path / "diffusion_14_s16000.weights.h5")
    assert gpu_check.resume_file(str(tmp_path), "diffusion:28shifted").endswith("diffusion_28shifted_s4000.weights.h5")
    assert gpu_check.resume_file(str(tmp_path), "glow:animals") == str(tmp_path / "glow_animals_best.weights.h5")
    assert gpu_check.resume_file(str(tmp_path), "gan:dcgan:0") is None  # GANs start afresh
    with pytest.raises(SystemExit, match=r"--resume: .* has no diffusion_28_s<steps>.weights.h5 for job diffusion:28"):
        gpu_check.resume_file(str(tmp_path), "diffusion:28")  # not the shifted model's weights
    os.remove(tmp_path / "glow_animals_best.weights.h5")
    with pytest.raises(SystemExit, match="has no glow_animals_best.weights.h5 for job glow:animals"):
        gpu_check.resume_file(str(tmp_path), "glow:animals")
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="has no diffusion_28_s<steps>"):  # before any work: no output folder
        gpu_check.main(["--dry-run", "--jobs", "diffusion:14,diffusion:28", "--resume", str(tmp_path),
                        "--out", str(out)])
    assert not out.exists()


@pytest.mark.jax  # ~45 s
def test_a_resumed_diffusion_job_goes_on_from_its_weights_and_steps(tmp_path):
    """The training child of `diffusion:14 --resume DIR` starts from DIR's latest weights (network, EMA, Adam) and
    counts on from their steps. Oracle: Adam's step counter in the weights it ends with is the child's step count,
    which includes the 336 steps of the file it resumed (without loading it, 336 fewer). The dry child's batch (24)
    does not divide its 256 images, as the real one (128) does not divide 8000: an epoch is 11 steps, the last one
    partial (counted as 10 before, which this check caught: 886 recorded for Adam's 941)."""
    import h5py

    from kgen.app import presets
    from kgen.datasets import load_animals
    from kgen.diffusion.guidance import average_pool

    x = load_animals("train")[0][:256].astype("float32") / 127.5 - 1.0
    x = keras.ops.convert_to_numpy(average_pool(x, 2))
    model = presets.diffusion_model(x, seed=0, channels=8, channel_mults=(1,))  # the dry run's U-Net
    model.fit(x, batch_size=16, epochs=21, verbose=0)
    assert int(model.optimizer.iterations) == 336
    resume, work = tmp_path / "resume", tmp_path / "work"
    resume.mkdir()
    work.mkdir()
    model.save_weights(str(resume / "diffusion_14_s336.weights.h5"))  # 21 epochs of 16 steps
    record, stderr = _resumed_train_child("diffusion:14", resume, work, 45)
    assert record["resumed_from"] == "diffusion_14_s336.weights.h5"
    assert record["epochs"][0]["steps"] > 336 and record["steps"] > 336, record["epochs"]
    assert record["milestones"] == []  # the dry milestones (2 … 32 steps) lie before 336
    assert "Skipping variable loading" not in stderr, stderr[-3000:]  # every variable found its value
    with h5py.File(work / f"diffusion_14_s{record['steps']}.weights.h5") as final:  # the next call's start
        assert int(final["optimizer/vars/0"][()]) == record["steps"]  # Adam's iterations


@pytest.mark.jax  # ~40 s
def test_a_resumed_glow_job_goes_on_from_its_steps_and_keeps_the_best_file(tmp_path):
    """The child of `glow:animals --resume DIR` counts its steps and epochs on from the file's Adam counter (so the
    dequantization seeds do not restart at epoch 0), and its best-so-far starts at the resumed file: the output's
    glow_animals_best.weights.h5 is the best of the resumed file and the epochs that followed, never an epoch worse
    than the file it came from. Before this, steps restarted at 0, epoch at 1, and the best at the first new epoch."""
    from kgen.datasets import ANIMAL_LEVELS, dequantize, load_animals
    from kgen.flows import Glow

    train = load_animals("train")[0][:256]
    x_test = dequantize(load_animals("test")[0][:64], ANIMAL_LEVELS, seed=10_000)  # the dry child's test set
    model = Glow((28, 28, 1), levels=2, depth=2, filters=8, seed=0)  # the dry child's Glow
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    for epoch in range(2):
        model.fit(dequantize(train, ANIMAL_LEVELS, seed=epoch), batch_size=16, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 32  # 2 epochs of 16 steps
    resume, work = tmp_path / "resume", tmp_path / "work"
    resume.mkdir()
    work.mkdir()
    model.save_weights(str(resume / "glow_animals_best.weights.h5"))
    resumed = model.bits_per_dim(x_test, ANIMAL_LEVELS)
    record, _ = _resumed_train_child("glow:animals", resume, work, 36)
    assert record["resumed_from"] == "glow_animals_best.weights.h5"
    assert record["resumed_test_bits_per_dim"] == pytest.approx(resumed, abs=1e-4)  # every variable loaded
    epochs = record["epochs"]
    assert epochs, record
    assert [row["epoch"] for row in epochs] == list(range(3, 3 + len(epochs)))  # on from the file's 2 epochs
    assert [row["steps"] for row in epochs] == [32 + 16 * k for k in range(1, len(epochs) + 1)]
    scores = [record["resumed_test_bits_per_dim"]] + [row["test_bits_per_dim"] for row in epochs]
    assert record["best_test_bits_per_dim"] == min(scores)
    assert record["best_epoch"] == 2 + scores.index(min(scores))
    # The file the best score belongs to, as gpu_import rebuilds it from the record (loaded strictly).
    best, checked = load_script("tools/gpu_import.py").rebuild(record, str(work / "glow_animals_best.weights.h5"))
    assert checked["test_bits_per_dim_here"] == pytest.approx(record["best_test_bits_per_dim"], abs=1e-4)
    assert int(best.optimizer.iterations) == 16 * record["best_epoch"]  # a later --resume counts on from it


@pytest.mark.torch
def test_the_torch_fit_profile_case_says_where_a_step_goes(tmp_path):
    """The torch smoke child's profile of the U-Net's `fit` (the H200 ran torch steps at 125–170 ms whatever the
    batch): per-step host and device time, the top ops, host reads and launches, and that the network traced."""
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, KERAS_BACKEND="torch")
    done = subprocess.run([sys.executable, SCRIPT, "--child", "smoke", "--work", str(work), "--dry-run",
                           "--deadline", repr(time.monotonic() + 240), "--cases", "torch_fit_profile"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(work / "smoke_torch.json") as handle:
        case = json.load(handle)["cases"]["torch_fit_profile"]
    assert case["ok"] is True, case
    assert case["ms_per_step"] > 0 and case["self_host_ms_per_step"] > 0, case
    names = [row[0] for row in case["top_self_host_ms"]]
    assert len(names) == 15 and any("convolution" in name for name in names), names
    assert case["top_self_device_ms"] == [] and case["kernel_launches_per_step"] == 0  # no GPU here
    assert case["host_reads_per_step"] >= 0 and case["syncs_per_step"] == case["copies_per_step"] == 0
    (network,) = case["traces"].values()
    assert network == {"traced": 1, "refused": 0}, case["traces"]
