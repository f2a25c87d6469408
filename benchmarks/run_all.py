"""Run every benchmark (or the named ones) and write benchmarks/RESULTS.md.

    python benchmarks/run_all.py                                      # all of them (hours on 2 CPU cores)
    python benchmarks/run_all.py bench_text_decoding bench_gan_step   # only these; other sections are kept

A benchmark runs once per backend (one process each), unless its file says otherwise in a line
`BACKENDS = ("jax",)` (statistical benchmarks that are JAX-only) or `BACKENDS = ("all-in-one",)` (it spawns
one process per backend itself, to print ratios measured in one run). Each section of RESULTS.md carries the
date it was measured; a partial run replaces only its own sections.
"""

import ast
import datetime
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = sorted(f for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py"))


def _backends(path):
    for line in open(path, encoding="utf-8"):
        if line.startswith("BACKENDS = "):
            return ast.literal_eval(line.split("=", 1)[1].strip())
    return ("jax", "tensorflow", "torch")


RESULTS = os.path.join(HERE, "RESULTS.md")


def cpu_kind(cpuinfo="/proc/cpuinfo"):
    """The widest x86 vector extension of this CPU ("AVX-512", "AVX2"), else the machine's name: the XLA CPU
    kernels, and so the JAX timings, differ between AVX2 and AVX-512 CPUs (kgen/backend/_jax.py)."""
    flags = set()
    try:
        with open(cpuinfo, encoding="utf-8") as handle:
            flags = next((set(line.split(":", 1)[1].split()) for line in handle if line.startswith("flags")), set())
    except OSError:
        pass
    if "avx512f" in flags:
        return "AVX-512"
    if "avx2" in flags:
        return "AVX2"
    return platform.machine() or "unknown CPU"


def _read_sections(path):
    """{script: lines of its section} of an existing RESULTS.md (sections start with '## bench_...')."""
    sections, current = {}, None
    if os.path.exists(path):
        for line in open(path, encoding="utf-8").read().splitlines():
            if line.startswith("## "):
                current = line[3:].strip()  # a benchmark's own section is headed by its file name alone;
                # any other heading (the GPU run, a comparison written by hand) is kept whole, even one that
                # names a benchmark
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
    return sections


def main(argv=None):
    names = sys.argv[1:] if argv is None else argv
    wanted = [n if n.endswith(".py") else n + ".py" for n in names] or BENCHMARKS
    unknown = sorted(set(wanted) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"run_all.py: unknown benchmarks {unknown}; choose from {BENCHMARKS}")
    sections = _read_sections(RESULTS)
    failed = False
    for script in wanted:
        lines = [f"(measured {datetime.date.today()}, {os.cpu_count()} CPU cores, {cpu_kind()})", "", "```"]
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
        sections[script] = lines + ["```", ""]
        _write(sections)
    return 1 if failed else 0


def _write(sections):
    lines = ["# kgen benchmarks", "", "Written by `make bench` (benchmarks/run_all.py); ratios are against the peer "
             "measured in the same run.", ""]
    for script in BENCHMARKS:
        if script in sections:
            lines += [f"## {script}", *sections[script]]
    for heading, body in sections.items():  # hand-written sections after the benchmarks' own
        if heading not in BENCHMARKS:
            lines += [f"## {heading}", *body]
    with open(RESULTS + ".tmp", "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines).rstrip("\n") + "\n")
    os.replace(RESULTS + ".tmp", RESULTS)


if __name__ == "__main__":
    sys.exit(main())
