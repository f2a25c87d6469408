"""Decoding a UniLM seq2seq model: greedy, sampling and beam search, with an exact key/value cache.

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933): decode the target
token by token after the source, with beam search as for any seq2seq model. bert4keras re-runs the whole
model at every step; UniLM v1 (Dong et al. 2019) caches per-layer states. Here both paths exist
(`use_cache=False` is the reference) and are compiled with `kgen.backend.compile_function`.

Layout of a batch of sources of different lengths nᵦ (ragged), buffer length S = max nᵦ + steps:

    position   0 … nᵦ−1          nᵦ … nᵦ+steps−1         (rest)
    token      source (left)     generated y₀, y₁, …      unused
    segment    0                 1                        1

This is exactly the layout the model is trained on, `[CLS] source [SEP] target [SEP]` with no gap, so position
ids are plain 0…S−1 and every row writes its t-th token at its own position nᵦ + t. Logits at position
nᵦ − 1 (the source `[SEP]`) give y₀; feeding y_{t−1} at position nᵦ + t − 1 gives y_t.

Why the cache is exact: a cache is exact iff no computed position attends a position written later. Under the
UniLM mask, source rows see only the source and target rows see only earlier positions, so (1) the whole
source is prefilled at once with the UniLM mask (bidirectional inside the source, never token by token), and
(2) each step's query at position p uses the row `M[p, :]` of the full mask (all source + target ≤ p), with
per-row p. The cache keeps the sources' keys/values apart from the generated ones (`BertEncoder.prefill`): the
t-th generated token of every row goes to column t, whatever the row's source length, so a step writes one
column instead of rewriting a buffer, and the row's mask is its real source tokens plus columns ≤ t.
keras-hub's prefix-LM generation instead re-runs the tails of longer prompts through the causal step path,
which loses their bidirectionality; here no source token ever goes through the step path.
"""

import weakref

import numpy as np
from keras import ops

from kgen._checks import check_int
from kgen.backend import compile_function
from kgen.text.masks import unilm_mask
from kgen.text.samplers import BeamSampler, get_sampler
from kgen.text.unilm import check_token_ids

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
        array = np.asarray(source_ids)
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


def generate(model, source_ids, max_new_tokens, sampler="greedy", end_id=None, use_cache=True, return_logits=False):
    """Generate targets for a batch of sources with a `kgen.text.UniLM` model.

    Args:
        model: a `UniLM` (anything with `encoder`, `vocab_size`, `pad_id`, `max_length`).
        source_ids: list of token-id sequences, or an end-padded int array `(batch, length)`.
        max_new_tokens: number of target tokens to generate (static: one compilation per value).
        sampler: a sampler from `kgen.text.samplers` or its name ("greedy", "random", "top_k", "top_p", "beam").
        end_id: token that ends a target (kept; later tokens are `pad_id`); None = always `max_new_tokens`.
        use_cache: key/value cache (default) or full recomputation at every step (the reference).
        return_logits: also return the logits each step chose from (not for beam search).

    Returns:
        int32 `(batch, max_new_tokens)`; with `return_logits`, also float `(batch, max_new_tokens, vocab)`.
        `BeamSampler(return_all_beams=True)`: `(tokens (batch, beams, steps), scores (batch, beams))`, best
        first, scores being summed log-probabilities.

    Example:
        >>> tokens = generate(model, [[1, 5, 6, 2], [1, 7, 2]], max_new_tokens=8, end_id=2)
    """
    sampler = get_sampler(sampler)
    steps = check_int("max_new_tokens", max_new_tokens, 1)
    end = -1 if end_id is None else check_int("end_id", end_id, 0)
    beam = isinstance(sampler, BeamSampler)
    if beam and return_logits:
        raise ValueError("`return_logits` is not available with beam search")
    sources, lengths = prepare_sources(source_ids, model.pad_id, model.vocab_size)
    total = sources.shape[1] + steps
    if total > model.max_length:
        raise ValueError(f"longest source ({sources.shape[1]}) + `max_new_tokens` ({steps}) must be <= the "
                         f"model's max_length ({model.max_length})")
    tokens = np.full((len(lengths), total), model.pad_id, np.int32)
    tokens[:, : sources.shape[1]] = sources
    segments = (np.arange(total)[None, :] >= lengths[:, None]).astype(np.int32)
    if not model.built:
        model.build()
    # The noise of every step is drawn here, before the compiled loop (a JAX loop cannot advance a seed).
    noise = None if beam else sampler.draw_noise(steps, len(lengths), model.vocab_size)
    noise = ops.zeros(()) if noise is None else noise
    run = _compiled(model, sampler, beam)
    arrays = [ops.convert_to_tensor(a, "int32") for a in (tokens, segments, lengths, end)]
    out = run(*arrays, noise, steps=steps, use_cache=bool(use_cache), return_logits=bool(return_logits))
    out = [ops.convert_to_numpy(x) for x in out]
    if beam:
        return (out[0], out[1]) if sampler.return_all_beams else out[0][:, 0]
    return (out[0], out[1]) if return_logits else out[0]


