"""Benchmarks that compare backends run each measurement in a fresh process (the backend is fixed per process).

    role = child_role()             # None in the parent; the role string in a child
    result = run_child(__file__, "jax", role="kgen")   # the child's last JSON line, or None
"""

import json
import os
import subprocess
import sys

_ROLE = "_KGEN_BENCH_CHILD"


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
