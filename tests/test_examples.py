"""Every example script runs end to end (tiny settings) and writes what its docstring promises.

They run in the TensorFlow lane of `make test` (tools/run_tests.py --jobs 2): the JAX lane carries the
statistical gates and is the longer one.
"""

import os

import pytest
from repo_scripts import load_script


def _run(name, argv):
    return load_script(f"examples/{name}.py").main(argv)


@pytest.mark.tensorflow
@pytest.mark.parametrize("name,argv,outputs", [
    ("realnvp_digits", ["--epochs", "1"], ["samples_T0.7.png", "realnvp_digits.keras"]),
    ("nice_su", ["--epochs", "1", "--hidden", "32", "--depth", "1", "--limit", "256", "--noise", "dequantize"],
     ["samples_T0.75.png", "nice_animals.keras"]),
    ("glow_animals", ["--epochs", "1", "--depth", "1", "--filters", "8", "--limit", "128"],
     ["samples_T1.0.png", "reconstructions.png", "glow_animals.keras"]),
    ("ddim_animals", ["--resolution", "14", "--train-steps", "2", "--limit", "64", "--n", "2"],
     ["samplers.png", "diffusion_animals.keras"]),
    ("permutation_lm_toy", ["--n", "256"], ["permutation_lm_palindromes.keras"]),
    ("dcgan_to_selfmod", ["--stages", "dcgan", "--epochs", "1", "--width", "8", "--limit", "128"],
     ["dcgan_samples.png", "dcgan_generator.keras"]),
    ("dcgan_to_selfmod", ["--stages", "selfmod", "--critic", "sndcgan", "--epochs", "1", "--width", "8", "--limit",
                          "128"], ["selfmod_samples.png", "selfmod_generator.keras"]),
    ("upsample_guidance", ["--n", "2", "--steps", "3"], ["upsample_guidance.png"]),  # the shipped 14/28 models
])
def test_example_runs_and_writes_its_outputs(name, argv, outputs, tmp_path):
    assert _run(name, argv + ["--backend", "tensorflow", "--out", str(tmp_path)]) == 0
    for output in outputs:
        assert os.path.getsize(tmp_path / output) > 0


@pytest.mark.tensorflow
def test_the_gan_examples_critic_option_changes_only_the_spectrally_normalised_discriminators():
    example = load_script("examples/dcgan_to_selfmod.py")
    for stage in example.STAGES:
        g, d = example.stage_networks(stage, 4, 2, critic="sndcgan")
        g0, d0 = example.stage_networks(stage, 4, 2)
        assert [type(layer) for layer in g.layers] == [type(layer) for layer in g0.layers]
        deeper = len(d.layers) > len(d0.layers)
        assert deeper == (stage != "dcgan"), stage
    with pytest.raises(ValueError, match="critic"):
        example.stage_networks("selfmod", 4, 2, critic="resnet")


@pytest.mark.tensorflow
def test_glow_example_continues_a_saved_model_on_a_cosine_schedule(tmp_path):
    """`--init FILE` continues that model (not a fresh one): its first line reports the file's own bits/dim, which
    equal the last epoch's of the run that wrote it; a wrong `--init` stops before any work with the flag named."""
    import contextlib
    import io

    import keras

    first, second = tmp_path / "first", tmp_path / "second"
    tiny = ["--depth", "1", "--filters", "8", "--limit", "128", "--backend", "tensorflow"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert _run("glow_animals", tiny + ["--epochs", "1", "--out", str(first)]) == 0
        assert _run("glow_animals", tiny + ["--epochs", "2", "--lr-schedule", "cosine", "--warmup-steps", "1",
                                            "--init", str(first / "glow_animals.keras"), "--out", str(second)]) == 0
    lines = out.getvalue().splitlines()
    trained = next(line for line in lines if line.startswith("epoch 1:")).split("test ")[1]
    reloaded = next(line for line in lines if line.startswith(str(first / "glow_animals.keras"))).split("test ")[1]
    assert trained == reloaded
    # The schedule spans exactly the continued run: warm-up, then the cosine ends at 5 % of --lr on its last step.
    continued = keras.saving.load_model(second / "glow_animals.keras", safe_mode=True)
    steps = int(keras.ops.convert_to_numpy(continued.optimizer.iterations))
    assert steps == 2 * 2  # 2 epochs of 128 images in batches of 64
    schedule = keras.optimizers.schedules.deserialize(continued.optimizer.get_config()["learning_rate"])
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert float(keras.ops.convert_to_numpy(schedule(1))) == pytest.approx(1e-3)  # the end of the warm-up
    assert float(keras.ops.convert_to_numpy(schedule(steps))) == pytest.approx(0.05 * 1e-3)
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
        _run("glow_animals", tiny + ["--init", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "x")])
    assert "--init" in err.getvalue() and not os.path.exists(tmp_path / "x")
