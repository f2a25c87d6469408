"""The recipes `kgen train` runs, one per family: data, model, optimizer and how to draw samples (the role of
keras-hub's `*_presets.py`). `kgen.app.runs` trains them resumably; benchmarks and examples build the same
models through `diffusion_model` and `fit_steps`.
"""

import dataclasses
import os
from typing import Callable

import keras

from kgen import datasets
from kgen._checks import check_int
from kgen.images import save_grid

__all__ = ["RECIPES", "Recipe", "diffusion_model", "fit_steps"]


@dataclasses.dataclass
class Recipe:
    """How one family trains: `load(data, limit) -> x`, `build(model, x, seed) -> compiled model`.

    Example:
        >>> recipe = RECIPES["flows"]()
        >>> x = recipe.data["digits"](256)                       # 256 dequantized digits in [0, 1]^64
        >>> model = recipe.models["realnvp"](x, 0)               # compiled
        >>> history = model.fit(x, epochs=1, batch_size=recipe.batch_size, verbose=0)
        >>> recipe.write_samples(model, 16, "digits", "samples")  # 'samples.png'
    """

    models: dict          # model name -> build(x, seed) returning a compiled keras.Model
    default_model: str
    data: dict            # data name -> load(limit) returning the training array (or dict of arrays)
    sample: Callable      # (model, n, data) -> images in `model.value_range` ("images"), or lines of text ("text")
    batch_size: int = 64
    kind: str = "images"
    export_options: Callable = None   # (model, data) -> keyword options of the model's export endpoints

    def write_samples(self, model, n, data, stem):
        """Write `n` samples of `model` to `stem.png` (an image grid) or `stem.txt`; returns the path."""
        samples = self.sample(model, n, data)
        if self.kind == "text":
            path = stem + ".txt"
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write("\n".join(samples) + "\n")
            os.replace(path + ".tmp", path)
            return path
        # Values outside the model's range are clipped by the grid; None: the samples' own range.
        return save_grid(stem + ".png", keras.ops.convert_to_numpy(samples), value_range=model.value_range)


def _digits(limit):
    return datasets.dequantize(datasets.load_digits("train")[0][:limit], datasets.DIGIT_LEVELS, seed=0)


def _animals(limit):
    return datasets.dequantize(datasets.load_animals("train")[0][:limit], datasets.ANIMAL_LEVELS, seed=0)


def _flow(cls, **kwargs):
    def build(x, seed):
        model = cls(x.shape[1:], seed=seed, **kwargs)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model
    return build


def _flow_recipe():
    from kgen.flows import NICE, Glow, RealNVP

    return Recipe(
        models={"glow": _flow(Glow, levels=2, depth=8, filters=64),
                "realnvp": _flow(RealNVP),
                "nice": _flow(NICE)},
        default_model="glow",
        data={"digits": _digits, "animals": _animals},
        sample=lambda model, n, data: model.sample(n, temperature=0.7),
    )


def _animals_signed(limit):
    return datasets.to_signed(datasets.load_animals("train")[0][:limit], datasets.ANIMAL_LEVELS)


def _animals14_signed(limit):
    from kgen.diffusion.guidance import average_pool

    return keras.ops.convert_to_numpy(average_pool(_animals_signed(limit), 2))


def _digits_signed(limit):
    return datasets.to_signed(datasets.load_digits("train")[0][:limit], datasets.DIGIT_LEVELS)


def diffusion_model(x, seed=0, schedule_shift=None, channels=16, channel_mults=(1, 2)):
    """The compiled animal U-Net of `kgen train diffusion` for images shaped like `x[0]`: ε-prediction on the
    cosine schedule (shifted by 2 log `schedule_shift` when given), no attention, EMA 0.995, Adam 5e-4."""
    from kgen import diffusion

    schedule = diffusion.CosineSchedule()
    if schedule_shift is not None:
        schedule = diffusion.shifted(schedule, schedule_shift)
    net = diffusion.UNet(x.shape[1:], channels=channels, channel_mults=channel_mults, attention_resolutions=())
    model = diffusion.DiffusionModel(net, schedule, prediction="eps", ema_decay=0.995, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(5e-4))
    return model


