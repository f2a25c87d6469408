"""Export kgen models for serving: a TensorFlow SavedModel with generative endpoints, or ONNX.

Every exportable kgen model lists its endpoints with `export_endpoints()`, a list of `Endpoint`s: a name, a
function of tensors built from `keras.ops`, the input specs (batch dimension `None`, so the batch size is
dynamic), and whether the function draws random numbers. The families give:

| family | endpoints |
|---|---|
| flows (NICE, RealNVP, Glow) | `serve` = `log_prob(x)`, `log_prob(x)`, `sample(z)` (standardised latents, flattened and concatenated, from the caller: deterministic), `sample_random(temperature)` (`(batch, 1)` temperatures; the noise comes from a seed state stored in the artifact, so each call draws anew) |
| GANs (GAN, EnergyGAN) | `serve` = `sample(z)` = G(z), `sample_random(temperature)`, `critic(x)` |
| diffusion (DiffusionModel) | `serve` = `denoise(x_t, logsnr)` (ε̂), `sample(x_T)` (a whole DDIM η=0 loop, `steps` option), `sample_random(temperature)`, and with `upsample_scale=s` `sample_upsampled(x_T)` at s× resolution with Upsample Guidance |
| text (UniLM, PermutationLM) | UniLM: `serve(token_ids, segment_ids)` = the logits (`serve_length` option), `generate(source_ids)` (greedy, cached; `max_new_tokens`, `source_length`, `end_id` options); PermutationLM: `serve(token_ids, order, segment_ids)` = the query-stream logits for that factorisation order (`serve_length` option) |

Every `sample_random(temperature)` takes float32 temperatures of shape `(batch, 1)`, one per sample: the first
dimension is how many samples are drawn (`tf.fill((16, 1), 0.7)` gives 16 at temperature 0.7). A scalar or a
`(batch,)` vector does not match the signature and the loaded SavedModel raises a `TypeError`.

`export_saved_model` writes all of them with `keras.export.ExportArchive` from the TensorFlow and JAX
backends (JAX through jax2tf; endpoints that draw noise are exported with `is_static=False` so the seed
state is a variable of the artifact). A SavedModel cannot be written from the torch backend in Keras
3.15 (it needs torch-xla, which has no wheel for torch 2.13): that request raises a `ValueError` pointing
to `export_onnx` or `model.export(path, format="torch")` (a `.pt2` archive).

`export_onnx` writes one deterministic endpoint (default `serve`) as an ONNX graph from any backend
(tf2onnx, jax2onnx, torch.onnx); random endpoints cannot be exported to ONNX.

`save_for_inference` writes a kgen model's `.keras` file without its optimizer state (Keras 3 puts a compiled
model's optimizers into every `.keras` file; `include_optimizer=False` only applies to legacy `.h5`): for a GAN
that drops two Adam states, about two thirds of the file. It reloads uncompiled with every weight, average and
seed state, so it samples exactly as the model did.

Artifacts are written to a temporary sibling and renamed into place, so a failed export leaves nothing
behind at `path`.

Example:
    >>> model = kgen.flows.RealNVP((4,), logit_alpha=None)
    >>> kgen.export.export_saved_model(model, "/tmp/realnvp")
    >>> # in a process without kgen:
    >>> served = tf.saved_model.load("/tmp/realnvp"); served.log_prob(x); served.sample_random(t)
"""

import os
import shutil
import tempfile

import keras

from kgen import backend as kb
from kgen.endpoint import Endpoint

__all__ = ["Endpoint", "export_saved_model", "export_onnx", "save_for_inference"]


def _endpoints(model, options):
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model, got {type(model).__name__}")
    if not hasattr(model, "export_endpoints"):
        raise ValueError(f"`model` ({type(model).__name__}) has no `export_endpoints()`; export a kgen model, "
                         "or use `model.export(path)` for a plain Keras model")
    endpoints = list(model.export_endpoints(**options))
    names = [e.name for e in endpoints]
    if "serve" not in names or len(set(names)) != len(names):
        raise ValueError(f"{type(model).__name__}.export_endpoints() must name 'serve' once, got {names}")
    return endpoints


def _check_path(path, overwrite, suffix=None):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if suffix is not None and not path.endswith(suffix):
        raise ValueError(f"`path` must end in {suffix!r}, got {path!r}")
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"`path` {path!r} exists; pass overwrite=True to replace it")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    return path, parent


