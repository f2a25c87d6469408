"""Run the kgen test suite once per Keras backend, each in its own pytest process.

Exits non-zero if any backend fails, errors, or runs no test at all (pytest exit code 5, or every test
skipped): a backend that silently tested nothing must never look green.

    python tools/run_tests.py [--jobs 2] jax tensorflow torch [-- extra pytest args]

With `--jobs 2` the backends run in two lanes at once — JAX (the longest backend) in one, the others one after the
other in the second, on one thread each (`SINGLE_THREADED`) — each writing to test-results/<backend>.log,
printed whole when it finishes. Much of a JAX run is single-threaded XLA compilation, so on 2 cores the lanes
overlap well (`make test` uses this). Tests that only start child processes carry one backend's mark, chosen
to keep the two lanes even (test-results/*.xml give each test's seconds; on the 2-core AMD CI machine, before
three of them (78 s) moved to JAX: JAX 1439 s, TensorFlow + torch 1604 s).
"""

import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

BACKENDS = ("jax", "tensorflow", "torch")


# With two lanes on two cores, a backend whose kernels spread over every core (OpenMP in torch and oneDNN, TF's
# intra-op pool) spin-waits for a core the other lane holds: measured on 2 cores beside a busy JAX process, one
# torch docstring example (a critic trained for 200 steps) took 344 s with the default threads and 11 s with one.
# So in parallel mode the second lane's backends compute on one thread each (set the variables to override).
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}


def run_backend(backend, extra_args, results_dir, log=None, single_threaded=False):
    report = os.path.join(results_dir, f"{backend}.xml")
    env = dict(os.environ, KERAS_BACKEND=backend)
    if single_threaded:
        for name, value in SINGLE_THREADED.items():
            env.setdefault(name, value)
    # XLA and TF spawn one thread pool per core; two cores are all CI has.
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", *extra_args]
    print(f"\n===== KERAS_BACKEND={backend}: {' '.join(cmd[1:])}", flush=True)
    start = time.time()
    if log is None:
        code = subprocess.call(cmd, env=env)
    else:
        with open(log, "w") as handle:
            code = subprocess.call(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT)
        with open(log) as handle:
            print(f"\n===== KERAS_BACKEND={backend} finished; its log ({log}):\n{handle.read()}", flush=True)
    seconds = time.time() - start
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if os.path.exists(report):
        root = ET.parse(report).getroot()
        suites = [root] if root.tag == "testsuite" else list(root)
        for suite in suites:
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return code, passed, counts, seconds


def main(argv):
    jobs = 1
    if argv[:1] == ["--jobs"]:
        jobs, argv = int(argv[1]), argv[2:]
    if "--" in argv:
        split = argv.index("--")
        backends, extra = argv[:split], argv[split + 1:]
    else:
        backends, extra = argv, []
    backends = backends or list(BACKENDS)
    for backend in backends:
        if backend not in BACKENDS:
            raise SystemExit(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    results_dir = "test-results"
    os.makedirs(results_dir, exist_ok=True)
    total_passed = total_failed = total_skipped = 0
    problems = []
    summary = []
    results = {}

    def lane(names, logged, single_threaded=False):
        for backend in names:
            log = os.path.join(results_dir, f"{backend}.log") if logged else None
            results[backend] = run_backend(backend, extra, results_dir, log, single_threaded)

    if jobs > 1 and len(backends) > 1:
        # JAX alone (the long pole) in the first lane, the rest one after another in the second.
        first = ["jax"] if "jax" in backends else backends[:1]
        lanes = [first, [b for b in backends if b not in first]]
        threads = [threading.Thread(target=lane, args=(names, True, k == 1)) for k, names in enumerate(lanes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        lane(backends, False)
    for backend in backends:
        code, passed, counts, seconds = results[backend]
        failed = counts["failures"] + counts["errors"]
        total_passed += passed
        total_failed += failed
        total_skipped += counts["skipped"]
        summary.append(f"  {backend:<11} {passed:4d} passed {failed:3d} failed {counts['skipped']:3d} skipped  {seconds:7.1f} s")
        if code != 0:
            problems.append(f"{backend}: pytest exited with {code}")
        if passed == 0:
            problems.append(f"{backend}: no test passed (ran {counts['tests']}, skipped {counts['skipped']})")
    print("\n===== kgen test summary (per backend)")
    print("\n".join(summary))
    for problem in problems:
        print("FAILED:", problem)
    print(f"total: {total_passed} passed, {total_failed} failed, {total_skipped} skipped")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