def _compiled(model, sampler, beam):
    """One compiled loop per model and sampler settings (the seed is not a setting: noise is an argument)."""
    functions = _COMPILED.setdefault(model, {})
    settings = {k: v for k, v in sampler.get_config().items() if k != "seed"}
    key = (type(sampler).__name__, tuple(sorted(settings.items())))
    if key not in functions:
        loop = _beam_loop if beam else _sample_loop

        def run(tokens, segments, lengths, end_id, noise, **static):
            return loop(model, sampler, tokens, segments, lengths, end_id, noise, **static)

        functions[key] = compile_function(run, state=[model])
    return functions[key]


def _first_logits(model, tokens, segments, lengths, steps, use_cache):
    """Run the sources (UniLM mask, all at once); logits at each row's last source position, and the cache.

    With the cache only the source columns (the first `width − steps`) go through the model."""
    encoder = model.encoder
    if use_cache:
        width = ops.shape(tokens)[1] - steps
        tokens, segments = tokens[:, :width], segments[:, :width]
    pad = ops.arange(ops.shape(tokens)[1], dtype="int32")[None, :] < lengths[:, None]
    mask = unilm_mask(segments, pad)
    if use_cache:
        hidden, cache = encoder.prefill(tokens, segments, mask, steps)
    else:
        hidden, cache = encoder.hidden_states(tokens, segments, mask), ops.zeros(())
    last = ops.take_along_axis(hidden, (lengths - 1)[:, None, None], axis=1)[:, 0]
    return encoder.lm_head(last), cache


def _next_logits(model, t, token, lengths, tokens, segments, cache, use_cache):
    """Feed `token (B,)` as generated token `t − 1`, at each row's position `lengths + t − 1`; logits of the
    token after it, the token buffer and the cache."""
    encoder = model.encoder
    position = lengths + t - 1
    if use_cache:
        prompt = ops.shape(cache[0][0])[2]
        prompt_mask = ops.arange(prompt, dtype="int32")[None, :] < lengths[:, None]
        hidden, cache = encoder.decode_step(token, ops.ones_like(token), position, t - 1, cache, prompt_mask)
    else:
        seen = ops.arange(ops.shape(tokens)[1], dtype="int32")[None, :] <= position[:, None]
        slot = ops.one_hot(position, ops.shape(tokens)[1], dtype="bool")
        tokens = ops.where(slot, token[:, None], tokens)
        hidden = encoder.hidden_states(tokens, segments, unilm_mask(segments, seen))
        hidden = ops.take_along_axis(hidden, position[:, None, None], axis=1)[:, 0]
    return encoder.lm_head(hidden), tokens, cache


def _sample_loop(model, sampler, tokens, segments, lengths, end_id, noise, steps, use_cache, return_logits):
    batch = ops.shape(tokens)[0]

    def pick(t, logits, done):
        token = sampler.get_next_token(logits, noise[t] if sampler.needs_noise else None)
        token = ops.where(done, model.pad_id, token)
        return token, done | (token == end_id)

    logits, cache = _first_logits(model, tokens, segments, lengths, steps, use_cache)
    token, done = pick(0, logits, ops.zeros((batch,), "bool"))
    out = ops.slice_update(ops.zeros((batch, steps), "int32"), (0, 0), token[:, None])
    out_logits = ops.zeros(())
    if return_logits:
        out_logits = ops.zeros((batch, steps, model.vocab_size), logits.dtype)
        out_logits = ops.slice_update(out_logits, (0, 0, 0), logits[:, None, :])

    def body(t, state):
        token, done, tokens, cache, out, out_logits = state
        logits, tokens, cache = _next_logits(model, t, token, lengths, tokens, segments, cache, use_cache)
        token, done = pick(t, logits, done)
        out = ops.slice_update(out, (0, t), token[:, None])
        if return_logits:
            out_logits = ops.slice_update(out_logits, (0, t, 0), logits[:, None, :])
        return token, done, tokens, cache, out, out_logits

    state = ops.fori_loop(1, steps, body, (token, done, tokens, cache, out, out_logits))
    return state[4], state[5]


def _beam_loop(model, sampler, tokens, segments, lengths, end_id, noise, steps, use_cache, return_logits):
    beams, vocab = sampler.num_beams, model.vocab_size
    batch = ops.shape(tokens)[0]
    logits, cache = _first_logits(model, tokens, segments, lengths, steps, use_cache)
    logits, tokens, segments, lengths = (ops.repeat(x, beams, axis=0) for x in (logits, tokens, segments, lengths))
    if use_cache:
        cache = tuple(tuple(ops.repeat(x, beams, axis=0) for x in layer) for layer in cache)
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
        parent, token, scores, lengths_out, finished, out, tokens, cache = state
        tokens = ops.take(tokens, parent, axis=0)
        if use_cache:
            # The beams of a row share its prompt; only the generated keys and values follow their parents.
            cache = tuple(layer[:2] + tuple(ops.take(x, parent, axis=0) for x in layer[2:]) for layer in cache)
        logits, tokens, cache = _next_logits(model, t, token, lengths, tokens, segments, cache, use_cache)
        return select(t, logits, scores, lengths_out, finished, out) + (tokens, cache)

    state = ops.fori_loop(1, steps, body, state + (tokens, cache))
    scores, lengths_out, out = state[2], state[3], state[5]
    _, order = ops.top_k(sampler.normalized(scores, lengths_out), beams, sorted=True)
    scores = ops.take_along_axis(scores, order, axis=1)
    out = ops.take_along_axis(out, ops.broadcast_to(order[:, :, None], (batch, beams, steps)), axis=1)
    return out, scores
