"""Run every benchmark and write benchmarks/RESULTS.md.

A benchmark runs once per backend (one process each), unless its file says otherwise in a line
`BACKENDS = ("jax",)` (statistical benchmarks that are JAX-only) or `BACKENDS = ("all-in-one",)` (it spawns
one process per backend itself, to print ratios measured in one run).
"""

import ast
import datetime
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = sorted(f for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py"))


def _backends(path):
    for line in open(path, encoding="utf-8"):
        if line.startswith("BACKENDS = "):
            return ast.literal_eval(line.split("=", 1)[1].strip())
    return ("jax", "tensorflow", "torch")


def main():
    lines = [f"# kgen benchmarks ({datetime.date.today()}, {os.cpu_count()} CPU cores)", ""]
    failed = False
    for script in BENCHMARKS:
        lines += [f"## {script}", "", "```"]
        for backend in _backends(os.path.join(HERE, script)):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            if backend != "all-in-one":
                env["KERAS_BACKEND"] = backend
            result = subprocess.run([sys.executable, os.path.join(HERE, script)], env=env, capture_output=True, text=True)
            out = [line for line in result.stdout.splitlines() if line.startswith("[")]
            if result.returncode != 0:
                failed = True
                out.append(f"[{backend}] FAILED: {result.stderr.strip().splitlines()[-1:]}")
            print("\n".join(out), flush=True)
            lines += out
        lines += ["```", ""]
    with open(os.path.join(HERE, "RESULTS.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
