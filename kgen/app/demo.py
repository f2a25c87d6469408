"""`kgen demo`: one HTML page with every family's pictures and a metrics table, from `saved_models/`.

Each part of the page is a *section*: a function `(out_dir, seed) -> Section` registered by name in
`SECTIONS`. A family adds its own section (flow samples, GAN modes, Upsample Guidance grids, mask figures)
by adding an entry to `SECTIONS`; nothing else changes.
"""

import dataclasses
import html
import os
import time

import numpy as np

from kgen import datasets
from kgen.images import save_grid, save_png, scatter_image


@dataclasses.dataclass
class Section:
    """One section of the demo page: a title, a paragraph, pictures and a metrics table.

    Example:
        >>> section = Section("Flows", "Glow on 8×8 digits.")
        >>> section.metrics.append(("test bits/dim", "3.41", "lower is better"))
    """

    title: str
    text: str = ""
    images: list = dataclasses.field(default_factory=list)   # (file name relative to the page, caption)
    metrics: list = dataclasses.field(default_factory=list)  # (metric, value, note)


def datasets_section(out_dir, seed):
    digits, _ = datasets.load_digits("test")
    animals, _ = datasets.load_animals("test")
    stacked, _ = datasets.stacked_digits(36, seed=seed)
    images = [
        (os.path.basename(save_grid(os.path.join(out_dir, "digits.png"), digits[:64], scale=6,
                                    value_range=(0, datasets.DIGIT_LEVELS - 1))), "8×8 digits (scikit-learn), test split"),
        (os.path.basename(save_grid(os.path.join(out_dir, "animals.png"), animals[:64], scale=2,
                                    value_range=(0, 255))), "Animal-MNIST silhouettes, test split"),
        (os.path.basename(save_grid(os.path.join(out_dir, "stacked_digits.png"), stacked, scale=6,
                                    value_range=(0, datasets.DIGIT_LEVELS - 1))), "Stacked digits (1000 modes)"),
    ]
    for name in datasets.TOY2D_NAMES:
        points = datasets.toy2d(name, 2000, seed=seed)
        try:
            centres, _ = datasets.toy2d_modes(name)
        except ValueError:
            centres = None
        path = save_png(os.path.join(out_dir, f"toy_{name}.png"), scatter_image(points, size=200, centres=centres))
        images.append((os.path.basename(path), f"toy2d('{name}')"))
    return Section("Datasets (offline)", "Everything below ships inside wheels; nothing is downloaded.", images)


def classifiers_section(out_dir, seed):
    from kgen.metrics import FrechetDistance, classifiers

    section = Section("Feature classifiers (FID/KID features offline)",
                      "Small CNNs trained by scripts/train_classifiers.py; accuracy measured now on the test split.")
    for name, load, levels in (("digits", datasets.load_digits, datasets.DIGIT_LEVELS),
                               ("animals", datasets.load_animals, datasets.ANIMAL_LEVELS)):
        images, labels = load("test")
        x = datasets.dequantize(images, levels, seed=seed)
        logits = np.asarray(classifiers.classifier(name).predict(x, verbose=0))
        section.metrics.append((f"{name} classifier test accuracy", f"{np.mean(logits.argmax(-1) == labels):.4f}",
                                f"{len(labels)} test images"))
        train, _ = load("train")
        features = classifiers.feature_model(name)
        fd = FrechetDistance(feature_model=features)
        fd.update_state(datasets.dequantize(train[:len(images)], levels, seed=seed + 1), x)
        noise = np.random.default_rng(seed).uniform(size=x.shape).astype("float32")
        fd_noise = FrechetDistance(feature_model=features)
        fd_noise.update_state(noise, x)
        section.metrics.append((f"{name} FD(train, test)", f"{float(fd.result()):.3f}", "real vs real: small"))
        section.metrics.append((f"{name} FD(uniform noise, test)", f"{float(fd_noise.result()):.3f}", "should be large"))
    return section


