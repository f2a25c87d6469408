"""Turn a `tools/gpu_check.py` output folder into what the benchmarks, `saved_models/` and a later call take.

    python tools/gpu_import.py OUT DIR [--steps N] [--overwrite]

OUT is the folder the GPU call wrote (`results.json`, `weights<i>.tar`); DIR gets:

- `weights/`: every packed weights file. `benchmarks/bench_gans_animals.py --load DIR/weights` scores the GAN
  milestones; `tools/gpu_check.py --resume DIR/weights` (carried) continues the diffusion and Glow jobs.
- `diffusion<name>_<data>.keras` per diffusion job (`diffusion14_animals.keras`, `diffusion32shifted_patches.keras`,
  …: the names `benchmarks/bench_upsample_guidance.py --load DIR` reads), from the job's latest weights or, with
  `--steps N`, from its milestone at N steps (the equal-budget comparison).
- `glow_animals.keras` from Glow's best weights, checked: its test bits/dim here must be the one the GPU child
  recorded (same test images, same dequantization noise) to `BITS_PER_DIM_TOLERANCE`, else nothing is written.
- `gan_<variant without "+">_<seed>[_<recipe>].keras` from each whole final GAN (`..._final.keras`, critic
  included).
- `import.json`: each model written, from which file, at how many steps, with the job's recorded settings.

Every model is rebuilt from its job's record in `results.json`, loaded strictly (a variable without a value in the
file is an error, not Keras's warning) and written without optimizer state (`kgen.export.save_for_inference`).
Bad arguments stop the run before anything is written; an existing model is not replaced without `--overwrite`.
"""

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_check  # noqa: E402 - its file naming (job_stem, diffusion_weights); it imports no Keras

ROOT = gpu_check.ROOT
# Glow's test bits/dim here against the GPU child's: a GPU computes float32 matmuls and convolutions TF32-class by
# default, so the two differ a little (the 2026-12-04 H200 Glow: 3.8855 there, 3.8870 here on the CPU); weights
# that did not load, or a model rebuilt otherwise, are off by far more.
BITS_PER_DIM_TOLERANCE = 0.01


def _fail(message):
    raise SystemExit(f"gpu_import: {message}")


def plan(results, names, steps=None):
    """[(output name, job record, weights file name, steps)] for the files `names` unpacked from a run's tars."""
    todo = []
    for key, record in sorted(results.get("train", {}).items()):
        family, _, spec = record.get("job", "").partition(":")
        if family == "diffusion":
            if "image_shape" not in record:
                _fail(f"{key} has no image_shape: results.json predates gpu_import (rebuild that model by hand)")
            if spec.endswith("shifted") != (record.get("schedule_shift") is not None):  # not in the weights
                _fail(f"{key}: job {record['job']} with schedule_shift {record.get('schedule_shift')}")
            files = gpu_check.diffusion_weights(names, record["job"])
            if not files:
                continue  # no weights came back (compiling took the whole budget, or they were left behind)
            at = max(files) if steps is None else steps
            if at not in files:
                _fail(f"--steps {steps}: {record['job']} has weights at {sorted(files)} steps only")
            data, name = ("patches", spec[len("patches"):]) if spec.startswith("patches") else ("animals", spec)
            todo.append((f"diffusion{name}_{data}.keras", record, files[at], at))
        elif family == "glow" and "glow_animals_best.weights.h5" in names:
            if "n_test" not in record:
                _fail(f"{key} has no n_test: results.json predates gpu_import (rebuild that model by hand)")
            todo.append(("glow_animals.keras", record, "glow_animals_best.weights.h5", None))
        elif family == "gan":
            stem = gpu_check.job_stem(record["job"])
            if stem + "_final.keras" in names:
                todo.append((stem + ".keras", record, stem + "_final.keras", record.get("steps")))
    return todo


