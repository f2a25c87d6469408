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


def test_demo_upsample_guidance_section_shows_the_recorded_patch_experiment(tmp_path):
    section = demo.Section("Diffusion")
    demo._patches_rows(section, str(tmp_path))  # the part of diffusion_section that needs no sampling
    assert [name for name, _ in section.images] == ["patches_grid_eta1.png", "patches_spectra_eta1.png"]
    assert all(os.path.getsize(tmp_path / name) > 0 for name, _ in section.images)
    rows = [metric for metric, _, _ in section.metrics]
    assert any("(c) UG w_t=1" in row for row in rows) and any("(d) native" in row for row in rows)


def test_demo_rejects_unknown_section_before_writing(tmp_path):
    with pytest.raises(ValueError, match="sections"):
        demo.write_demo(str(tmp_path / "out"), sections=["datasets", "nope"])
    assert not (tmp_path / "out").exists()


def test_cli_rejects_unknown_backend_and_command():
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--backend", "numpy", "demo"])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["dance"])


@pytest.mark.jax  # the work is in a child process on torch; the test sits in make test's JAX lane (balance)
def test_cli_backend_flag_wins_over_an_already_imported_keras(tmp_path):
    # The parent has KERAS_BACKEND=tensorflow, so `import kgen` loads Keras on TF; --backend torch must re-exec.
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "kgen.cli", "--backend", "torch", "demo", "--out", str(out), "--sections", "datasets"],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(out / "index.html") in result.stdout
    assert "kgen demo: [1/1] datasets" in result.stdout  # progress per section
    assert "Keras backend: torch" in (out / "index.html").read_text()


@pytest.mark.tensorflow  # the TF lane of make test has room
def test_demo_shows_a_shipped_animal_gan_and_its_fd_table(tmp_path):
    import json

    import keras

    from kgen.export import save_for_inference
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
    assert [name for name, _ in section.images] == ["gan_selfmod_animals.png"]  # the files it finds, no more
    assert [value for _, value, _ in section.metrics] == ["40.0", "30.0"]
    save_for_inference(gan, models / "selfmod_sndcgan_animals.keras")  # the second shipped GAN
    section = demo.Section("GANs", "")
    demo._animal_gans(section, str(tmp_path), 0, str(models))
    assert [name for name, _ in section.images] == ["gan_selfmod_animals.png", "gan_selfmod_sndcgan_animals.png"]
    assert "SNDCGAN critic" in section.images[1][1]
    assert os.path.getsize(tmp_path / "gan_selfmod_sndcgan_animals.png") > 0
    assert "×0.75 of DCGAN" in section.metrics[1][2]
    # The optimizer-recipe study, where the file has one: a line per recipe.
    study = {"steps": 2000, "device": "a CPU", "recipes": {"ttur": {"variants": {
        "dcgan": {"fd_median": 24.6, "seeds": [0, 1]}, "+selfmod": {"fd_median": 23.7, "seeds": [0, 1]}}}}}
    (models / "gans_animals.json").write_text(json.dumps({"steps": 500, "floor": 1.5, "variants": rows,
                                                         "cpu_recipe_study": study}))
    section = demo.Section("GANs", "")
    demo._animal_gans(section, str(tmp_path), 0, str(models))
    assert section.metrics[2][:2] == ("animals GAN FD at 2000 steps, recipe ttur", "dcgan 24.6, +selfmod 23.7")
    assert "median of seeds [0, 1];" in section.metrics[2][2]
    study["recipes"]["ttur"]["variants"]["dcgan"]["seeds"] = [0, 1, 2, 3]  # then each variant's seeds are named
    (models / "gans_animals.json").write_text(json.dumps({"steps": 500, "floor": 1.5, "variants": rows,
                                                         "cpu_recipe_study": study}))
    section = demo.Section("GANs", "")
    demo._animal_gans(section, str(tmp_path), 0, str(models))
    assert "median of seeds {'dcgan': [0, 1, 2, 3], '+selfmod': [0, 1]};" in section.metrics[2][2]
    # The discriminator ablations, where the file has them: one line.
    ablation = {"steps": 2000, "device": "a CPU", "variants": {
        "dcgan-bnd": {"fd_median": 55.6, "seeds": [0, 1]}, "+selfmod+bnd": {"fd_median": 8.9, "seeds": [0, 1]}}}
    (models / "gans_animals.json").write_text(json.dumps({"steps": 500, "floor": 1.5, "variants": rows,
                                                         "cpu_discriminator_ablation": ablation}))
    section = demo.Section("GANs", "")
    demo._animal_gans(section, str(tmp_path), 0, str(models))
    assert section.metrics[2][:2] == ("animals GAN FD at 2000 steps, discriminator BatchNorm ablations",
                                      "dcgan-bnd 55.6, +selfmod+bnd 8.9")
    assert section.metrics[2][2] == "median of seeds [0, 1]; a CPU"
    # The SELF-MOD paper's pair with the SNDCGAN critic, where the file has it: a line per budget.
    pair = {"device": "a CPU", "tables_by_steps": {
        "2000": {"sndcgan": {"fd_median": 22.2, "seeds": [0, 1]},
                 "sndcgan+selfmod": {"fd_median": 11.0, "seeds": [0, 1]}},
        "4000": {"sndcgan": {"fd_median": 9.0, "seeds": [0]}}}}
    (models / "gans_animals.json").write_text(json.dumps({"steps": 500, "floor": 1.5, "variants": rows,
                                                         "cpu_sndcgan_study": pair}))
    section = demo.Section("GANs", "")
    demo._animal_gans(section, str(tmp_path), 0, str(models))
    assert [line[:2] for line in section.metrics[2:]] == [
        (f"animals GAN FD at {steps} steps, variants with DCGAN's or the SNDCGAN critic", values)
        for steps, values in ((2000, "sndcgan 22.2, sndcgan+selfmod 11.0"), (4000, "sndcgan 9.0"))]
    assert keras.saving.load_model(str(models / "selfmod_animals.keras"), safe_mode=True).latent_shape == (8,)