def flows_section(out_dir, seed):
    """Samples at T = 0.5 / 0.7 / 1.0, reconstructions, a latent interpolation and test bits/dim per flow."""
    import keras

    from kgen.metrics.classifiers import saved_models_dir

    section = Section("Flows on 8×8 digits (NICE, RealNVP, Glow)",
                      "Trained by benchmarks/bench_flows_digits.py; test bits/dim with fresh dequantization noise.")
    test, _ = datasets.load_digits("test")
    x = datasets.dequantize(test, datasets.DIGIT_LEVELS, seed=seed)
    for name in ("nice", "realnvp", "glow"):
        path = os.path.join(saved_models_dir(), f"{name}_digits.keras")
        if not os.path.exists(path):
            continue
        model = keras.saving.load_model(path, safe_mode=True)
        data = x.reshape((-1,) + model.data_shape)
        section.metrics.append((f"{name} test bits/dim", f"{model.bits_per_dim(data, datasets.DIGIT_LEVELS):.3f}",
                                f"{model.count_params()} params"))
        as_images = lambda a: np.clip(np.asarray(keras.ops.convert_to_numpy(a)).reshape(-1, 8, 8, 1), 0, 1)  # noqa: E731
        # Every sample, reconstruction and interpolation goes through the model in batches of 36: eager JAX
        # compiles each op once per shape, so one shape for all of them halves this section's time.
        for t in (0.5, 0.7, 1.0):
            file_name = f"flow_{name}_T{t}.png"
            save_grid(os.path.join(out_dir, file_name), as_images(model.sample(36, temperature=t)), scale=5)
            section.images.append((file_name, f"{name}: samples at T = {t}"))
        latents = [keras.ops.convert_to_numpy(z) for z in model.encode(data[:36])]
        recon = as_images(model.decode(latents))[:12]
        file_name = f"flow_{name}_reconstructions.png"
        save_grid(os.path.join(out_dir, file_name), np.concatenate([as_images(data[:12]), recon]), rows=2, scale=5)
        section.images.append((file_name, f"{name}: test digits (top) and decode(encode(x)) (bottom)"))
        steps = np.linspace(0.0, 1.0, 9)[:, None]  # 4 pairs of test digits, 9 points each: 36 latents

        def line(z, k):
            return (1 - steps) * z[2 * k].reshape(1, -1) + steps * z[2 * k + 1].reshape(1, -1)

        path_latents = [np.concatenate([line(z, k) for k in range(4)]).reshape(z.shape) for z in latents]
        file_name = f"flow_{name}_interpolation.png"
        save_grid(os.path.join(out_dir, file_name), as_images(model.decode(path_latents)), rows=4, scale=5)
        section.images.append((file_name, f"{name}: straight lines in latent space between pairs of test digits"))
    return section


def text_section(out_dir, seed):
    """The article's mask figures, rendered from kgen's mask layers, and the shipped toy UniLMs decoding."""
    import keras

    from kgen.datasets.text import SEP_ID, exact_match, toy_seq2seq, toy_vocab
    from kgen.metrics.classifiers import saved_models_dir
    from kgen.text import masks
    from kgen.text.plot import save_mask_png

    section = Section("Attention masks and UniLM (Su, kexue.fm/archives/6933, 7161)",
                      "True (dark) = may attend; rows are queries, columns keys. Decoded with the exact KV cache.")
    segments = np.array([[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]])
    padding = np.ones((1, 10), bool)
    order = np.array([[2, 4, 3, 1, 0]])  # the article's 北京欢迎你 factorisation order (0-based)
    figures = {
        "mask_bidirectional.png": (masks.BidirectionalMask()(padding), "bidirectional (BERT)"),
        "mask_causal.png": (masks.CausalMask()(padding), "causal (LM)"),
        "mask_unilm.png": (masks.UniLMMask()(segments, padding), "UniLM seq2seq: 5 source + 5 target tokens"),
        "mask_permutation_content.png": (masks.PermutationMask("content")(order), "XLNet content stream, order 3 5 4 2 1"),
        "mask_permutation_query.png": (masks.PermutationMask("query")(order), "XLNet query stream, same order"),
    }
    for file_name, (mask, caption) in figures.items():
        save_mask_png(os.path.join(out_dir, file_name), np.asarray(keras.ops.convert_to_numpy(mask))[0])
        section.images.append((file_name, caption))
    vocab = toy_vocab()
    words = lambda ids: " ".join(vocab[i] for i in ids if i not in (0, SEP_ID))  # noqa: E731
    lines = []
    for task in ("reverse", "sort"):
        path = os.path.join(saved_models_dir(), f"unilm_{task}.keras")
        if not os.path.exists(path):
            continue
        model = keras.saving.load_model(path, safe_mode=True)
        test = toy_seq2seq(task, 200, split="test", seed=seed + 1)
        generated = keras.ops.convert_to_numpy(
            model.generate(test["source_ids"], test["target_ids"].shape[1], end_id=SEP_ID))
        section.metrics.append((f"UniLM {task}: held-out exact match", f"{exact_match(generated, test['target_ids']):.3f}",
                                "200 test sources, greedy, cached decoding"))
        lines += [f"{task}: {words(src[1:])} → {words(out)}" for src, out in zip(test["source_ids"][:3], generated[:3])]
    section.text += " Decoded: " + "; ".join(lines)
    return section


