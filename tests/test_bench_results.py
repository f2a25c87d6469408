"""benchmarks/run_all.py: a partial run replaces only its own sections of RESULTS.md."""

import os

import pytest
from repo_scripts import load_script


def _run_all(tmp_path, monkeypatch):
    module = load_script("benchmarks/run_all.py")
    monkeypatch.setattr(module, "RESULTS", str(tmp_path / "RESULTS.md"))
    return module


@pytest.mark.torch  # no backend involved; once is enough
def test_sections_merge_and_keep_the_benchmark_order(tmp_path, monkeypatch):
    run_all = _run_all(tmp_path, monkeypatch)
    first, last = run_all.BENCHMARKS[0], run_all.BENCHMARKS[-1]
    run_all._write({last: ["(old)", "```", "[jax] last", "```", ""]})
    sections = run_all._read_sections(run_all.RESULTS)
    sections[first] = ["(new)", "```", "[jax] first", "```", ""]
    run_all._write(sections)
    text = open(run_all.RESULTS, encoding="utf-8").read()
    assert text.index(f"## {first}") < text.index("[jax] first") < text.index(f"## {last}") < text.index("[jax] last")
    again = run_all._read_sections(run_all.RESULTS)
    assert set(again) == {first, last}
    assert all([line for line in again[k] if line] == [line for line in sections[k] if line] for k in again)


@pytest.mark.jax
def test_unknown_benchmark_names_are_refused_before_anything_runs(tmp_path, monkeypatch):
    run_all = _run_all(tmp_path, monkeypatch)
    with pytest.raises(SystemExit, match="unknown benchmarks"):
        run_all.main(["bench_nope"])
    assert not os.path.exists(run_all.RESULTS)


@pytest.mark.torch
def test_sections_name_the_cpu_kind(tmp_path, monkeypatch):
    run_all = _run_all(tmp_path, monkeypatch)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw\n")
    assert run_all.cpu_kind(str(cpuinfo)) == "AVX-512"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert run_all.cpu_kind(str(cpuinfo)) == "AVX2"
    monkeypatch.setattr(run_all.platform, "machine", lambda: "arm64")
    assert run_all.cpu_kind(str(tmp_path / "missing")) == "arm64"


@pytest.mark.torch
def test_a_hand_written_section_naming_a_benchmark_is_kept(tmp_path, monkeypatch):
    run_all = _run_all(tmp_path, monkeypatch)
    script = run_all.BENCHMARKS[0]
    with open(run_all.RESULTS, "w", encoding="utf-8") as handle:
        handle.write(f"# kgen benchmarks\n\n## {script}\n(old)\n\n## {script} on another CPU\n(by hand)\n")
    sections = run_all._read_sections(run_all.RESULTS)
    assert sections[script] == ["(old)", ""]
    sections[script] = ["(new)", ""]  # what a run of that benchmark does
    run_all._write(sections)
    with open(run_all.RESULTS, encoding="utf-8") as handle:
        text = handle.read()
    assert "(new)" in text and "(old)" not in text
    assert f"## {script} on another CPU\n(by hand)" in text
