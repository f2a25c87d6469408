"""Pictures of attention masks, drawn as in Su Jianlin's article (https://kexue.fm/archives/6933).

Rows are outputs (queries), columns are inputs (keys); a coloured cell may attend, a white cell is blocked
(the article's white = 0). Returns uint8 RGB arrays; `save_mask_png` writes them with `kgen.images.save_png`.
"""

import numpy as np

from kgen._checks import check_int
from kgen.images import save_png

ALLOWED_COLOUR = (52, 101, 164)
BLOCKED_COLOUR = (255, 255, 255)
GRID_COLOUR = (190, 190, 190)


def mask_image(mask, cell=16):
    """A boolean mask `(query, key)` as a uint8 picture `(query·cell + 1, key·cell + 1, 3)` with grid lines.

    Args:
        mask: bool or 0/1 array `(query, key)` (one example; take `mask[b]` of a batch).
        cell: side of one cell in pixels.

    Example:
        >>> import numpy as np
        >>> from kgen.text import mask_image
        >>> picture = mask_image(np.tril(np.ones((4, 4), bool)))  # (65, 65, 3)
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"`mask` must have shape (query, key), got {mask.shape}")
    cell = check_int("cell", cell, 2)
    rows, cols = mask.shape
    picture = np.empty((rows * cell + 1, cols * cell + 1, 3), np.uint8)
    picture[...] = GRID_COLOUR
    for i in range(rows):
        for j in range(cols):
            colour = ALLOWED_COLOUR if mask[i, j] else BLOCKED_COLOUR
            picture[i * cell + 1:(i + 1) * cell, j * cell + 1:(j + 1) * cell] = colour
    return picture


def mask_gallery(masks, cell=16, gap=12):
    """Several mask pictures side by side (top-aligned, white gaps) as one uint8 array."""
    pictures = [mask_image(m, cell) for m in masks]
    if not pictures:
        raise ValueError("`masks` must hold at least one mask")
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + gap * (len(pictures) - 1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for picture in pictures:
        canvas[: picture.shape[0], x: x + picture.shape[1]] = picture
        x += picture.shape[1] + gap
    return canvas


def save_mask_png(path, mask, cell=16):
    """Write `mask_image(mask)` (one mask) or `mask_gallery(mask)` (a list of masks) to `path`; returns path."""
    picture = mask_gallery(mask, cell) if isinstance(mask, (list, tuple)) else mask_image(mask, cell)
    return save_png(path, picture)