def _move_into_place(tmp, path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
    os.replace(tmp, path)


def export_saved_model(model, path, overwrite=False, verbose=False, **endpoint_options):
    """Write `model`'s endpoints as a TensorFlow SavedModel directory at `path` (TF and JAX backends).

    Load it anywhere TensorFlow runs, without kgen: `tf.saved_model.load(path).<endpoint>(...)`; `serve` is
    also the `serving_default` signature. `endpoint_options` go to `model.export_endpoints` (diffusion:
    `steps`, `upsample_scale`, `upsample_w`).

    Raises:
        ValueError: on the torch backend (use `export_onnx`, or `model.export(path, format="torch")` for
            a `.pt2`), if `path` exists and `overwrite` is False, or if the model has no endpoints.
    """
    refusal = kb.saved_model_refusal()
    if refusal is not None:
        raise ValueError(f"export_saved_model needs the TensorFlow or JAX backend; {refusal}. Use "
                         "kgen.export.export_onnx(model, path) or model.export(path, format='torch') (a .pt2 archive).")
    endpoints = _endpoints(model, endpoint_options)
    path, parent = _check_path(path, overwrite)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in endpoints:
        archive.add_endpoint(endpoint.name, endpoint.fn, input_signature=endpoint.input_signature,
                             **kb.saved_model_endpoint_options(endpoint.random))
    tmp = tempfile.mkdtemp(prefix=".kgen-export-", dir=parent)
    try:
        archive.write_out(tmp, verbose=verbose)
        _move_into_place(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return path


class _EndpointModel(keras.Model):
    """A throwaway Model whose `call` is one endpoint: what Keras's ONNX exporters trace."""

    def __init__(self, owner, endpoint):
        super().__init__(name=f"{owner.name}_{endpoint.name}")
        self.owner, self.endpoint = owner, endpoint

    def call(self, inputs, *more_inputs, training=False):
        # One input arrives as a tensor (or a one-element list from some exporters); several as a list, or
        # as separate positional arguments (tf2onnx traces a function of the signature's tensors).
        if more_inputs:
            return self.endpoint.fn(inputs, *more_inputs)
        if isinstance(inputs, (list, tuple)):
            return self.endpoint.fn(*inputs)
        return self.endpoint.fn(inputs)


def export_onnx(model, path, endpoint="serve", overwrite=False, verbose=False, **endpoint_options):
    """Write one deterministic endpoint of `model` (default `serve`) as an ONNX file at `path`, any backend.

    Load it with `onnxruntime.InferenceSession(path)`; the batch dimension stays dynamic where the
    backend's exporter allows (it does for TF, JAX and torch with Keras 3.15). Needs the `export` extra
    (`pip install -c constraints.txt -e ".[export]"`: onnx, onnxruntime, tf2onnx, jax2onnx, onnxscript).
    """
    endpoints = {e.name: e for e in _endpoints(model, endpoint_options)}
    if endpoint not in endpoints:
        raise ValueError(f"`endpoint` must be one of {sorted(endpoints)}, got {endpoint!r}")
    chosen = endpoints[endpoint]
    if chosen.random:
        raise ValueError(f"endpoint {endpoint!r} draws random numbers, which ONNX export cannot carry; "
                         "export the deterministic one that takes the noise as input")
    path, parent = _check_path(path, overwrite)
    wrapper = _EndpointModel(model, chosen)
    signature = list(chosen.input_signature)
    dummy = [keras.ops.zeros([1 if d is None else d for d in spec.shape], dtype=spec.dtype) for spec in signature]
    wrapper(dummy if len(dummy) > 1 else dummy[0])  # Keras's exporters need a model called once
    fd, tmp = tempfile.mkstemp(prefix=".kgen-export-", suffix=".onnx", dir=parent)
    os.close(fd)
    try:
        wrapper.export(tmp, format="onnx", input_signature=signature, verbose=verbose)
        _move_into_place(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_for_inference(model, path, overwrite=False):
    """Write `model` as a `.keras` file at `path` without its optimizer state; returns `path`.

    What stays: the config, every weight (a GAN's generator and critic, the EMA average, BatchNorm and
    spectral-norm state) and the seed state, so `keras.saving.load_model(path, safe_mode=True)` samples, scores
    and exports exactly as `model` does. What goes: the optimizers and the compile config; the reloaded model is
    uncompiled, so `compile` it again before training further (with fresh optimizer moments).

    Raises:
        TypeError: if `model` is not a keras.Model or `path` not a str / os.PathLike.
        ValueError: if `model` is not built, `path` does not end in ".keras", or `path` exists and `overwrite`
            is False.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"`model` ({type(model).__name__}) is not built; fit it, call it or build it first")
    path, parent = _check_path(path, overwrite, suffix=".keras")
    tmp = tempfile.mkdtemp(prefix=".kgen-save-", dir=parent)
    try:
        full = os.path.join(tmp, "full.keras")
        model.save(full)
        bare = keras.saving.load_model(full, compile=False, safe_mode=True)  # the same state, no optimizers
        out = os.path.join(tmp, "bare.keras")
        bare.save(out)
        _move_into_place(out, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
