"""The `kgen` command and the demo page."""

import os
import subprocess
import sys

import pytest

from kgen import cli, demo


def test_demo_datasets_section_writes_page_and_pictures(tmp_path):
    path = demo.write_demo(str(tmp_path), seed=0, sections=["datasets"])
    page = open(path, encoding="utf-8").read()
    for name in ("digits.png", "animals.png", "stacked_digits.png", "toy_ring8.png", "toy_grid25.png"):
        assert os.path.getsize(tmp_path / name) > 0
        assert name in page
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_demo_rejects_unknown_section_before_writing(tmp_path):
    with pytest.raises(ValueError, match="sections"):
        demo.write_demo(str(tmp_path / "out"), sections=["datasets", "nope"])
    assert not (tmp_path / "out").exists()


def test_cli_rejects_unknown_backend_and_command():
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--backend", "numpy", "demo"])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["dance"])


@pytest.mark.jax
def test_cli_backend_flag_wins_over_an_already_imported_keras(tmp_path):
    # The parent has KERAS_BACKEND=tensorflow, so `import kgen` loads Keras on TF; --backend torch must re-exec.
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "kgen.cli", "--backend", "torch", "demo", "--out", str(out), "--sections", "datasets"],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(out / "index.html") in result.stdout
    assert "Keras backend: torch" in (out / "index.html").read_text()
