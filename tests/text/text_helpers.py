"""Tiny models and batches shared by the kgen.text tests (tiny: torch runs them eagerly)."""

import keras
import numpy as np
from keras import ops

from kgen.text import UniLM, generate

VOCAB = 13


def tiny_unilm(**kwargs):
    """A 2-layer, width-16 UniLM with random weights (larger initialiser: logits far from uniform)."""
    settings = dict(vocab_size=VOCAB, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32,
                    max_length=24, initializer_range=0.3)
    settings.update(kwargs)
    model = UniLM(**settings)
    model.build()
    return model


# Ragged sources: [CLS] … [SEP], lengths 5, 3 and 8, as lists (generate pads them itself).
RAGGED_SOURCES = [[1, 5, 6, 7, 2], [1, 8, 2], [1, 3, 4, 5, 6, 7, 8, 2]]


def generate_numpy(*args, **kwargs):
    """`kgen.text.generate` with its backend tensors (one, or a tuple) as NumPy arrays."""
    return keras.tree.map_structure(ops.convert_to_numpy, generate(*args, **kwargs))


def packed(sources, targets):
    """Model inputs for rows `source + target` (segment 0, then 1), end-padded with 0, and the padding mask."""
    length = max(len(s) + len(t) for s, t in zip(sources, targets))
    token_ids = np.zeros((len(sources), length), np.int32)
    segment_ids = np.zeros_like(token_ids)
    padding = np.zeros(token_ids.shape, bool)
    for b, (s, t) in enumerate(zip(sources, targets)):
        token_ids[b, : len(s) + len(t)] = list(s) + list(t)
        segment_ids[b, len(s): len(s) + len(t)] = 1
        padding[b, : len(s) + len(t)] = True
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding}
