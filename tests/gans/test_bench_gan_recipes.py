"""benchmarks/bench_gans_animals.py's optimizer recipes, and the GPU check's GAN jobs that use them."""

import numpy as np
import pytest
from repo_scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/bench_gans_animals.py")


def _adam(optimizer):
    return (float(np.asarray(optimizer.learning_rate)), float(optimizer.beta_1), float(optimizer.beta_2))


@pytest.mark.jax
@pytest.mark.tensorflow
@pytest.mark.torch
def test_each_recipe_reaches_the_two_optimizers_and_the_step_rule(bench):
    """SAGAN's rule (G 1e-4, D 4e-4, Adam(β = (0, 0.9))) ends up in the GAN's two optimizers, overrides win, and
    "equal" stays the DCGAN setting the published tables were measured with."""
    gan = bench.build_gan("+sn", 0, bench.recipe_of("ttur"), latent_dim=8, width=8)
    assert _adam(gan.network_optimizers["generator"]) == pytest.approx((1e-4, 0.0, 0.9))
    assert _adam(gan.network_optimizers["discriminator"]) == pytest.approx((4e-4, 0.0, 0.9))
    assert gan.d_steps == 1
    gan = bench.build_gan("dcgan", 0, bench.recipe_of("equal", lr_d=3e-4, d_steps=2), latent_dim=8, width=8)
    assert _adam(gan.network_optimizers["generator"]) == pytest.approx((2e-4, 0.5, 0.999))
    assert _adam(gan.network_optimizers["discriminator"]) == pytest.approx((3e-4, 0.5, 0.999))
    assert gan.d_steps == 2
    assert "G Adam(1e-04, 0.0, 0.9), D Adam(4e-04, 0.0, 0.9)" in bench.describe(bench.recipe_of("ttur"))
    with pytest.raises(ValueError, match="recipe must be one of .*'sagan'"):
        bench.recipe_of("sagan")


@pytest.mark.jax
def test_scoring_saved_milestones_reads_only_the_asked_recipe(bench, tmp_path):
    """`--load` with `--recipe ttur` scores the `..._<seed>_ttur_g<steps>` files and "equal" the others: two
    different generators in one folder give two different FDs (reading both, or the wrong one, would not)."""
    generator = bench.variant_networks("dcgan", 8, 8)[0]
    generator.save_weights(str(tmp_path / "gan_dcgan_0_g2.weights.h5"))
    # The "ttur" file draws bright images: its last bias is 2, so tanh(2 + …) ≈ 0.96.
    bias = [layer for layer in generator.layers if getattr(layer, "bias", None) is not None][-1].bias
    bias.assign(np.full(bias.shape, 2.0, "float32"))
    generator.save_weights(str(tmp_path / "gan_dcgan_0_ttur_g2.weights.h5"))
    scores = {}
    for recipe in ("equal", "ttur"):
        result = bench.main(["--load", str(tmp_path), "--recipe", recipe, "--variants", "dcgan", "--latent-dim", "8",
                             "--width", "8", "--n-eval", "500"])
        assert set(result["curves"]["dcgan"]) == {2} and set(result["curves"]["dcgan"][2]) == {0}
        assert result["recipe"]["name"] == recipe
        scores[recipe] = result["curves"]["dcgan"][2][0]
    assert np.isfinite(list(scores.values())).all()
    assert abs(scores["equal"] - scores["ttur"]) > 10
    # `--ema` reads the averaged generators saved beside them (`..._ema_g<steps>`), and only those
    generator.save_weights(str(tmp_path / "gan_dcgan_0_ema_g4.weights.h5"))
    result = bench.main(["--load", str(tmp_path), "--ema", "--variants", "dcgan", "--latent-dim", "8", "--width", "8",
                         "--n-eval", "500"])
    assert set(result["curves"]["dcgan"]) == {4} and result["generator"].startswith("averaged")
    assert result["curves"]["dcgan"][4][0] == pytest.approx(scores["ttur"], rel=1e-4)
    with pytest.raises(SystemExit):
        bench.main(["--ema", "--variants", "dcgan"])  # --ema without --load: an argument error


