"""Decoding a seq2seq model token by token: greedy, sampling and beam search, with an exact key/value cache.

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933): decode the target
token by token after the source, with beam search as for any seq2seq model. bert4keras re-runs the whole
model at every step; UniLM v1 (Dong et al. 2019) caches per-layer states. Here both paths exist
(`use_cache=False` is the reference) and are compiled with `kgen.backend.compile_function`.

The loops here know no model (as keras-hub's samplers, which own the loop while the `CausalLM` supplies the
next logits). A model decodes if it has `pad_id`, `vocab_size`, `max_length`, `built`/`build()` and three
methods (`kgen.text.UniLM` has them; the cache is whatever the model keeps, batch first):

    prefill(source_ids, lengths, steps, use_cache)        → (logits (B, V) of the first token, cache)
    next_logits(token, index, lengths, cache, use_cache)  → (logits (B, V) of the token after `token`, cache)
    reorder_cache(cache, indices, use_cache)              → the cache of rows `indices` (beam search)

`source_ids (B, W)` are end-padded with `pad_id`, `lengths (B,)` the real source lengths; `index` (a scalar)
counts the generated tokens before `token`. How a model lays out and caches a sequence is its own affair: see
`kgen.text.unilm` for why UniLM's cache is exact on ragged sources.
"""

import weakref

import keras
import numpy as np
from keras import ops

from kgen._checks import check_int
from kgen.backend import compile_function
from kgen.text._checks import check_token_ids
from kgen.text.samplers import BeamSampler, get_sampler

_COMPILED = weakref.WeakKeyDictionary()


def prepare_sources(source_ids, pad_id, vocab_size):
    """Sources as a left-aligned int32 array padded with `pad_id`, and their lengths.

    The width is the longest source for a list, the array's width for an array (a fixed width means one
    compiled decoding loop for every batch).

    Args:
        source_ids: a list of token-id sequences, or an int array `(batch, length)` whose rows are padded at
            the end with `pad_id`.
        pad_id, vocab_size: of the model.
    """
    if isinstance(source_ids, np.ndarray) or hasattr(source_ids, "shape"):
        array = np.asarray(ops.convert_to_numpy(source_ids))  # a backend tensor may live on a GPU
        if array.ndim != 2:
            raise ValueError(f"`source_ids` must be a (batch, length) array or a list of sequences, "
                             f"got shape {array.shape}")
        real = array != pad_id
        if np.any(real[:, 1:] & ~real[:, :-1]):
            raise ValueError("`source_ids` rows must be padded at the end only (pad_id after the last token)")
        rows, width = [row[mask] for row, mask in zip(array, real)], array.shape[1]
    else:
        rows, width = [np.asarray(row) for row in source_ids], 0
    if not rows or any(row.ndim != 1 or row.size == 0 for row in rows):
        raise ValueError("`source_ids` must hold at least one non-empty sequence of token ids per row")
    for row in rows:
        check_token_ids(row, vocab_size, name="source_ids")
    lengths = np.array([row.size for row in rows], np.int32)
    sources = np.full((len(rows), max(width, lengths.max())), pad_id, np.int32)
    for k, row in enumerate(rows):
        sources[k, : row.size] = row
    return sources, lengths


def generate(model, source_ids, max_new_tokens, sampler="greedy", end_id=None, use_cache=True, return_logits=False,
             seed=None):
    """Generate targets for a batch of sources with a seq2seq model such as `kgen.text.UniLM`.

    Args:
        model: a `UniLM`, or any model with the attributes and methods listed in the module docstring.
        source_ids: list of token-id sequences, or an end-padded int array `(batch, length)`.
        max_new_tokens: number of target tokens to generate (static: one compilation per value).
        sampler: a sampler from `kgen.text.samplers` or its name ("greedy", "random", "top_k", "top_p", "beam").
        end_id: token that ends a target (kept; later tokens are `pad_id`); None = always `max_new_tokens`.
        use_cache: key/value cache (default) or full recomputation at every step (the reference).
        return_logits: also return the logits each step chose from (not for beam search).
        seed: random samplers only: None draws from the sampler's own `SeedGenerator` (every call differs), an
            int gives the same tokens on every call (`kgen.base.seed_generator_for`).

    Returns:
        Backend tensors (as keras-hub's `generate`; `keras.ops.convert_to_numpy` gives NumPy): int32
        `(batch, max_new_tokens)`; with `return_logits`, also float `(batch, max_new_tokens, vocab)`.
        `BeamSampler(return_all_beams=True)`: `(tokens (batch, beams, steps), scores (batch, beams))`, best
        first, scores being summed log-probabilities.

    Example:
        >>> from kgen.text import UniLM, generate
        >>> model = UniLM(vocab_size=10, max_length=16)  # untrained: the tokens are arbitrary
        >>> tokens = generate(model, [[1, 5, 6, 2], [1, 7, 2]], max_new_tokens=8, end_id=2)  # int32 (2, 8)
    """
    sampler = get_sampler(sampler)
    steps = check_int("max_new_tokens", max_new_tokens, 1)
    end = -1 if end_id is None else check_int("end_id", end_id, 0)
    beam = isinstance(sampler, BeamSampler)
    if beam and return_logits:
        raise ValueError("`return_logits` is not available with beam search")
    sources, lengths = prepare_sources(source_ids, model.pad_id, model.vocab_size)
    if sources.shape[1] + steps > model.max_length:
        raise ValueError(f"longest source ({sources.shape[1]}) + `max_new_tokens` ({steps}) must be <= the "
                         f"model's max_length ({model.max_length})")
    if not model.built:
        model.build()
    # The noise of every step is drawn here, before the compiled loop (a JAX loop cannot advance a seed).
    noise = None if beam else sampler.draw_noise(steps, len(lengths), model.vocab_size, seed=seed)
    noise = ops.zeros(()) if noise is None else noise
    run = _compiled(model, sampler, beam)
    arrays = [ops.convert_to_tensor(a, "int32") for a in (sources, lengths, end)]
    out = run(*arrays, noise, steps=steps, use_cache=bool(use_cache), return_logits=bool(return_logits))
    if beam:
        return (out[0], out[1]) if sampler.return_all_beams else out[0][:, 0]
    return (out[0], out[1]) if return_logits else out[0]


