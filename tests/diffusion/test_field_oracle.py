"""The 2-D field oracles of kgen.diffusion.testing: the Wiener ε* of a stationary Gaussian field against the dense
Gaussian formulas (and autodiff of the log-density), the per-frequency and alias-block propagation against
`propagate_gaussian`, the exact W2, and what Upsample Guidance's theory promises on these laws."""

import doctest

import numpy as np
import pytest
from keras import ops

from kgen import backend as kb
from kgen.datasets import field_spectrum
from kgen.diffusion import field_oracles
from kgen.diffusion import CosineSchedule, DDIMSampler, DDPMSampler, UpsampleGuidance
from kgen.diffusion.guidance import average_pool
from kgen.diffusion.testing import (FieldWienerDenoiser, GaussianDenoiser, diagonal_blocks, field_covariance,
                                    pooled_spectrum, propagate_field, propagate_gaussian,
                                    propagate_upsample_guidance, upsample_guidance_blocks, upsampled_blocks,
                                    w2_field, w2_gaussian)


def _np(x):
    return ops.convert_to_numpy(x).astype(np.float64)


def _compiled(fn, *args):
    out = kb.compile_function(fn)(*[ops.convert_to_tensor(a) for a in args])
    return tuple(_np(o) for o in out) if isinstance(out, (tuple, list)) else _np(out)


def _dft(n):
    f1 = np.fft.fft(np.eye(n), norm="ortho")
    return np.kron(f1, f1)


def _dense_from_gain(gain):
    """The real matrix of ε̂(k) = gain(k) ẑ(k) on row-major pixels."""
    f = _dft(len(gain))
    return np.real(f.conj().T @ (gain.reshape(-1, 1) * f))


def _dense_from_blocks(blocks):
    """The real matrix of an alias-block operator (L, L, k, k) on the n×n grid, n = s L."""
    low, k = blocks.shape[0], blocks.shape[-1]
    scale = round(np.sqrt(k))
    n = low * scale
    index = np.arange(n * n).reshape(scale, low, scale, low).transpose(1, 3, 0, 2).reshape(low, low, k)
    full = np.zeros((n * n, n * n), dtype=complex)
    for g1 in range(low):
        for g2 in range(low):
            full[np.ix_(index[g1, g2], index[g1, g2])] = blocks[g1, g2]
    f = _dft(n)
    dense = f.conj().T @ full @ f
    assert np.abs(dense.imag).max() < 1e-10
    return dense.real


class _Dense:
    """An affine oracle for `propagate_gaussian`, given as a function of λ returning its (D, D) matrix."""

    def __init__(self, matrix_at, dim):
        self.matrix_at, self.dim = matrix_at, dim

    def affine_numpy(self, logsnr):
        return self.matrix_at(logsnr), np.zeros(self.dim)