@pytest.mark.jax
def test_ema_decay_trains_and_scores_both_generators(bench, monkeypatch):
    """`--ema-decay` builds each GAN with the average and scores the live and the averaged generator apart."""
    built = {}
    original = bench.build_gan

    def spy(*args, **kwargs):
        built["gan"] = original(*args, **kwargs)
        return built["gan"]

    monkeypatch.setattr(bench, "build_gan", spy)
    monkeypatch.setattr(bench, "load_animals", lambda split: (
        np.random.default_rng(0).integers(0, 256, size=(128, 28, 28, 1)).astype("uint8"), None))
    table = bench.main(["--epochs", "1", "--batch-size", "64", "--variants", "dcgan", "--latent-dim", "8",
                        "--width", "8", "--n-eval", "500", "--ema-decay", "0.5"])
    gan = built["gan"]
    assert gan.ema_decay == 0.5 and float(np.asarray(gan.ema.ready.value)) == 1.0  # standing statistics made
    live, averaged = table["variants"]["dcgan"]["fd_median"], table["variants_ema"]["dcgan"]["fd_median"]
    assert np.isfinite([live, averaged]).all() and live != averaged


@pytest.mark.jax
def test_every_seeds_final_generator_is_saved_and_scored_again_on_the_fixed_latents(bench, monkeypatch, tmp_path):
    """`--save` writes each seed's final G as a milestone file; `--load` scores those files on the fixed latents,
    which is the training run's own "on the fixed latents" FD, per seed (and differs from seed to seed)."""
    monkeypatch.setattr(bench, "load_animals", lambda split: (
        np.random.default_rng(0).integers(0, 256, size=(128, 28, 28, 1)).astype("uint8"), None))
    common = ["--variants", "dcgan", "--latent-dim", "8", "--width", "8", "--n-eval", "500"]
    table = bench.main(["--epochs", "1", "--batch-size", "64", "--seeds", "0,1", "--save", str(tmp_path)] + common)
    row = table["variants"]["dcgan"]
    assert sorted(p.name for p in tmp_path.glob("gan_*.weights.h5")) == ["gan_dcgan_0_g2.weights.h5",
                                                                         "gan_dcgan_1_g2.weights.h5"]
    again = bench.main(["--load", str(tmp_path)] + common)["curves"]["dcgan"][2]
    np.testing.assert_allclose([again[0], again[1]], row["fd_fixed_latents_per_seed"], rtol=1e-4)
    assert row["fd_fixed_latents_median"] == pytest.approx(float(np.median(row["fd_fixed_latents_per_seed"])))
    assert abs(again[0] - again[1]) > 1e-3  # two generators, two scores


@pytest.mark.torch  # nothing runs on a backend: once is enough
def test_gpu_check_gan_jobs_carry_the_recipe():
    gpu_check = load_script("tools/gpu_check.py")
    jobs = gpu_check.train_jobs(["gans"], [0, 1], gan_recipe="ttur")
    assert jobs == [f"gan:{v}:{s}:ttur" for v in gpu_check.VARIANTS for s in (0, 1)]
    assert gpu_check.train_jobs(["gans"], [0]) == [f"gan:{v}:0" for v in gpu_check.VARIANTS]  # old file names
    assert gpu_check.train_jobs(["gans"], [0], dry_run=True, gan_recipe="ttur") == ["gan:+selfmod:0:ttur"]
    with pytest.raises(SystemExit, match="--gan-recipe .*'adam'"):
        gpu_check.train_jobs(["gans"], [0], gan_recipe="adam")
    # Explicit --jobs are checked before any work: every generated job passes, a typo does not.
    everything = gpu_check.train_jobs(["gans", "diffusion", "glow", "patches"], [0, 1], gan_recipe="ttur")
    assert gpu_check.check_jobs(everything) == everything
    assert gpu_check.check_jobs(["gan:+selfmod+bnd:3", "gan:sndcgan+selfmod:0", "gan:sndcgan+attention+selfmod:1"]) == [
        "gan:+selfmod+bnd:3", "gan:sndcgan+selfmod:0", "gan:sndcgan+attention+selfmod:1"]
    for bad in ("gan:sndcgan+selfmod", "gan:sndgan:0", "gan:dcgan:x", "gan:dcgan:0:adam", "diffusion:32",
                "glow:digits", "vae:0", ""):
        with pytest.raises(SystemExit, match="--jobs: .* is none of"):
            gpu_check.check_jobs([bad])
    bench = load_script("benchmarks/bench_gans_animals.py", "bench_gans_animals_names")
    assert gpu_check.VARIANTS == bench.VARIANTS + bench.EXTRA_VARIANTS  # the orchestrator's copies (no Keras there)
    assert gpu_check.GAN_SNDCGAN_PATH == bench.SNDCGAN_PATH  # accepted in --jobs, not trained by default
    assert not set(bench.SNDCGAN_PATH) & set(gpu_check.VARIANTS)
    assert gpu_check.GAN_RECIPES == tuple(bench.RECIPES)


