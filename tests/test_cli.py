"""The `kgen` command and the demo page."""

import os
import subprocess
import sys

import pytest

from kgen import cli
from kgen.app import demo


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


@pytest.mark.tensorflow  # the TF lane of make test has room
def test_demo_shows_a_shipped_animal_gan_and_its_fd_table(tmp_path):
    import json

    import keras

    from kgen.gans import GAN, networks

    models = tmp_path / "models"
    models.mkdir()
    gan = GAN(networks.generator((28, 28, 1), 8, norm="selfmod", width=8),
              networks.discriminator((28, 28, 1), spectral_norm=True, width=8), loss="hinge")
    gan.save(str(models / "selfmod_animals.keras"))
    rows = {"dcgan": {"fd_median": 40.0, "seeds": [0]}, "+selfmod": {"fd_median": 30.0, "seeds": [0]}}
    (models / "gans_animals.json").write_text(json.dumps({"steps": 500, "floor": 1.5, "variants": rows}))
    section = demo.Section("GANs", "")
    demo._animal_gans(section, str(tmp_path), 0, str(models))
    assert os.path.getsize(tmp_path / "gan_selfmod_animals.png") > 0
    assert [name for name, _ in section.images] == ["gan_selfmod_animals.png"]
    assert [value for _, value, _ in section.metrics] == ["40.0", "30.0"]
    assert "×0.75 of DCGAN" in section.metrics[1][2]
    assert keras.saving.load_model(str(models / "selfmod_animals.keras"), safe_mode=True).latent_shape == (8,)
