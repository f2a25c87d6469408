"""`python -m kgen.cli`: the `kgen` command, whose code is the top-level module `kgen_cli` (it parses arguments
before anything imports Keras; this package's `__init__` imports Keras and every family)."""

import sys

from kgen_cli import BACKENDS, FAMILIES, build_parser, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
