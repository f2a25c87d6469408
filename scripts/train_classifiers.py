"""Train the small CNN classifiers that kgen uses as offline FID/KID feature extractors.

The shipped files and every number in ``saved_models/classifiers.json`` come from this exact command, run
from the repository root (JAX backend, CPU):

    KERAS_BACKEND=jax .venv/bin/python scripts/train_classifiers.py

It writes ``saved_models/classifier_digits.keras``, ``saved_models/classifier_animals.keras``,
``saved_models/classifier_patches.keras`` (added later with ``--only patches``) and
``saved_models/classifiers.json`` (test accuracies, parameter counts, feature dimensions, seeds, epochs,
backend, versions, the command), and prints the test accuracy of each classifier.

The script runs on any backend (``KERAS_BACKEND`` defaults to ``jax`` here when unset), but other backends
draw different initial weights and batch orders from the same seed, so their accuracies differ slightly
from the recorded JAX ones; the saved ``.keras`` files themselves load on every backend.

Input convention of both classifiers: float32 images in [0, 1], shape (n, H, W, 1), the range kgen's
generative models produce. Each epoch trains on ``dequantize(train_images, levels, seed=epoch)``: fresh
uniform dequantization noise per epoch is the only augmentation, and it makes the classifiers accept both
dequantized data ``(x + u) / levels`` and plain rescaled data ``x / (levels - 1)`` (which lies in the same
cells). The test split is used only for the reported accuracy, never to pick the recipe.

Options (for experiments; the shipped files use the defaults):

    --only {animals,digits,patches}   train one classifier; the other's entry in classifiers.json is kept
    --out DIR                 output folder (default: <repo root>/saved_models)
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import sys
import tempfile
import time

# Keras reads KERAS_BACKEND once, at its first import: set it before importing keras or kgen.
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kgen.datasets import (  # noqa: E402
    ANIMAL_LEVELS,
    DIGIT_LEVELS,
    PATCH_LEVELS,
    PATCH_SOURCES,
    dequantize,
    load_animals,
    load_digits,
    load_patches,
)
from kgen.diffusion.guidance import average_pool  # noqa: E402
from kgen.utils import set_seed  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMMAND = "KERAS_BACKEND=jax .venv/bin/python scripts/train_classifiers.py"
FEATURE_LAYER = "features"


def build_digits_classifier():
    """The 8x8 digits classifier: float [0, 1] images (n, 8, 8, 1) -> 10 logits; 64 "features".

    Example:
        >>> build_digits_classifier().output_shape
        (None, 10)
    """
    inputs = keras.Input(shape=(8, 8, 1), name="images")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(64, activation="relu", name=FEATURE_LAYER)(x)
    logits = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, logits, name="classifier_digits")


def build_animals_classifier():
    """The 28x28 Animal-MNIST classifier: float [0, 1] images (n, 28, 28, 1) -> 10 logits; 128 "features".

    The first convolution has stride 2: computing the 28x28 layers at full resolution made an epoch ~8x
    slower on two CPU cores for little accuracy. Global average pooling (not Flatten) before the feature
    layer keeps the file small (~75k parameters).

    Example:
        >>> build_animals_classifier().output_shape
        (None, 10)
    """
    inputs = keras.Input(shape=(28, 28, 1), name="images")
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv4")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    logits = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, logits, name="classifier_animals")


def build_patches_classifier():
    """The natural-patch classifier: float [0, 1] images (n, H, W, 1) of any size >= 8 (trained at 16 and 32)
    -> 9 logits, one per `kgen.datasets.PATCH_SOURCES`; 128 "features".

    Fully convolutional up to a global average pooling, so one file serves the 32x32 patches and their 2x2
    average-pooled 16x16 versions (the two resolutions of the Upsample Guidance experiment). The first two
    convolutions run at full resolution, without stride: the sources differ mostly in fine texture.

    Example:
        >>> model = build_patches_classifier()
        >>> print(model.input_shape, model.output_shape)
        (None, None, None, 1) (None, 9)
    """
    inputs = keras.Input(shape=(None, None, 1), name="images")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv4")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Conv2D(128, 3, padding="same", activation="relu", name="conv5")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    logits = keras.layers.Dense(len(PATCH_SOURCES), name="logits")(x)
    return keras.Model(inputs, logits, name="classifier_patches")


def pool2(x):
    """The 16x16 view of 32x32 patches: `kgen.diffusion.guidance.average_pool(x, 2)` (the low-resolution data of
    the Upsample Guidance benchmark) as NumPy."""
    return np.asarray(keras.ops.convert_to_numpy(average_pool(x, 2)))


# Per-classifier recipe, sized to train in about 3 minutes on two CPU cores. The animals epochs and batch size
# were picked on a validation split held out of the training set (12 -> 18 epochs: 0.87 -> 0.89 validation
# accuracy; batch 128 was no faster and worse); the digits recipe was not tuned. The test split chose nothing.
SPECS = {
    "digits": dict(
        build=build_digits_classifier,
        load=load_digits,
        levels=DIGIT_LEVELS,
        seed=0,
        epochs=40,
        batch_size=32,
        learning_rate=3e-3,
    ),
    "animals": dict(
        build=build_animals_classifier,
        load=load_animals,
        levels=ANIMAL_LEVELS,
        seed=0,
        epochs=18,
        batch_size=64,
        learning_rate=2e-3,
    ),
    # Trained on both resolutions: each epoch fits the 32x32 crops, then their 2x2-pooled 16x16 versions. The
    # recipe was not tuned (the test split chose nothing; it is a different region of each source image).
    "patches": dict(
        build=build_patches_classifier,
        load=lambda split: load_patches(split, size=32),
        levels=PATCH_LEVELS,
        seed=0,
        epochs=12,
        batch_size=64,
        learning_rate=2e-3,
        views={"32": lambda x: x, "16": pool2},
    ),
}


def _accuracy(model, images, labels):
    logits = model.predict(images, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def _readable_by_all(path):
    # mkstemp creates 0600 files; the shipped files should get the usual permissions (0644 under umask 022).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _save_atomically(model, path):
    # Write to a temporary file in the same folder, then rename: a reader never sees a half-written file,
    # and an interrupted run leaves the previous file in place.
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(suffix=".keras", dir=folder)
    os.close(fd)
    try:
        model.save(tmp, overwrite=True)
        _readable_by_all(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_json_atomically(data, path):
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        _readable_by_all(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def train_one(name, out_dir):
    """Train, evaluate and save one classifier; return its classifiers.json entry."""
    spec = SPECS[name]
    start = time.perf_counter()
    set_seed(spec["seed"])
    x_train, y_train = spec["load"]("train")
    x_test, y_test = spec["load"]("test")
    levels = spec["levels"]

    views = spec.get("views", {None: lambda x: x})  # input sizes trained on (patches: 32 and pooled 16)
    model = spec["build"]()
    steps = math.ceil(len(x_train) / spec["batch_size"]) * spec["epochs"] * len(views)
    # Cosine decay to zero: no learning-rate tuning on the test split needed, and the last epochs settle.
    schedule = keras.optimizers.schedules.CosineDecay(spec["learning_rate"], decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    for epoch in range(spec["epochs"]):
        # Fresh dequantization noise each epoch (seeded by the epoch, so the run is reproducible).
        x = dequantize(x_train, levels, seed=epoch)
        for view in views.values():
            history = model.fit(
                view(x),
                y_train,
                batch_size=spec["batch_size"],
                epochs=epoch + 1,
                initial_epoch=epoch,
                shuffle=True,
                verbose=0,
            )
        logs = {k: v[-1] for k, v in history.history.items()}
        print(
            f"[{name}] epoch {epoch + 1:2d}/{spec['epochs']}  loss {logs['loss']:.4f}  "
            f"train acc {logs['accuracy']:.4f}  ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    train_seconds = time.perf_counter() - start

    # Save an uncompiled copy: feature extraction needs no optimizer state, and leaving it out halves the
    # file and keeps loading free of optimizer/loss deserialization.
    export = spec["build"]()
    export.set_weights(model.get_weights())
    path = os.path.join(out_dir, f"classifier_{name}.keras")
    _save_atomically(export, path)

    # Evaluate the file as shipped, reloaded the way kgen.metrics.classifiers loads it.
    reloaded = keras.saving.load_model(path, safe_mode=True)
    test_acc = _accuracy(reloaded, dequantize(x_test, levels, seed=0), y_test)
    rescaled_acc = _accuracy(reloaded, (x_test / (levels - 1)).astype(np.float32), y_test)
    train_acc = _accuracy(reloaded, dequantize(x_train, levels, seed=0), y_train)
    extra = {}
    for size, view in views.items():
        if size is not None and view(x_test[:1]).shape[1] != x_test.shape[1]:  # a second resolution
            key = f"test_accuracy_{size}x{size}"
            extra[key] = round(_accuracy(reloaded, view(dequantize(x_test, levels, seed=0)), y_test), 4)
            extra[f"{key}_note"] = "test split, dequantize(test, levels, seed=0), 2x2 average-pooled"
            print(f"[{name}] {key} {extra[key]:.4f}", flush=True)
    print(
        f"[{name}] test accuracy {test_acc:.4f} (dequantized, seed 0), {rescaled_acc:.4f} (x / {levels - 1}); "
        f"train accuracy {train_acc:.4f}; {train_seconds:.0f} s; {path} ({os.path.getsize(path)} bytes)",
        flush=True,
    )
    return {
        "file": os.path.basename(path),
        "file_bytes": os.path.getsize(path),
        "sha256": _sha256(path),
        "input_shape": list(export.input_shape[1:]),
        "input_range": "float32 in [0, 1]",
        "levels": levels,
        "num_classes": int(export.output_shape[-1]),
        "feature_layer": FEATURE_LAYER,
        "feature_dim": int(export.get_layer(FEATURE_LAYER).output.shape[-1]),
        "params": int(export.count_params()),
        "seed": spec["seed"],
        "epochs": spec["epochs"],
        "batch_size": spec["batch_size"],
        "learning_rate": spec["learning_rate"],
        "schedule": "Adam, cosine decay to 0 over all steps",
        "train_noise": "dequantize(train, levels, seed=epoch) for epoch = 0..epochs-1",
        "train_size": int(len(x_train)),
        "test_size": int(len(x_test)),
        "test_accuracy": round(test_acc, 4),
        "test_accuracy_note": "test split, dequantize(test, levels, seed=0)",
        "test_accuracy_rescaled": round(rescaled_acc, 4),
        "test_accuracy_rescaled_note": "test split, x / (levels - 1)",
        "train_accuracy": round(train_acc, 4),
        "train_seconds": round(train_seconds, 1),
        **extra,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(SPECS), help="train only this classifier")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "saved_models"), help="output folder")
    args = parser.parse_args(argv)

    backend = keras.backend.backend()
    if backend != "jax":
        print(
            f"note: running on the {backend} backend; the shipped files and recorded numbers come from JAX "
            f"({COMMAND}), so expect slightly different accuracies.",
            file=sys.stderr,
        )
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "classifiers.json")
    record = {}
    if args.only and os.path.exists(json_path):
        with open(json_path) as f:
            record = json.load(f)
    names = [args.only] if args.only else list(SPECS)
    classifiers = dict(record.get("classifiers", {}))
    for name in names:
        classifiers[name] = train_one(name, args.out)
        classifiers[name]["backend"] = backend
        classifiers[name]["command"] = COMMAND if not args.only else f"{COMMAND} --only {name}"
    versions = {"keras": keras.__version__, "numpy": np.__version__}
    if backend == "jax":
        import jax

        versions["jax"] = jax.__version__
    elif backend == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    elif backend == "torch":
        import torch

        versions["torch"] = torch.__version__
    record.update(
        {
            "description": "Small CNN classifiers used as FID/KID feature extractors (kgen.metrics.classifiers)",
            "command": COMMAND,
            "backend": backend,
            "versions": versions,
            "date": datetime.date.today().isoformat(),
            "classifiers": classifiers,
        }
    )
    _write_json_atomically(record, json_path)
    for name in names:
        print(f"{name}: test accuracy {classifiers[name]['test_accuracy']:.4f}")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
