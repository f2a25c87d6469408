"""The `kgen` command.

    kgen [--backend {jax,tensorflow,torch}] demo [--out DIR] [--seed S] [--sections a,b]
    kgen train FAMILY --data NAME --epochs N --out DIR [--model NAME] [--batch-size B] [--limit N] [--seed S]
    kgen sample DIR [--n 64]
    kgen export DIR [--format saved_model|onnx] [--path P]
    kgen bench [NAME ...]          (runs benchmarks/run_all.py of a source checkout)

`kgen train` checkpoints every epoch (kgen.app.runs): run the same command again after a crash to resume.

`--backend` must be known before Keras is imported; if the running process already imported Keras with
another backend, the command re-executes itself with `KERAS_BACKEND` set (a few seconds, once).
"""

import argparse
import os
import sys

BACKENDS = ("jax", "tensorflow", "torch")


def build_parser():
    parser = argparse.ArgumentParser(prog="kgen", description="Generative models for Keras 3 (flows, GANs, diffusion, masks).")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend (default: $KERAS_BACKEND, else Keras's configured default)")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="write demo/index.html with pictures and metrics from saved_models/")
    demo.add_argument("--out", default="demo", help="output directory (default: demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--sections", default=None,
                      help="comma-separated sections to build (default: all), e.g. datasets,classifiers")
    train = commands.add_parser("train", help="train a model of a family, resumable (see kgen.app.runs)")
    train.add_argument("family", help="flows, diffusion, gans or unilm")
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
    export.add_argument("--format", choices=("saved_model", "onnx"), default="saved_model")
    export.add_argument("--path", default=None, help="output path (default: inside the run directory)")
    bench = commands.add_parser("bench", help="run every benchmark of a source checkout, write benchmarks/RESULTS.md")
    bench.add_argument("names", nargs="*", help="only these benchmarks, e.g. bench_text_decoding (default: all)")
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
    os.execve(sys.executable, [sys.executable, "-m", "kgen.cli", *argv], env)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    _ensure_backend(args.backend, argv)
    if args.command == "demo":
        from kgen.app.demo import write_demo

        sections = args.sections.split(",") if args.sections else None
        path = write_demo(args.out, seed=args.seed, sections=sections)
        print(f"kgen demo written to {os.path.abspath(path)}")
        return 0
    if args.command == "train":
        from kgen.app import runs

        path = runs.train(args.family, data=args.data, epochs=args.epochs, out=args.out, model=args.model,
                          batch_size=args.batch_size, limit=args.limit, seed=args.seed)
        print(f"kgen: model saved to {os.path.abspath(path)}")
        return 0
    if args.command == "sample":
        from kgen.app import runs

        print(f"kgen: samples written to {os.path.abspath(runs.sample(args.dir, n=args.n))}")
        return 0
    if args.command == "export":
        from kgen.app import runs

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