def _kgen(*args, env=None, timeout=60):
    """The installed command's code (`python -m kgen_cli`, what the `kgen` console script runs)."""
    return subprocess.run([sys.executable, "-m", "kgen_cli", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=timeout)


@pytest.mark.torch  # no backend involved (child processes); once is enough
def test_help_imports_neither_keras_nor_a_backend():
    probe = ("import sys, kgen_cli\n"
             "try:\n    kgen_cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('keras', 'jax', 'tensorflow', 'torch', 'kgen') if m in sys.modules))")
    for args in (["--help"], ["train", "--help"], ["sample", "--help"]):
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "[]", (args, result.stdout[-300:])
        assert "cuda" not in result.stderr.lower() and "absl" not in result.stderr  # no backend log lines


@pytest.mark.torch  # child process; once is enough
def test_train_help_lists_each_familys_models_and_data_as_the_recipes_do():
    import kgen_cli
    from kgen.app.presets import RECIPES

    for family, make in RECIPES.items():
        recipe = make()
        assert kgen_cli.FAMILIES[family] == (tuple(sorted(recipe.models)), recipe.default_model,
                                             tuple(sorted(recipe.data))), family
    assert set(kgen_cli.FAMILIES) == set(RECIPES)
    text = _kgen("train", "--help").stdout
    assert "realnvp" in text and "animals14" in text and "reverse" in text


@pytest.mark.torch  # child processes; once is enough
@pytest.mark.parametrize("args, flag", [(["sample", "DIR", "--n", "many"], "--n"),
                                        (["train", "flowz", "--data", "d", "--epochs", "1", "--out", "o"], "family"),
                                        (["train", "flows", "--data", "digits", "--out", "o"], "--epochs"),
                                        (["--backend", "numpy", "demo"], "--backend")])
def test_bad_flags_are_one_line_naming_the_flag_with_exit_code_2(args, flag):
    result = _kgen(*args)
    assert result.returncode == 2
    assert flag in result.stderr and "Traceback" not in result.stderr


@pytest.mark.jax  # the children run JAX; the test sits in make test's JAX lane, now the shorter one
def test_runtime_argument_errors_are_one_line_with_exit_code_2(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = _kgen("sample", str(tmp_path / "nowhere"), env=env, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "is not a finished kgen run" in result.stderr and "Traceback" not in result.stderr
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"family": "flows", "data": "digits"}')
    (run / "model.keras").write_bytes(b"not a zip file")
    result = _kgen("sample", str(run), "--backend", "jax", env=env, timeout=300)  # --backend after the command
    assert result.returncode == 2 and "is corrupt" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.torch
def test_export_on_torch_names_the_onnx_flag(tmp_path):
    result = _kgen("export", str(tmp_path), "--backend", "torch", timeout=300)
    assert result.returncode == 2 and "--format onnx" in result.stderr, result.stderr[-2000:]