def gans_section(out_dir, seed):
    """The shipped hinge GAN on the 8-Gaussian ring: samples, then MALA in latent space on U(G(z)) = −D(G(z))."""
    import keras

    from kgen.datasets import toy2d, toy2d_modes
    from kgen.gans.mcmc import LatentMCMC
    from kgen.metrics import mode_coverage
    from kgen.metrics.classifiers import saved_models_dir

    section = Section("GANs: the 8-Gaussian ring and animals (Su, kexue.fm/archives/6016, 6316, 6331, 6549)",
                      "A 2×128 MLP GAN trained with the hinge loss (examples/fgan_toy.py, 3000 steps); then the "
                      "energy view: MALA on the latent energy U(G(z)) + ½‖z‖² with U = −D, which moves samples "
                      "onto the modes. High quality = within 3σ of a centre; a mode counts when it has one.")
    path = os.path.join(saved_models_dir(), "gan_ring8.keras")
    if not os.path.exists(path):
        section.text += " (gan_ring8.keras not found in saved_models/)"
        return section
    model = keras.saving.load_model(path, safe_mode=True)
    centres, std = toy2d_modes("ring8")
    z = keras.random.normal((2500, 2), seed=seed)
    samples = np.asarray(keras.ops.convert_to_numpy(model.generate(z)))
    refined_z, acceptance = LatentMCMC(model.generator, model.energy, method="mala", step_size=0.01, steps=50,
                                       seed=seed).run(z)
    refined = np.asarray(keras.ops.convert_to_numpy(model.generate(refined_z)))
    extent = (-1.5 * float(np.abs(centres).max()), 1.5 * float(np.abs(centres).max()))
    for name, points, caption in (("gan_ring8_data.png", toy2d("ring8", 2500, seed=seed), "data"),
                                  ("gan_ring8_samples.png", samples, "G(z), z ~ N(0, I)"),
                                  ("gan_ring8_mala.png", refined, "after 50 MALA steps in z")):
        save_png(os.path.join(out_dir, name), scatter_image(points, size=200, extent=extent, centres=centres))
        section.images.append((name, caption))
        if name != "gan_ring8_data.png":
            modes, quality = mode_coverage(points, centres, std)
            section.metrics.append((f"ring8 GAN, {caption}: modes / high-quality fraction", f"{modes}/8, {quality:.2f}",
                                    "2500 samples"))
    section.metrics.append(("ring8 GAN, MALA acceptance rate", f"{acceptance:.2f}", "step 0.01, 50 steps"))
    _animal_gans(section, out_dir, seed, saved_models_dir())
    return section


SHIPPED_ANIMAL_GANS = (  # saved_models/<name>.keras, what the demo page says it is
    ("selfmod_animals", "SELF-MOD GAN (SN, self-attention, self-modulated BN; H200, 12 375 steps)"),
    ("selfmod_sndcgan_animals", "SELF-MOD's generator with the SNDCGAN critic (the SELF-MOD paper's pair; CPU, "
                                "12 000 steps)"),
)


