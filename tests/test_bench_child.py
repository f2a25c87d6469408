"""benchmarks/_child.py: a child process pinned to one core really runs on one core, threads included."""

import os
import textwrap

import pytest
from repo_scripts import load_script

SCRIPT = textwrap.dedent("""
    import json, os, threading
    seen = []
    thread = threading.Thread(target=lambda: seen.append(len(os.sched_getaffinity(0))))  # a thread made later
    thread.start(); thread.join()
    print(json.dumps({"main": len(os.sched_getaffinity(0)), "thread": seen[0],
                      "role": os.environ["_KGEN_BENCH_CHILD"], "backend": os.environ["KERAS_BACKEND"]}))
""")


@pytest.mark.torch  # no backend involved; once is enough
def test_one_core_child_and_its_threads_run_on_one_core(tmp_path):
    child = load_script("benchmarks/_child.py")
    if not child.can_pin():
        pytest.skip("no os.sched_setaffinity on this OS")
    parent = os.sched_getaffinity(0)
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    pinned = child.run_child(str(script), "jax", role="probe", one_core=True)
    assert pinned == {"main": 1, "thread": 1, "role": "probe", "backend": "jax"}
    free = child.run_child(str(script), "jax", role="probe")
    assert free["main"] == free["thread"] == len(parent)  # without it: every core this process may use
    assert os.sched_getaffinity(0) == parent  # the pin was set in the child only
