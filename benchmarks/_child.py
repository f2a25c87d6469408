"""Shared by the benchmarks: best-of-N timing, and one fresh process per backend (fixed per process).

    seconds = best_of(fn)           # one warm-up call, then the fastest of 3
    role = child_role()             # None in the parent; the role string in a child
    result = run_child(__file__, "jax", role="kgen")   # the child's last JSON line, or None
"""

import json
import os
import subprocess
import sys
import time

_ROLE = "_KGEN_BENCH_CHILD"


def best_of(fn, repeats=3):
    """Seconds of the fastest of `repeats` calls of `fn()`, after one warm-up call (compilation)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def child_role():
    """The role this process was started with by `run_child`, or None in the parent."""
    return os.environ.get(_ROLE)


def run_child(script, backend, role="1"):
    """Run `script` under `KERAS_BACKEND=backend` with `child_role() == role`; return its last JSON line as a dict.

    Returns None (after printing the child's stderr tail) when the child printed no JSON line.
    """
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", **{_ROLE: role})
    out = subprocess.run([sys.executable, os.path.abspath(script)], env=env, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(lines[-1])