def _load_strictly(model, path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except ValueError as error:  # Keras: variables of other shapes, or none for some layer
            _fail(f"{os.path.basename(path)} does not fit the model rebuilt from results.json: "
                  f"{str(error).splitlines()[0]}")
    skipped = [str(w.message) for w in caught if "Skipping variable loading" in str(w.message)]
    if skipped:
        _fail(f"{os.path.basename(path)} does not fit the model rebuilt from results.json: {skipped[0]}")


def rebuild(record, path):
    """The model of a job's `record` with the weights of `path` (a `.weights.h5`, or a whole `.keras` GAN), and
    what was checked beyond the strict load (Glow: its test bits/dim here and as recorded)."""
    import keras
    import numpy as np

    family = record["job"].split(":")[0]
    if family == "gan":
        return keras.saving.load_model(path, safe_mode=True), {}
    if family == "diffusion":
        from kgen.app import presets

        shape = tuple(record["image_shape"])
        model = presets.diffusion_model(np.zeros((1,) + shape, "float32"), seed=0,
                                        schedule_shift=record.get("schedule_shift"), channels=record["channels"],
                                        channel_mults=tuple(record["channel_mults"]))
        model.build()
        model.optimizer.build(model.trainable_variables)  # so the file's Adam state has somewhere to go
        _load_strictly(model, path)
        return model, {}
    from kgen.datasets import ANIMAL_LEVELS, dequantize, load_animals
    from kgen.flows import Glow

    model = Glow(tuple(record["image_shape"]), levels=record["levels"], depth=record["depth"],
                 filters=record["filters"], seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = dequantize(load_animals("train")[0][:record["batch_size"]], ANIMAL_LEVELS, seed=0)
    model.fit(x, batch_size=record["batch_size"], epochs=1, verbose=0)  # builds it (ActNorm's data init)
    _load_strictly(model, path)
    x_test = dequantize(load_animals("test")[0][:record["n_test"]], ANIMAL_LEVELS, seed=10_000)
    bpd = round(float(model.bits_per_dim(x_test, ANIMAL_LEVELS)), 4)
    if abs(bpd - record["best_test_bits_per_dim"]) > BITS_PER_DIM_TOLERANCE:
        _fail(f"Glow rebuilt here gives {bpd} test bits/dim, the GPU child recorded {record['best_test_bits_per_dim']}")
    return model, {"test_bits_per_dim_here": bpd, "test_bits_per_dim_recorded": record["best_test_bits_per_dim"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="the folder a tools/gpu_check.py call wrote")
    parser.add_argument("dir", help="where the weights and models go")
    parser.add_argument("--steps", type=int, default=None, help="the diffusion models at this milestone")
    parser.add_argument("--overwrite", action="store_true", help="replace models already in DIR")
    args = parser.parse_args(argv)
    results_path = os.path.join(args.out, "results.json")
    if not os.path.isfile(results_path):
        _fail(f"OUT: no results.json in {args.out} (the folder a tools/gpu_check.py call wrote)")
    if args.steps is not None and args.steps <= 0:
        _fail(f"--steps must be > 0, got {args.steps}")
    with open(results_path) as handle:
        results = json.load(handle)
    tars = sorted(n for n in os.listdir(args.out) if n.startswith("weights") and n.endswith(".tar"))
    names = []
    for name in tars:
        with tarfile.open(os.path.join(args.out, name)) as tar:
            names += tar.getnames()
    todo = plan(results, names, args.steps)
    clash = [name for name in [n for n, *_ in todo] + ["weights", "import.json"]
             if os.path.exists(os.path.join(args.dir, name))]
    if clash and not args.overwrite:
        _fail(f"DIR: {args.dir} already has {', '.join(clash)} (--overwrite replaces them)")

    sys.path.insert(0, ROOT)
    from kgen.export import save_for_inference

    created = not os.path.exists(args.dir)
    os.makedirs(args.dir, exist_ok=True)
    unpacked = tempfile.mkdtemp(prefix=".gpu_import-", dir=args.dir)
    try:  # every model rebuilt and checked before any is written
        for name in tars:
            with tarfile.open(os.path.join(args.out, name)) as tar:
                tar.extractall(unpacked, filter="data")
        models = [rebuild(record, os.path.join(unpacked, source)) for _, record, source, _ in todo]
        written = []
        for (name, record, source, steps), (model, checked) in zip(todo, models):
            save_for_inference(model, os.path.join(args.dir, name), overwrite=args.overwrite)
            written.append({"file": name, "from": source, "steps": steps, "job": record["job"],
                            **checked,
                            "record": {k: v for k, v in record.items() if k not in ("epochs", "versions", "cases")}})
            print(f"gpu_import: {name} from {source}" + (f" ({steps} steps)" if steps else ""), flush=True)
        shutil.rmtree(os.path.join(args.dir, "weights"), ignore_errors=True)
        os.rename(unpacked, os.path.join(args.dir, "weights"))
    except BaseException:
        shutil.rmtree(unpacked, ignore_errors=True)
        if created and not os.listdir(args.dir):
            os.rmdir(args.dir)
        raise
    summary = {"out": os.path.abspath(args.out), "machine": results.get("machine"), "command": results.get("command"),
               "weights": sorted(names), "left_behind": results.get("left_behind", []), "models": written}
    with open(os.path.join(args.dir, "import.json"), "w") as handle:
        json.dump(summary, handle, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