def _animal_gans(section, out_dir, seed, models_dir):
    """The shipped animal GANs' samples and the DCGAN → SELF-MOD FD tables (benchmarks/bench_gans_animals.py)."""
    import json

    import keras

    from kgen.backend import compile_function

    for name, caption in SHIPPED_ANIMAL_GANS:
        path = os.path.join(models_dir, name + ".keras")
        if not os.path.exists(path):
            continue
        model = keras.saving.load_model(path, safe_mode=True)
        z = keras.random.normal((48,) + model.latent_shape, seed=seed)
        generate = compile_function(lambda z: model.generate(z), state=[model])  # one XLA program: ~4× faster here
        images = keras.ops.convert_to_numpy(generate(z))  # the grid clips to the model's range
        save_grid(os.path.join(out_dir, f"gan_{name}.png"), images, rows=4, scale=3, value_range=model.value_range)
        section.images.append((f"gan_{name}.png", caption + " on 28×28 animals, z ~ N(0, I)"))
    table = os.path.join(models_dir, "gans_animals.json")
    if os.path.exists(table):
        with open(table) as f:
            results = json.load(f)
        first = next(iter(results["variants"].values()))["fd_median"]
        for name, row in results["variants"].items():
            section.metrics.append((f"animals GAN {name}: classifier-feature FD", f"{row['fd_median']:.1f}",
                                    f"×{row['fd_median'] / first:.2f} of DCGAN; {results['steps']} steps, "
                                    f"seeds {row['seeds']}; real train vs test {results['floor']:.1f}"))
        study = results.get("cpu_recipe_study", {})
        for key, entry in study.get("recipes", {}).items():  # the same path under other optimizer recipes
            section.metrics.append((f"animals GAN FD at {study['steps']} steps, recipe {key}",
                                    *_fd_row(entry["variants"], study["device"])))
        ablation = results.get("cpu_discriminator_ablation")
        if ablation:  # what the critic's BatchNorm does (README, "GANs")
            section.metrics.append((f"animals GAN FD at {ablation['steps']} steps, discriminator BatchNorm ablations",
                                    *_fd_row(ablation["variants"], ablation["device"])))
        pair = results.get("cpu_sndcgan_study", {})
        for steps, rows in pair.get("tables_by_steps", {}).items():  # DCGAN's or SELF-MOD's G, either critic
            section.metrics.append((f"animals GAN FD at {steps} steps, variants with DCGAN's or the SNDCGAN critic",
                                    *_fd_row(rows, pair["device"])))


def _fd_row(rows, device):
    """(value, note) of a metrics line listing each variant's median FD and the seeds behind it."""
    seeds = {name: row["seeds"] for name, row in rows.items()}
    if len({tuple(s) for s in seeds.values()}) == 1:  # one seed list for the row, else each variant's
        seeds = next(iter(seeds.values()))
    return (", ".join(f"{name} {row['fd_median']:.1f}" for name, row in rows.items()),
            f"median of seeds {seeds}; {device}")


def diffusion_section(out_dir, seed):
    """The Upsample Guidance four-way grid from the shipped 14×14 and 28×28 animal models, and their FD table."""
    import json

    import keras

    from kgen.diffusion.compare import LABELS, upsample_variants
    from kgen.metrics.classifiers import saved_models_dir

    section = Section("Diffusion: Upsample Guidance (Su, kexue.fm/archives/10055)",
                      "28×28 animals from a U-Net trained only on 14×14 (2×2-pooled) animals, no extra training. "
                      "Rows: (a) the 14×14 net run naively at 28×28, (b) its 14×14 samples upsampled, "
                      "(c) Upsample Guidance (w_t = 1), (d) the same U-Net trained at 28×28 for the same steps. "
                      "Same starting and per-step noise in every row; DDPM ancestral steps (DDIM η = 1), 25 steps.")
    paths = [os.path.join(saved_models_dir(), f"diffusion{r}_animals.keras") for r in (14, 28)]
    if not all(os.path.exists(p) for p in paths):
        section.text += " (models not found in saved_models/)"
        return section
    low, native = (keras.saving.load_model(p, safe_mode=True) for p in paths)
    images = upsample_variants(low, native, n=8, steps=25, seed=seed, ddim_eta=1.0)
    save_grid(os.path.join(out_dir, "upsample_guidance.png"), (np.concatenate(list(images.values())) + 1.0) / 2.0,
              rows=len(images), scale=3)
    section.images.append(("upsample_guidance.png", " / ".join(LABELS[name] for name in images)))
    record = os.path.join(saved_models_dir(), "diffusion_animals.json")
    if os.path.exists(record):
        with open(record, encoding="utf-8") as handle:
            results = json.load(handle)
        for name, value in results["fd"].items():
            section.metrics.append((f"UG experiment FD {name}", f"{value:.2f}",
                                    f"{results['n']} samples, {results['steps']} steps of {results['sampler']}; "
                                    "recorded by benchmarks/bench_upsample_guidance.py"))
    _patches_rows(section, out_dir)
    return section