def test_module_doctests_print_what_they_show():
    result = doctest.testmod(field_oracles, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


LOGSNR = np.array([-5.0, -1.0, 0.5, 4.0], "float32")


@pytest.mark.parametrize("size", [4, 6])
def test_wiener_eps_is_minus_sigma_times_the_autodiff_score_of_the_dense_density(size):
    spectrum = field_spectrum(size, slope=2.0)
    field, dense = FieldWienerDenoiser(spectrum), GaussianDenoiser(np.zeros(size * size), field_covariance(spectrum))
    z = np.random.default_rng(0).normal(size=(4, size, size, 1)).astype("float32")
    sigma = np.sqrt(1.0 / (1.0 + np.exp(LOGSNR)))

    def score(z, logsnr):
        return kb.input_gradient(lambda v: dense.log_density(v, logsnr), z)

    eps, grad, log_field, log_dense = _compiled(
        lambda z, l: (field(z, l), score(z, l), field.log_density(z, l), dense.log_density(z, l)), z, LOGSNR)
    np.testing.assert_allclose(eps, -sigma[:, None, None, None] * grad, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(log_field, log_dense, rtol=1e-5)
    # The float64 gains are the dense affine map ε* = σ (α² C + σ² I)⁻¹ z exactly.
    for logsnr in LOGSNR:
        np.testing.assert_allclose(_dense_from_gain(field.gain_numpy(logsnr)), dense.affine_numpy(logsnr)[0],
                                   atol=1e-12)


def test_channels_are_independent_fields():
    field = FieldWienerDenoiser(field_spectrum(6, slope=1.0))
    z = np.random.default_rng(1).normal(size=(2, 6, 6, 2)).astype("float32")
    both, first, second = _compiled(lambda z, l: (field(z, l), field(z[..., :1], l), field(z[..., 1:], l)),
                                    z, LOGSNR[:2])
    np.testing.assert_allclose(both, np.concatenate([first, second], axis=-1), atol=1e-6)


def test_at_another_size_the_same_taps_are_applied():
    """Impulse response at 12×12 = the 6×6 taps h = IDFT(gain) placed at offsets −3..3, the ±3 taps halved."""
    field = FieldWienerDenoiser(field_spectrum(6, slope=2.0))
    impulse = np.zeros((1, 12, 12, 1), "float32")
    impulse[0, 0, 0, 0] = 1.0
    logsnr = np.array([0.5], "float32")
    response = _compiled(field, impulse, logsnr)[0, :, :, 0]
    taps = np.real(np.fft.ifft2(field.gain_numpy(0.5)))
    expected = np.zeros((12, 12))
    for o1 in range(-3, 4):
        for o2 in range(-3, 4):
            weight = (0.5 if abs(o1) == 3 else 1.0) * (0.5 if abs(o2) == 3 else 1.0)
            expected[o1 % 12, o2 % 12] += weight * taps[o1 % 6, o2 % 6]
    np.testing.assert_allclose(response, expected, atol=1e-5)
    np.testing.assert_allclose(np.real(np.fft.ifft2(field.gain_numpy(0.5, 12))), expected, atol=1e-12)


@pytest.mark.parametrize("sampler", [DDIMSampler(CosineSchedule(), 20), DDPMSampler(CosineSchedule(), 12)],
                         ids=["ddim", "ddpm"])
@pytest.mark.parametrize("size", [4, 6])
def test_per_frequency_propagation_equals_dense_propagate_gaussian(sampler, size):
    spectrum = field_spectrum(size, slope=2.0)
    exact = FieldWienerDenoiser(spectrum)
    _, cov = propagate_gaussian(sampler, GaussianDenoiser(np.zeros(size * size), field_covariance(spectrum)))
    np.testing.assert_allclose(field_covariance(propagate_field(sampler, exact)), cov, atol=1e-10)
    # The naive taps of a smaller law at this size: still diagonal, still exact.
    taps = FieldWienerDenoiser(field_spectrum(size // 2, slope=2.0))
    _, cov = propagate_gaussian(sampler, _Dense(lambda l: _dense_from_gain(taps.gain_numpy(l, size)), size * size))
    np.testing.assert_allclose(field_covariance(propagate_field(sampler, taps, size)), cov, atol=1e-10)


def _ug(law_size=8, scale=2, slope=2.0, **options):
    low = FieldWienerDenoiser(pooled_spectrum(field_spectrum(law_size, slope=slope), scale))
    return UpsampleGuidance(low, CosineSchedule(), scale, **options)


@pytest.mark.parametrize("options", [{}, {"w": 1.2, "eta": 0.6}, {"w": 0.7, "ablate": ("rescale", "time_shift")},
                                     {"clip_logsnr": True, "ablate": ("noise_scale",)}])
def test_ug_blocks_are_the_keras_upsample_guidance(options):
    ug = _ug(**options)
    basis = np.eye(64, dtype="float32").reshape(64, 8, 8, 1)
    schedule = CosineSchedule()
    for logsnr in [-4.0, 0.3, float(schedule.logsnr_numpy(0.2)), 13.0]:  # t = 0.2: the gate is off there
        keras_matrix = _compiled(ug, basis, np.full(64, logsnr, "float32")).reshape(64, 64).T
        blocks = _dense_from_blocks(upsample_guidance_blocks(ug, logsnr, 8))
        np.testing.assert_allclose(keras_matrix, blocks, atol=2e-4 * max(1.0, np.abs(blocks).max()))


def test_block_propagation_and_w2_equal_the_dense_formulas():
    ug, sampler = _ug(w=1.2), DDIMSampler(CosineSchedule(), 15)
    law = field_spectrum(8, slope=2.0)
    blocks = propagate_upsample_guidance(sampler, ug, 8)
    _, cov = propagate_gaussian(sampler, _Dense(lambda l: _dense_from_blocks(upsample_guidance_blocks(ug, l, 8)), 64))
    np.testing.assert_allclose(_dense_from_blocks(blocks), cov, atol=1e-10)
    zero = np.zeros(64)
    np.testing.assert_allclose(w2_field(blocks, law), w2_gaussian(zero, cov, zero, field_covariance(law)), rtol=1e-8)
    other = field_spectrum(8, slope=1.0)
    np.testing.assert_allclose(w2_field(other, law), w2_gaussian(zero, field_covariance(other), zero,
                                                                 field_covariance(law)), rtol=1e-8)
    np.testing.assert_allclose(w2_field(diagonal_blocks(other, 2), law), w2_field(other, law), rtol=1e-10)
    up = upsampled_blocks(pooled_spectrum(law, 2), 2)
    down = _pool_matrix(8, 2)
    upsample = 4 * down.T
    np.testing.assert_allclose(_dense_from_blocks(up), upsample @ down @ field_covariance(law) @ down.T @ upsample.T,
                               atol=1e-10)


def _pool_matrix(n, scale):
    """D as a (L², n²) matrix on row-major pixels."""
    low = n // scale
    d = np.zeros((low * low, n * n))
    for i in range(n):
        for j in range(n):
            d[(i // scale) * low + j // scale, i * n + j] = 1.0 / scale**2
    return d


def test_pooled_spectrum_is_the_law_of_the_pooled_field():
    law = field_spectrum(8, slope=2.0)
    down = _pool_matrix(8, 2)
    np.testing.assert_allclose(field_covariance(pooled_spectrum(law, 2)), down @ field_covariance(law) @ down.T,
                               atol=1e-12)


def test_ug_low_resolution_term_is_the_exact_posterior_mean_of_the_pooled_noise():
    """Theory (guidance.py; Su part 23): D x_t = α D x₀ + (σ/√k) ε_low, so with the exact low-resolution ε* of
    the pooled law, ε*_low(D x_t/ρ, λ + log k)/√k = E[D ε | D x_t] for any data law. With w_t = 1 (DU = I),
    D ε̃ is exactly that term: here E[D ε | D x_t] = (σ/k)(α² D C Dᵀ + σ² I/k)⁻¹ D x_t, a power-law field."""
    ug = _ug(clip_logsnr=False)
    law = field_spectrum(8, slope=2.0)
    down = _pool_matrix(8, 2)
    x = np.random.default_rng(2).normal(size=(4, 8, 8, 1)).astype("float32")
    pooled_eps = _compiled(lambda x, l: average_pool(ug(x, l), 2), x, LOGSNR).reshape(4, 16)
    cov_low = down @ field_covariance(law) @ down.T
    for i, logsnr in enumerate(LOGSNR):
        alpha2 = 1.0 / (1.0 + np.exp(-float(logsnr)))
        sigma2 = 1.0 - alpha2
        posterior = np.sqrt(sigma2) / 4 * np.linalg.solve(alpha2 * cov_low + sigma2 / 4 * np.eye(16),
                                                          down @ x[i].reshape(-1))
        np.testing.assert_allclose(pooled_eps[i], posterior, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("law", ["independent", "power_law"])
def test_ug_with_exact_epsilons_is_exact_iff_coarse_and_detail_are_independent(law):
    """Theory (guidance.py: "the main term is exact when D x₀ and (I − U D) x₀ are independent"): with the exact
    high-resolution ε* as `eps_fn`, the exact low-resolution ε* of the pooled law and w_t = 1,
    ε̃ = ε* + U(E[Dε | D x_t] − E[Dε | x_t]), which is ε* when D x_t carries all the information x_t has about
    D ε: for Gaussian data, when D C (I − U D)ᵀ = 0. A stationary field meets it when S is constant on every
    alias set {g + L a} (S(k) = S_L(k mod L): four independent copies of a field interleaved on the 2×2
    sub-lattices). A power-law field does not (negative control): there UG is off by O(1) in ε."""
    if law == "independent":
        spectrum = np.tile(field_spectrum(4, slope=2.0) + 0.05, (2, 2))
    else:
        spectrum = field_spectrum(8, slope=2.0)
    cov, down = field_covariance(spectrum), _pool_matrix(8, 2)
    coupling = np.abs(down @ cov @ (np.eye(64) - 4 * down.T @ down).T).max()
    high = FieldWienerDenoiser(spectrum)
    ug = UpsampleGuidance(high, CosineSchedule(), 2, clip_logsnr=False,
                          low_resolution_eps_fn=FieldWienerDenoiser(pooled_spectrum(spectrum, 2)))
    x = np.random.default_rng(3).normal(size=(4, 8, 8, 1)).astype("float32")
    guided, exact = _compiled(lambda x, l: (ug(x, l), high(x, l)), x, LOGSNR)
    error = np.abs(guided - exact).max() / np.abs(exact).max()
    if law == "independent":
        assert coupling < 1e-12 and error < 1e-5, (coupling, error)
    else:
        assert coupling > 0.05 and error > 0.02, (coupling, error)


def test_exact_w2_at_16_to_32_orders_the_samplers_as_measured():
    """Power-law field (slope 2) at 32×32, its exact 2×2-pooled law at 16×16, DDIM 50 steps, exact W2 to the
    32×32 law (its scale: W2 to a point mass = √1024 = 32). Measured: exact 32×32 sampler 1.59; UG (w_t = 1)
    5.24; UG (w_t = 1.2) 15.74; nearest-upsampled exact 16×16 law 16.84; the 16×16 taps run at 32×32 20.62.
    More steps bring the exact sampler closer (discretisation, not the oracle)."""
    law = field_spectrum(32, slope=2.0)
    schedule, sampler = CosineSchedule(), DDIMSampler(CosineSchedule(), 50)
    low = FieldWienerDenoiser(pooled_spectrum(law, 2))
    w2 = {
        "exact": w2_field(propagate_field(sampler, FieldWienerDenoiser(law)), law),
        "exact_200": w2_field(propagate_field(DDIMSampler(schedule, 200), FieldWienerDenoiser(law)), law),
        "naive": w2_field(propagate_field(sampler, low, 32), law),
        "upsampled": w2_field(upsampled_blocks(pooled_spectrum(law, 2), 2), law),
        "ug": w2_field(propagate_upsample_guidance(sampler, UpsampleGuidance(low, schedule, 2), 32), law),
        "ug_1.2": w2_field(propagate_upsample_guidance(sampler, UpsampleGuidance(low, schedule, 2, w=1.2), 32), law),
    }
    assert w2["exact_200"] < w2["exact"] < w2["ug"] < w2["ug_1.2"] < w2["upsampled"] < w2["naive"] < 32.0, w2
    np.testing.assert_allclose([w2["exact"], w2["ug"], w2["naive"]], [1.5872, 5.2351, 20.6200], atol=1e-3)


def _bench_module():
    """benchmarks/bench_upsample_guidance.py, imported from its path (benchmarks/ is not a package)."""
    from repo_scripts import load_script

    return load_script("benchmarks/bench_upsample_guidance.py")


@pytest.mark.jax
def test_benchmark_field_mode_writes_the_exact_w2_table(tmp_path):
    import json

    bench = _bench_module()
    info = bench.main(["--data", "field", "--steps", "20", "--out", str(tmp_path)])
    with open(tmp_path / "field.json") as f:
        assert json.load(f)["w2"] == info["w2"]
    w2 = {name.split(" ")[0] + (" 1.2" if "1.2" in name else ""): value for name, value in info["w2"].items()}
    assert w2["(oracle)"] < w2["(c)"] < w2["(b)"] < w2["(a)"], info["w2"]


@pytest.mark.jax
@pytest.mark.slow
def test_benchmark_patches_mode_runs_every_row_end_to_end(tmp_path):
    # Tiny everything (1 training step, 2 sampler steps, 4 samples): checks the plumbing of the patch table, not
    # its numbers (the shipped saved_models/diffusion_patches.json has those). ~30 s on two idle cores, most of it
    # building, compiling and fitting two U-Nets: marked slow to keep `make test` short.
    import json

    bench = _bench_module()
    info = bench.main(["--data", "patches", "--train-steps", "1", "--limit", "32", "--n", "4", "--sample-batch", "2",
                       "--steps", "2", "--channels", "8", "--mults", "1", "--models", "16,32",
                       "--out", str(tmp_path)])
    with open(tmp_path / "patches.json") as f:
        assert json.load(f)["rows"] == info["rows"]
    rows = info["rows"]
    labels = [name.split(" ")[0] for name in rows]
    assert labels.count("(b)") == 2 and labels.count("(c)") == 4 and "(d)" in labels and "(e)" not in labels
    for name, row in rows.items():
        assert np.isfinite(row["fd"]) and row["spectrum_distance"] >= 0.0, name
        assert len(row["log10_power"]) == 16 and (row["seconds_per_sample"] is None) == name.startswith("train")
    assert set(info["goals"]) == {name for name in rows if name.startswith("(c)")}
    assert all(goal["cost_over_native"] > 0 for goal in info["goals"].values())
    assert (tmp_path / "patches_grid.png").stat().st_size > 0 and (tmp_path / "patches_spectra.png").stat().st_size > 0


@pytest.mark.jax
def test_benchmark_native_seeds_mode_repeats_row_d_of_the_four_way_run(tmp_path):
    """`--native-seeds` samples only row (d): its seed 1 is the four-way run's row (d) (same model, same noise),
    another seed gives another FD, and the median is recorded. Bad flags stop with an error before sampling."""
    import json

    import keras

    from kgen.diffusion.compare import upsample_variants
    from kgen.metrics.classifiers import saved_models_dir

    bench = _bench_module()
    flags = ["--load", str(saved_models_dir()), "--models", "28", "--n", "48", "--steps", "3", "--ddim-eta", "1",
             "--out", str(tmp_path)]
    info = bench.main(flags + ["--native-seeds", "1,2"])
    with open(tmp_path / "native.json") as f:
        assert json.load(f)["fd_native_by_seed"] == info["fd_native_by_seed"]
    by_seed = info["fd_native_by_seed"]
    assert set(by_seed) == {"1", "2"} and by_seed["1"] != by_seed["2"]
    assert info["fd_native_median"] == pytest.approx((by_seed["1"] + by_seed["2"]) / 2, abs=0.006)

    low = keras.saving.load_model(saved_models_dir() / "diffusion14_animals.keras")
    native = keras.saving.load_model(saved_models_dir() / "diffusion28_animals.keras")
    four_way = upsample_variants(low, native, n=48, steps=3, seed=1, ddim_eta=1.0)
    features, reference = bench.reference_statistics()
    assert round(float(bench.fd_to(reference, four_way["native"], features)), 2) == by_seed["1"]

    with pytest.raises(SystemExit):
        bench.main(flags + ["--native-seeds", "1,x"])  # not integers
    with pytest.raises(SystemExit):
        bench.main(["--load", str(saved_models_dir()), "--models", "14", "--native-seeds", "1", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        bench.main(["--native-seeds", "1", "--out", str(tmp_path)])  # no --load