def fit_steps(model, x, steps, batch_size, **fit_kwargs):
    """`model.fit` for a budget of about `steps` optimizer steps of `batch_size` (whole epochs of at most one
    pass over `x`); returns `(steps taken, history)`."""
    steps = check_int("steps", steps, 1)
    batches = -(-len(x) // batch_size)  # one pass, the last batch partial when batch_size does not divide len(x)
    if steps < batches:  # less than one pass: one epoch of `steps` batches
        return steps, model.fit(x, batch_size=batch_size, epochs=1, steps_per_epoch=steps, **fit_kwargs)
    # Whole passes without `steps_per_epoch`: with it, Keras runs out of data on every second epoch of an array
    # whose length is not a multiple of batch_size (that epoch then takes one batch), so fewer steps were taken.
    epochs = max(1, round(steps / batches))
    return epochs * batches, model.fit(x, batch_size=batch_size, epochs=epochs, **fit_kwargs)


def _diffusion(**kwargs):
    return lambda x, seed: diffusion_model(x, seed, **kwargs)


def _diffusion_recipe():
    """The U-Net of the shipped animal models (benchmarks/bench_upsample_guidance.py): ε-prediction, cosine
    schedule (or the resolution-shifted one, λ − 2 log 2), EMA 0.995, Adam 5e-4, batch 32."""
    return Recipe(
        models={"unet": _diffusion(), "unet_shifted": _diffusion(schedule_shift=2)},
        default_model="unet",
        data={"animals": _animals_signed, "animals14": _animals14_signed, "digits": _digits_signed},
        sample=lambda model, n, data: model.sample(n, steps=50),
        batch_size=32,
    )


def _gan(stage):
    def build(x, seed):
        from kgen.gans import GAN, networks

        shape = tuple(x.shape[1:])
        if stage == "dcgan":
            pair = (networks.generator(shape, 64, norm="bn", width=32),
                    networks.discriminator(shape, spectral_norm=False, width=32))
        else:  # "selfmod": SN discriminator with self-attention, self-modulated BN generator
            pair = (networks.generator(shape, 64, norm="selfmod", attention=True, width=32),
                    networks.discriminator(shape, spectral_norm=True, attention=True, width=32))
        model = GAN(*pair, loss="hinge", seed=seed)
        model.compile(optimizers={"generator": keras.optimizers.Adam(2e-4, 0.5, 0.999),
                                  "discriminator": keras.optimizers.Adam(2e-4, 0.5, 0.999)})
        return model
    return build


def _gan_recipe():
    """28×28 GANs of examples/dcgan_to_selfmod.py: hinge loss, Adam(2e-4, β₁ = 0.5) for both networks."""
    return Recipe(
        models={"dcgan": _gan("dcgan"), "selfmod": _gan("selfmod")},
        default_model="selfmod",
        data={"animals": _animals_signed},
        sample=lambda model, n, data: model.sample(n),
        batch_size=64,
    )


TEXT_TRAIN_EXAMPLES = 20_000


def _toy_text(task):
    def load(limit):
        from kgen.datasets.text import toy_seq2seq

        data = toy_seq2seq(task, limit or TEXT_TRAIN_EXAMPLES, seed=0)
        return {"token_ids": data["token_ids"], "segment_ids": data["segment_ids"]}
    return load


def _unilm_small(x, seed):
    """The toy UniLM of examples/unilm_toy.py: BERT with 2 layers, width 64, 4 heads, Adam 2e-3."""
    from kgen.datasets.text import toy_vocab
    from kgen.text import UniLM

    model = UniLM(len(toy_vocab()), hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128,
                  max_length=x["token_ids"].shape[1], initializer_range=0.1)
    model.build()  # BackupAndRestore needs the variables before fit
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    return model


def _held_out(data, n):
    from kgen.datasets.text import toy_seq2seq

    return toy_seq2seq(data, n, split="test", seed=1)


def _decoded_lines(model, n, data):
    """Greedy cached decoding of `n` held-out sources: an exact-match header, then `source → output ✓|✗`."""
    from kgen.datasets.text import PAD_ID, SEP_ID, exact_match, toy_vocab

    test = _held_out(data, n)
    generated = keras.ops.convert_to_numpy(model.generate(test["source_ids"], test["target_ids"].shape[1], end_id=SEP_ID))
    vocab = toy_vocab()
    words = lambda ids: " ".join(vocab[i] for i in ids if i != PAD_ID)  # noqa: E731
    lines = [f"{data}: exact match on {n} held-out sources: {exact_match(generated, test['target_ids']):.3f}"]
    for source, output, target in zip(test["source_ids"], generated, test["target_ids"]):
        ok = exact_match(output[None], target[None]) == 1.0
        lines.append(f"{words(source)}  →  {words(output)}  {'✓' if ok else '✗'}")
    return lines


def _unilm_export_options(model, data):
    from kgen.datasets.text import SEP_ID

    test = _held_out(data, 1)
    return {"max_new_tokens": test["target_ids"].shape[1], "source_length": test["source_ids"].shape[1],
            "end_id": SEP_ID}


def _unilm_recipe():
    """UniLM seq2seq on the toy tasks of kgen.datasets.text (examples/unilm_toy.py); samples are decoded
    held-out sources with their exact-match rate, written as text."""
    return Recipe(
        models={"small": _unilm_small},
        default_model="small",
        data={"reverse": _toy_text("reverse"), "sort": _toy_text("sort")},
        sample=_decoded_lines,
        batch_size=64, kind="text", export_options=_unilm_export_options,
    )


RECIPES = {"flows": _flow_recipe, "diffusion": _diffusion_recipe, "gans": _gan_recipe, "unilm": _unilm_recipe}


