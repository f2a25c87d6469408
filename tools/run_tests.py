"""Run the kgen test suite once per Keras backend, each in its own pytest process.

Exits non-zero if any backend fails, errors, or runs no test at all (pytest exit code 5, or every test
skipped): a backend that silently tested nothing must never look green.

    python tools/run_tests.py jax tensorflow torch [-- extra pytest args]
"""

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

BACKENDS = ("jax", "tensorflow", "torch")


def run_backend(backend, extra_args, results_dir):
    report = os.path.join(results_dir, f"{backend}.xml")
    env = dict(os.environ, KERAS_BACKEND=backend)
    # XLA and TF spawn one thread pool per core; two cores are all CI has.
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", *extra_args]
    print(f"\n===== KERAS_BACKEND={backend}: {' '.join(cmd[1:])}", flush=True)
    start = time.time()
    code = subprocess.call(cmd, env=env)
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
    for backend in backends:
        code, passed, counts, seconds = run_backend(backend, extra, results_dir)
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
