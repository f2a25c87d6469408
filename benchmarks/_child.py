"""Shared by the benchmarks: best-of-N timing, and one fresh process per backend (fixed per process).

    seconds = best_of(fn)           # one warm-up call, then the fastest of 3
    role = child_role()             # None in the parent; the role string in a child
    result = run_child(__file__, "jax", role="kgen")   # the child's last JSON line, or None
    result = run_child(__file__, "jax", one_core=True) # the same, the child (and its threads) on one CPU core
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


def can_pin():
    """Whether `run_child(..., one_core=True)` can pin a child to one core here (Linux: sched_setaffinity)."""
    return hasattr(os, "sched_setaffinity")


def run_child(script, backend, role="1", one_core=False):
    """Run `script` under `KERAS_BACKEND=backend` with `child_role() == role`; return its last JSON line as a dict.

    With `one_core`, the child runs on one CPU core (the lowest this process may use), set before it starts, so
    every thread it makes inherits it: its time is then the work's total arithmetic, with no two operations
    running side by side (`can_pin()` says whether this OS allows it).
    Returns None (after printing the child's stderr tail) when the child printed no JSON line.
    """
    if one_core and not can_pin():
        raise RuntimeError("pinning a child to one core needs os.sched_setaffinity (Linux)")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", **{_ROLE: role})
    pin = None
    if one_core:
        core = min(os.sched_getaffinity(0))
        pin = lambda: os.sched_setaffinity(0, {core})  # noqa: E731 -- runs in the child, before exec
    out = subprocess.run([sys.executable, os.path.abspath(script)], env=env, capture_output=True, text=True,
                         preexec_fn=pin, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(lines[-1])