@pytest.mark.jax
@pytest.mark.tensorflow
@pytest.mark.torch
def test_the_selfmod_generator_alone_keeps_dcgans_discriminator(bench):
    """`dcgan+selfmod` changes only G's normalization: the same D as `dcgan` (BatchNorm, no spectral norm), the
    same G as `+selfmod` minus spectral norm and attention."""
    def layer_types(model):
        return sorted(type(layer).__name__ for layer in model.layers)

    g, d = bench.variant_networks("dcgan+selfmod", 8, 8)
    g0, d0 = bench.variant_networks("dcgan", 8, 8)
    assert layer_types(d) == layer_types(d0) and "BatchNormalization" in layer_types(d)
    assert "SpectralNormalization" not in layer_types(d)
    assert any("SelfMod" in name for name in layer_types(g)) and not any("SelfMod" in name for name in layer_types(g0))
    assert bench.file_stem("dcgan+selfmod") == "dcganselfmod" and bench.file_stem("+sn") == "sn"
    with pytest.raises(ValueError, match="variant must be one of .*'sagan'"):
        bench.variant_networks("sagan", 8, 8)


@pytest.mark.jax
@pytest.mark.tensorflow
@pytest.mark.torch
def test_the_sndcgan_pair_differs_only_in_the_generators_normalization(bench):
    """`sndcgan` / `sndcgan+selfmod`: the SELF-MOD paper's pair, DCGAN's generator with and without self-modulation
    against the same spectrally normalised SNDCGAN critic (twice DCGAN's convolutions, no BatchNorm)."""
    def layer_types(model):
        return sorted(type(layer).__name__ for layer in model.layers)

    g, d = bench.variant_networks("sndcgan", 8, 8)
    g_mod, d_mod = bench.variant_networks("sndcgan+selfmod", 8, 8)
    assert layer_types(d) == layer_types(d_mod) and d.count_params() == d_mod.count_params()
    assert layer_types(g) == layer_types(bench.variant_networks("dcgan", 8, 8)[0])
    assert layer_types(g_mod) == layer_types(bench.variant_networks("dcgan+selfmod", 8, 8)[0])
    assert layer_types(d).count("SpectralNormalization") == 6 and "BatchNormalization" not in layer_types(d)
    assert layer_types(bench.variant_networks("+sn", 8, 8)[1]).count("SpectralNormalization") == 3
    assert bench.file_stem("sndcgan+selfmod") == "sndcganselfmod"


@pytest.mark.jax
@pytest.mark.tensorflow
@pytest.mark.torch
def test_the_sndcgan_path_adds_sagans_then_selfmods_step(bench):
    """The article's path in front of the SNDCGAN critic: `sndcgan+attention` is `sndcgan` plus spectral norm in G
    and self-attention in G and D (as `+attention` adds to `+sn`), `sndcgan+attention+selfmod` that plus G's
    self-modulated BatchNorms (as `+selfmod` adds to `+attention`)."""
    def layer_types(model):
        return sorted(type(layer).__name__ for layer in model.layers)

    def counts(model):
        types = layer_types(model)
        return {t: types.count(t) for t in set(types)}

    def added(after, before):  # the layer types one network has more of than the other
        a, b = counts(after), counts(before)
        return {t: n - b.get(t, 0) for t, n in a.items() if n != b.get(t, 0)}

    g_sn, d_sn = bench.variant_networks("sndcgan", 8, 8)
    g_att, d_att = bench.variant_networks("sndcgan+attention", 8, 8)
    g_mod, d_mod = bench.variant_networks("sndcgan+attention+selfmod", 8, 8)
    # The same additions as on the two-convolution path, for G and for D.
    for (new, old), (path_new, path_old) in (((g_att, g_sn), ("+attention", "+sn")),
                                             ((d_att, d_sn), ("+attention", "+sn")),
                                             ((g_mod, g_att), ("+selfmod", "+attention")),
                                             ((d_mod, d_att), ("+selfmod", "+attention"))):
        i = 0 if new in (g_att, g_mod) else 1
        assert added(new, old) == added(bench.variant_networks(path_new, 8, 8)[i],
                                        bench.variant_networks(path_old, 8, 8)[i])
    assert "SelfAttention2D" in layer_types(d_att) and "SelfAttention2D" in layer_types(g_att)
    assert layer_types(d_mod) == layer_types(d_att) and d_mod.count_params() == d_att.count_params()
    assert layer_types(d_att).count("SpectralNormalization") >= 6 and "BatchNormalization" not in layer_types(d_att)
    assert bench.file_stem("sndcgan+attention+selfmod") == "sndcganattentionselfmod"


