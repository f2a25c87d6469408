"""The `kgen` command.

    kgen [--backend {jax,tensorflow,torch}] demo [--out DIR] [--seed S] [--sections a,b]

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
        from kgen.demo import write_demo

        sections = args.sections.split(",") if args.sections else None
        path = write_demo(args.out, seed=args.seed, sections=sections)
        print(f"kgen demo written to {os.path.abspath(path)}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