def _patches_rows(section, out_dir):
    """The natural-patch UG experiment next to the animals: its recorded grid, spectra plot and table (16 -> 32)."""
    import json
    import shutil

    from kgen.metrics.classifiers import saved_models_dir

    figures = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "benchmarks", "upsample_guidance")
    record = os.path.join(saved_models_dir(), "diffusion_patches.json")
    if not os.path.exists(record):
        return
    captions = {"patches_grid_eta1.png": "natural patches, 16 -> 32, ancestral sampling: rows (a)-(e) as in the "
                                         "table, then test patches",
                "patches_spectra_eta1.png": "their radially averaged power spectra (log10) vs frequency"}
    for name, caption in captions.items():
        if os.path.exists(os.path.join(figures, name)):
            shutil.copy(os.path.join(figures, name), os.path.join(out_dir, name))
            section.images.append((name, caption))
    with open(record, encoding="utf-8") as handle:
        results = json.load(handle)
    table = results.get("ancestral", results)  # the ancestral table when recorded (its grid is the one shown)
    note = (f"{results['n']} samples, DDIM η = {table['ddim_eta']:g}, {results['steps']} steps; "
            "saved_models/diffusion_patches.json")
    for name, row in table["rows"].items():
        value = f"{row['fd']:.2f} / {row['spectrum_distance']:.3f}"
        section.metrics.append((f"patches {name}: FD / spectrum distance", value, note))


SECTIONS = {"datasets": datasets_section, "classifiers": classifiers_section, "flows": flows_section,
            "gans": gans_section, "diffusion": diffusion_section, "text": text_section}


def _render(sections, seconds, backend):
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>kgen demo</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}figure{display:inline-block;"
             "margin:8px;vertical-align:top}img{image-rendering:pixelated;border:1px solid #ccc}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>",
             f"<h1>kgen demo</h1><p>Keras backend: {html.escape(backend)}; built in {seconds:.1f} s.</p>"]
    rows = []
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2><p>{html.escape(section.text)}</p>")
        for file_name, caption in section.images:
            parts.append(f"<figure><img src='{html.escape(file_name)}'><figcaption>{html.escape(caption)}"
                         "</figcaption></figure>")
        rows.extend(section.metrics)
    parts.append("<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>note</th></tr>")
    parts.extend(f"<tr><td>{html.escape(m)}</td><td>{html.escape(v)}</td><td>{html.escape(n)}</td></tr>"
                 for m, v, n in rows)
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write_demo(out_dir="demo", seed=0, sections=None, progress=None):
    """Build the named sections (default: all of `SECTIONS`) into `out_dir`, write `out_dir/index.html`.

    Returns the page's path. Unknown section names raise ValueError before anything is written. `progress` is
    called with a line per section as it finishes (the `kgen demo` command prints them).
    """
    import keras

    names = list(SECTIONS) if sections is None else list(sections)
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise ValueError(f"`sections` must name entries of {sorted(SECTIONS)}, got unknown {unknown}")
    start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    built = []
    for k, name in enumerate(names):
        began = time.time()
        built.append(SECTIONS[name](out_dir, seed))
        if progress is not None:
            progress(f"kgen demo: [{k + 1}/{len(names)}] {name} ({time.time() - began:.1f} s)")
    page = _render(built, time.time() - start, keras.backend.backend())
    path = os.path.join(out_dir, "index.html")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(page)
    os.replace(path + ".tmp", path)
    return path
