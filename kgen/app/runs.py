"""Training runs that survive faults: what `kgen train`, `kgen sample` and `kgen export` do.

A run lives in one directory:

    DIR/run.json        what was trained (family, model, data, epochs, backend, seed)
    DIR/backup/         keras.callbacks.BackupAndRestore state (weights, optimizer, epoch), kept until the end
    DIR/log.csv         one row per epoch (appended across restarts)
    DIR/samples/        a sample grid per epoch
    DIR/model.keras     the trained model, written atomically at the end

Re-running the same command after a crash (SIGKILL, power loss) resumes from the last finished epoch, so
at most one epoch is lost. A NaN or infinite loss stops training with a message, and the weights of the best
finished epoch are put back before the model is saved.

Families register a `Recipe` in `kgen.app.presets.RECIPES`: how to load the data, build and compile the model,
and draw samples. `kgen.app.runs.train("flows", data="digits", epochs=5, out="runs/glow")` is the Python twin
of `kgen train flows --data digits --epochs 5 --out runs/glow`.
"""

import json
import os

import keras

from kgen._checks import check_choice, check_int
from kgen.app.presets import RECIPES, Recipe  # noqa: F401  (Recipe: re-exported)
from kgen.callbacks import StopOnNaN


class _EpochSamples(keras.callbacks.Callback):
    """`Recipe.write_samples` after every epoch, as `<directory>/samples_epochNNN.png|txt`."""

    def __init__(self, spec, data, directory, n):
        super().__init__()
        self.spec, self.data, self.directory, self.n = spec, data, directory, n

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        self.spec.write_samples(self.model, self.n, self.data,
                                os.path.join(self.directory, f"samples_epoch{epoch + 1:03d}"))

    def get_config(self):
        return {"data": self.data, "directory": self.directory, "n": self.n}


class _EpochBackup(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` at every epoch's end, and `async_safe`: its batch-end hook then does
    nothing. Keras reads the logs in its callback thread only when every batch-end callback says it may; the
    Keras class does not say so, and would keep a read of every step's loss in the training loop (on a GPU a
    wait per step) even where StopOnNaN checks every 50 steps."""

    async_safe = True

    def __init__(self, backup_dir):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)


def recipe(family):
    """The `Recipe` of `family` (a key of `kgen.app.presets.RECIPES`)."""
    check_choice("family", family, sorted(RECIPES))
    return RECIPES[family]()


def _save_atomically(model, path):
    tmp = path + ".partial.keras"
    model.save(tmp)
    os.replace(tmp, path)


def train(family, data, epochs, out, model=None, batch_size=None, limit=None, seed=0, verbose="auto"):
    """Train (or resume) a run in `out`; returns the path of the saved `model.keras`.

    Args:
        family: a key of `RECIPES` ("flows", ...).
        data: a dataset name of that family ("digits", "animals", ...).
        epochs: total epochs of the run (a resumed run trains only the missing ones).
        out: the run directory; re-running with the same `out` resumes.
        model: the model name within the family (default: the recipe's).
        limit: use only the first `limit` training examples (smoke runs).
    """
    spec = recipe(family)
    model_name = check_choice("model", model or spec.default_model, sorted(spec.models))
    check_choice("data", data, sorted(spec.data))
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size or spec.batch_size, 1)
    limit = None if limit is None else check_int("limit", limit, 1)
    os.makedirs(out, exist_ok=True)
    run = {"family": family, "model": model_name, "data": data, "epochs": epochs, "seed": int(seed),
           "backend": keras.backend.backend(), "limit": limit, "batch_size": batch_size}
    run_file = os.path.join(out, "run.json")
    if os.path.exists(run_file):
        with open(run_file) as f:
            before = json.load(f)
        changed = {k: (before.get(k), v) for k, v in run.items() if k != "epochs" and before.get(k) != v}
        if changed:
            raise ValueError(f"`out` {out!r} holds a different run ({changed}); use a new directory")
    with open(run_file, "w") as f:
        json.dump(run, f, indent=2)

    x = spec.data[data](limit)
    size = len(x["token_ids"]) if isinstance(x, dict) else len(x)
    if size == 0:
        raise ValueError(f"`data` {data!r} has no training examples (limit={limit}): nothing to train on")
    if size < batch_size:
        print(f"kgen: {size} training examples, fewer than the batch size {batch_size}: one short batch per epoch")
    keras.utils.set_random_seed(seed)
    net = spec.models[model_name](x, seed)
    backup = os.path.join(out, "backup")
    if os.path.exists(os.path.join(backup, "training_metadata.json")):
        print(f"kgen: resuming the run in {out} from its last finished epoch")
    stop = StopOnNaN()
    callbacks = [
        _EpochBackup(backup),
        keras.callbacks.CSVLogger(os.path.join(out, "log.csv"), append=True),
        stop,
        _EpochSamples(spec, data, os.path.join(out, "samples"), n=36),
    ]
    net.fit(x, batch_size=batch_size, epochs=epochs, callbacks=callbacks, verbose=verbose, shuffle=True)
    path = os.path.join(out, "model.keras")
    _save_atomically(net, path)
    return path


def load_run(out):
    """(run dict, model) of a finished run directory."""
    run_file, model_file = os.path.join(out, "run.json"), os.path.join(out, "model.keras")
    if not (os.path.exists(run_file) and os.path.exists(model_file)):
        raise ValueError(f"`out` {out!r} is not a finished kgen run (no run.json and model.keras)")
    try:
        with open(run_file) as f:
            run = json.load(f)
        model = keras.saving.load_model(model_file, safe_mode=True)
    except (OSError, ValueError, KeyError, TypeError) as error:  # zip, JSON, HDF5 and config errors alike
        raise ValueError(f"the run in `out` {out!r} is corrupt: {model_file} or {run_file} cannot be read "
                         f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from error
    return run, model


def sample(out, n=64, path=None):
    """Write `n` samples from the run in `out` (a PNG grid; decoded sequences in a .txt for text runs);
    returns the file's path. `path` (default `out/sample_<n>`) gets the family's extension in place of its own."""
    n = check_int("n", n, 1)
    run, model = load_run(out)
    spec = recipe(run["family"])
    stem = os.path.splitext(path)[0] if path else os.path.join(out, f"sample_{n}")
    return spec.write_samples(model, n, run["data"], stem)


def export(out, format="saved_model", path=None):
    """Export the model of the run in `out`; returns the path. `format`: "saved_model", "onnx" or "keras" (the
    run's `.keras` file without optimizer state, `kgen.export.save_for_inference`; default `out/inference.keras`)."""
    from kgen import export as kexport

    check_choice("format", format, ("saved_model", "onnx", "keras"))
    run, model = load_run(out)
    if format == "keras":
        return kexport.save_for_inference(model, path or os.path.join(out, "inference.keras"), overwrite=True)
    spec = recipe(run["family"])
    options = spec.export_options(model, run["data"]) if spec.export_options else {}
    if format == "saved_model":
        return kexport.export_saved_model(model, path or os.path.join(out, "saved_model"), overwrite=True, **options)
    return kexport.export_onnx(model, path or os.path.join(out, "model.onnx"), overwrite=True, **options)
