"""The `kgen` command (a top-level module, so that `kgen --help` answers without importing Keras or a backend).

    kgen [--backend {jax,tensorflow,torch}] demo [--out DIR] [--seed S] [--sections a,b]
    kgen train FAMILY --data NAME --epochs N --out DIR [--model NAME] [--batch-size B] [--limit N] [--seed S]
    kgen sample DIR [--n 64]
    kgen export DIR [--format saved_model|onnx|keras] [--path P]
    kgen bench [NAME ...]          (runs benchmarks/run_all.py of a source checkout)

`--backend` may come before or after the command. `kgen train` checkpoints every epoch (kgen.app.runs): run the
same command again after a crash to resume.

Nothing imports Keras before the arguments are parsed, so `--backend` simply sets `KERAS_BACKEND`. Only when
`main()` is called inside a process that already imported Keras with another backend does the command re-execute
itself (`python -m kgen_cli`) with `KERAS_BACKEND` set. A wrong argument is one line naming it, exit code 2.
"""

import argparse
import os
import sys

BACKENDS = ("jax", "tensorflow", "torch")
# What `kgen train` accepts, per family: {family: (models, default model, datasets)}. Written out here so that help
# needs no import of kgen; tests/test_cli.py checks it against kgen.app.presets.RECIPES.
FAMILIES = {
    "flows": (("glow", "nice", "realnvp"), "glow", ("animals", "digits")),
    "diffusion": (("unet", "unet_shifted"), "unet", ("animals", "animals14", "digits")),
    "gans": (("dcgan", "selfmod"), "selfmod", ("animals",)),
    "unilm": (("small",), "small", ("reverse", "sort")),
}


def _families_help():
    return "\n".join(f"  {family:10s} --model {{{','.join(models)}}} (default {default}), "
                     f"--data {{{','.join(data)}}}" for family, (models, default, data) in FAMILIES.items())


def _add_backend(parser, default):
    parser.add_argument("--backend", choices=BACKENDS, default=default,
                        help="Keras backend (default: $KERAS_BACKEND, else Keras's configured default)")


def build_parser():
    parser = argparse.ArgumentParser(prog="kgen", description="Generative models for Keras 3 (flows, GANs, diffusion, masks).")
    _add_backend(parser, None)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="write demo/index.html with pictures and metrics from saved_models/")
    demo.add_argument("--out", default="demo", help="output directory (default: demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--sections", default=None,
                      help="comma-separated sections to build (default: all), e.g. datasets,classifiers")
    train = commands.add_parser(
        "train", help="train a model of a family, resumable (see kgen.app.runs)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="families, their models and datasets:\n" + _families_help())
    train.add_argument("family", choices=sorted(FAMILIES), help="the model family")
    train.add_argument("--data", required=True, help="dataset name, e.g. digits or animals (unilm: reverse or sort)")
    train.add_argument("--epochs", type=int, required=True)
    train.add_argument("--out", required=True, help="run directory (re-run the command to resume)")
    train.add_argument("--model", default=None, help="model within the family (default: the family's)")
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--limit", type=int, default=None, help="use only the first N training examples")
    train.add_argument("--seed", type=int, default=0)
    sample = commands.add_parser("sample", help="write a grid of samples from a finished run")
    sample.add_argument("dir")
    sample.add_argument("--n", type=int, default=64)
    export = commands.add_parser("export", help="export a finished run for serving")
    export.add_argument("dir")
    export.add_argument("--format", choices=("saved_model", "onnx", "keras"), default="saved_model",
                        help="keras: the run's .keras file without optimizer state (inference.keras)")
    export.add_argument("--path", default=None, help="output path (default: inside the run directory)")
    bench = commands.add_parser("bench", help="run every benchmark of a source checkout, write benchmarks/RESULTS.md")
    bench.add_argument("names", nargs="*", help="only these benchmarks, e.g. bench_text_decoding (default: all)")
    for command in (demo, train, sample, export):
        _add_backend(command, argparse.SUPPRESS)  # `kgen train flows --backend jax` too
    return parser


def _ensure_backend(backend, argv):
    """Re-run this command under `KERAS_BACKEND=backend` unless Keras already runs on it."""
    if backend is None:
        return
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
        return
    import keras

    if keras.backend.backend() == backend:
        return
    if os.environ.get("_KGEN_REEXEC") == backend:
        raise SystemExit(f"kgen: could not switch Keras to the {backend!r} backend")
    env = dict(os.environ, KERAS_BACKEND=backend, _KGEN_REEXEC=backend)
    os.execve(sys.executable, [sys.executable, "-m", "kgen_cli", *argv], env)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # bad flags: argparse's one-line usage error, exit code 2
    _ensure_backend(args.backend, argv)
    try:
        return _run(args)
    except (ValueError, TypeError) as error:  # kgen's argument checks name the argument: one line, no traceback
        parser.exit(2, f"kgen {args.command}: error: {error}\n")


def _run(args):
    if args.command == "demo":
        from kgen.app.demo import write_demo

        sections = args.sections.split(",") if args.sections else None
        path = write_demo(args.out, seed=args.seed, sections=sections, progress=lambda line: print(line, flush=True))
        print(f"kgen demo written to {os.path.abspath(path)}")
        return 0
    if args.command == "train":
        from kgen.app import runs

        print(f"kgen: training {args.family} in {os.path.abspath(args.out)}: checkpoints in backup/, "
              "a sample grid per epoch in samples/, one log row per epoch in log.csv", flush=True)
        path = runs.train(args.family, data=args.data, epochs=args.epochs, out=args.out, model=args.model,
                          batch_size=args.batch_size, limit=args.limit, seed=args.seed)
        print(f"kgen: model saved to {os.path.abspath(path)}")
        return 0
    if args.command == "sample":
        from kgen.app import runs

        print(f"kgen: samples written to {os.path.abspath(runs.sample(args.dir, n=args.n))}")
        return 0
    if args.command == "export":
        from kgen import backend
        from kgen.app import runs

        refusal = backend.saved_model_refusal()
        if args.format == "saved_model" and refusal is not None:
            raise ValueError(f"{refusal}: use --format onnx (or --backend jax / tensorflow)")

        print(f"kgen: exported to {os.path.abspath(runs.export(args.dir, format=args.format, path=args.path))}")
        return 0
    if args.command == "bench":
        script = os.path.join(os.getcwd(), "benchmarks", "run_all.py")
        if not os.path.exists(script):
            raise SystemExit("kgen bench: run it from a kgen source checkout (benchmarks/run_all.py not found)")
        return os.spawnv(os.P_WAIT, sys.executable, [sys.executable, script, *args.names])
    return 2


if __name__ == "__main__":
    sys.exit(main())