def _compiled(model, sampler, beam):
    """One compiled loop per model and sampler settings (the seed is not a setting: noise is an argument)."""
    functions = _COMPILED.setdefault(model, {})
    settings = {k: v for k, v in sampler.get_config().items() if k != "seed"}
    key = (type(sampler).__name__, tuple(sorted(settings.items())))
    if key not in functions:
        loop = _beam_loop if beam else sample_loop

        def run(source_ids, lengths, end_id, noise, **static):
            return loop(model, sampler, source_ids, lengths, end_id, noise, **static)

        functions[key] = compile_function(run, state=[model])
    return functions[key]


def sample_loop(model, sampler, source_ids, lengths, end_id, noise, steps, use_cache=True, return_logits=False):
    """The decoding loop of one-token samplers, in `keras.ops` (compile it, or trace it for export).

    Args:
        model: see the module docstring.
        sampler: a `TokenSampler`.
        source_ids: int32 `(batch, width)`, end-padded with `model.pad_id`; `lengths` int32 `(batch,)`.
        end_id: int32 scalar tensor, the end token (−1 = none): a row that emitted it emits `pad_id` after.
        noise: `sampler.draw_noise(steps, batch, vocab)` for random samplers, else any placeholder tensor.
        steps: number of tokens (static int); use_cache, return_logits: as in `generate` (static bools).

    Returns:
        `(tokens int32 (batch, steps), logits (batch, steps, vocab) or a placeholder scalar)`.
    """
    batch = ops.shape(source_ids)[0]

    def pick(t, logits, done):
        token = sampler.get_next_token(logits, noise[t] if sampler.needs_noise else None)
        token = ops.where(done, model.pad_id, token)
        return token, done | (token == end_id)

    logits, cache = model.prefill(source_ids, lengths, steps, use_cache)
    token, done = pick(0, logits, ops.zeros((batch,), "bool"))
    out = ops.slice_update(ops.zeros((batch, steps), "int32"), (0, 0), token[:, None])
    out_logits = ops.zeros(())
    if return_logits:
        out_logits = ops.zeros((batch, steps, model.vocab_size), logits.dtype)
        out_logits = ops.slice_update(out_logits, (0, 0, 0), logits[:, None, :])

    def body(t, state):
        token, done, cache, out, out_logits = state
        logits, cache = model.next_logits(token, t - 1, lengths, cache, use_cache)
        token, done = pick(t, logits, done)
        out = ops.slice_update(out, (0, t), token[:, None])
        if return_logits:
            out_logits = ops.slice_update(out_logits, (0, t, 0), logits[:, None, :])
        return token, done, cache, out, out_logits

    state = ops.fori_loop(1, steps, body, (token, done, cache, out, out_logits))
    return state[3], state[4]


def _beam_loop(model, sampler, source_ids, lengths, end_id, noise, steps, use_cache, return_logits):
    beams, vocab = sampler.num_beams, model.vocab_size
    batch = ops.shape(source_ids)[0]
    logits, cache = model.prefill(source_ids, lengths, steps, use_cache)
    logits, lengths = (ops.repeat(x, beams, axis=0) for x in (logits, lengths))
    cache = keras.tree.map_structure(lambda x: ops.repeat(x, beams, axis=0), cache)
    # Only beam 0 is live at first, so the first step does not pick the same token `beams` times.
    scores = ops.concatenate([ops.zeros((batch, 1)), ops.full((batch, beams - 1), -1e9)], axis=1)
    lengths_out = ops.zeros((batch, beams), "int32")
    finished = ops.zeros((batch, beams), "bool")
    out = ops.zeros((batch, beams, steps), "int32")
    offsets = ops.arange(batch, dtype="int32")[:, None] * beams

    def select(t, logits, scores, lengths_out, finished, out):
        log_probs = ops.reshape(ops.log_softmax(logits, axis=-1), (batch, beams, vocab))
        parent, token, scores, lengths_out = sampler.get_next_token(log_probs, scores, lengths_out, finished,
                                                                    model.pad_id)
        finished = ops.take_along_axis(finished, parent, axis=1) | (token == end_id)
        out = ops.take_along_axis(out, ops.broadcast_to(parent[:, :, None], (batch, beams, steps)), axis=1)
        out = ops.slice_update(out, (0, 0, t), token[:, :, None])
        return ops.reshape(offsets + parent, (-1,)), ops.reshape(token, (-1,)), scores, lengths_out, finished, out

    state = select(0, logits, scores, lengths_out, finished, out)

    def body(t, state):
        parent, token, scores, lengths_out, finished, out, cache = state
        cache = model.reorder_cache(cache, parent, use_cache)
        logits, cache = model.next_logits(token, t - 1, lengths, cache, use_cache)
        return select(t, logits, scores, lengths_out, finished, out) + (cache,)

    state = ops.fori_loop(1, steps, body, state + (cache,))
    scores, lengths_out, out = state[2], state[3], state[5]
    _, order = ops.top_k(sampler.normalized(scores, lengths_out), beams, sorted=True)
    scores = ops.take_along_axis(scores, order, axis=1)
    out = ops.take_along_axis(out, ops.broadcast_to(order[:, :, None], (batch, beams, steps)), axis=1)
    return out, scores