@pytest.mark.jax
@pytest.mark.tensorflow
@pytest.mark.torch
def test_the_batchnorm_ablations_change_only_the_discriminators_batchnorm(bench):
    """`dcgan-bnd` is DCGAN without D's BatchNorms, `<variant>+bnd` the variant with them; the generators are
    unchanged."""
    def layer_types(model):
        return sorted(type(layer).__name__ for layer in model.layers)

    for ablation, base in (("dcgan-bnd", "dcgan"), ("+sn+bnd", "+sn"), ("+selfmod+bnd", "+selfmod")):
        g, d = bench.variant_networks(ablation, 8, 8)
        g0, d0 = bench.variant_networks(base, 8, 8)
        assert layer_types(g) == layer_types(g0)
        assert ("BatchNormalization" in layer_types(d)) != ("BatchNormalization" in layer_types(d0))
        assert [t for t in layer_types(d) if t != "BatchNormalization"] == [
            t for t in layer_types(d0) if t != "BatchNormalization"]
    assert "SpectralNormalization" in layer_types(bench.variant_networks("+sn+bnd", 8, 8)[1])
    gpu_check = load_script("tools/gpu_check.py")
    assert not set(bench.ABLATIONS) & set(gpu_check.VARIANTS)
    assert gpu_check.GAN_ABLATIONS == bench.ABLATIONS  # the orchestrator's copy: accepted in --jobs


@pytest.mark.jax
@pytest.mark.tensorflow
@pytest.mark.torch
def test_the_joint_batch_ablation_differs_from_the_separate_calls_only_through_batchnorm(bench):
    """`dcgan-joint` scores real and fake in one D call. With a D without BatchNorm that is the same loss as two
    calls (the oracle); with DCGAN's BatchNorm (training mode) the batch statistics mix and the loss differs."""
    from keras import ops

    recipe = bench.recipe_of("equal")
    rng = np.random.default_rng(0)
    x = ops.convert_to_tensor(rng.uniform(-1, 1, size=(6, 28, 28, 1)).astype("float32"))
    fake = ops.convert_to_tensor(rng.uniform(-1, 1, size=(6, 28, 28, 1)).astype("float32") * 0.3)
    losses = {}
    for variant in ("dcgan-bnd", "dcgan"):
        gan = bench.build_gan(variant, 0, recipe, latent_dim=8, width=8)
        joint = bench.JointBatchGAN(gan.generator, gan.discriminator, loss="hinge", seed=0)
        losses[variant] = [float(ops.convert_to_numpy(model.discriminator_loss(x, None, fake)))
                           for model in (gan, joint)]
        losses[variant] += [float(ops.convert_to_numpy(model.generator_loss(x, None, fake))) for model in (gan, joint)]
    d_sep, d_joint, g_sep, g_joint = losses["dcgan-bnd"]
    assert d_joint == pytest.approx(d_sep, rel=1e-5) and g_joint == pytest.approx(g_sep, rel=1e-5)
    d_sep, d_joint, g_sep, g_joint = losses["dcgan"]
    assert abs(d_joint - d_sep) > 1e-3 and abs(g_joint - g_sep) > 1e-3  # bites: BatchNorm sees the mixed batch
    assert bench.build_gan("dcgan-joint", 0, recipe, latent_dim=8, width=8).__class__ is bench.JointBatchGAN


@pytest.mark.jax
def test_the_latent_sets_probe_reads_every_variant_from_its_milestone_name(bench):
    """benchmarks/probes/gan_latent_sets.py rebuilds each generator from its file's name: every variant's
    milestone name (any recipe, live or averaged) maps back to the variant, anything else stops before work."""
    probe = load_script("benchmarks/probes/gan_latent_sets.py")
    for name in bench.ALL_VARIANTS:
        for tail in ("", "_ttur", "_ema", "_ttur_ema"):
            assert probe.variant_of(f"DIR/gan_{bench.file_stem(name)}_3{tail}_g12000.weights.h5") == name
    for bad in ("gan_sagan_0_g100.weights.h5", "gan_dcgan_g100.weights.h5", "dcgan_animals.keras"):
        with pytest.raises(SystemExit, match="not a generator milestone"):
            probe.variant_of(bad)
