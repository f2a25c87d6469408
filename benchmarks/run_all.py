"""Run every benchmark on every backend (one process each) and write benchmarks/RESULTS.md."""

import datetime
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = sorted(f for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py"))


def main():
    lines = [f"# kgen benchmarks ({datetime.date.today()}, {os.cpu_count()} CPU cores)", ""]
    failed = False
    for script in BENCHMARKS:
        lines += [f"## {script}", "", "```"]
        for backend in ("jax", "tensorflow", "torch"):
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
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
