"""Cached vs uncached greedy decoding of a UniLM (kgen.text), 32 target tokens, ragged sources.

Peer: the same compiled decoding loop re-running the whole model at every step (`use_cache=False`, what
bert4keras does), measured in the same run. Both are compiled with `kgen.backend.compile_function`, warmed up
once (compilation excluded), then timed once. Model: 4 layers, width 128, 4 heads, vocabulary 1000; batch of
32 sources of 32–64 tokens. Goal: cache ≥ 5× faster.

    KERAS_BACKEND=jax python benchmarks/bench_text_decoding.py
"""

import time

import keras
import numpy as np

import kgen
from kgen.text import UniLM

BACKEND = keras.backend.backend()
STEPS = 32


def bench_decoding(batch=32, min_source=32, max_source=64):
    kgen.set_seed(0)
    model = UniLM(1000, hidden_dim=128, num_layers=4, num_heads=4, intermediate_dim=512,
                  max_length=max_source + STEPS, initializer_range=0.1)
    rng = np.random.default_rng(0)
    sources = np.zeros((batch, max_source), np.int32)
    for row, n in zip(sources, rng.integers(min_source, max_source + 1, size=batch)):
        row[:n] = rng.integers(3, 1000, size=n)
    times, tokens = {}, {}
    for use_cache in (True, False):
        model.generate(sources, STEPS, use_cache=use_cache)  # compile
        start = time.perf_counter()
        # generate returns a backend tensor (JAX dispatches asynchronously): the copy to NumPy waits for it.
        tokens[use_cache] = keras.ops.convert_to_numpy(model.generate(sources, STEPS, use_cache=use_cache))
        times[use_cache] = time.perf_counter() - start
    same = bool(np.array_equal(tokens[True], tokens[False]))
    return times[True], times[False], same


def main():
    cached, full, same = bench_decoding()
    print(f"[{BACKEND}] greedy decoding, 32 tokens, batch 32, ragged sources 32-64: cache {cached:.3f} s, "
          f"full recomputation {full:.3f} s, speed-up ×{full / cached:.1f} (goal ≥ 5), same tokens: {same}")
    return cached, full


if __name__ == "__main__":
    main()
