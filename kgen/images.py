"""Image grids as numpy arrays and PNG files (Pillow); no plotting library needed."""

import os

import numpy as np


def to_uint8(images, value_range=(0.0, 1.0)):
    """Map images with values in `value_range` to uint8 0..255, clipping outside values.

    Integer images need their range too: digits are `value_range=(0, 16)`, 8-bit images `(0, 255)`. None maps
    the images' own finite minimum and maximum (unbounded samples, e.g. a model whose `value_range` is None).
    """
    images = np.asarray(images)
    if value_range is None:
        finite = images[np.isfinite(images)]
        low, high = (float(finite.min()), float(finite.max()) + 1e-6) if finite.size else (0.0, 1.0)
    else:
        low, high = value_range
    if images.dtype == np.uint8 and (low, high) == (0, 255):
        return images
    if high <= low:
        raise ValueError(f"`value_range` must be (low, high) with low < high, got {value_range!r}")
    scaled = (images.astype(np.float64) - low) / (high - low)
    # Diverged samples (an undertrained flow's inverse can overflow) show as black/white, not as a cast warning.
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)


def make_grid(images, rows=None, padding=1, value_range=(0.0, 1.0)):
    """Tile `(n, H, W, C)` images (C = 1 or 3) into one `(rows·(H+p)+p, cols·(W+p)+p, C)` uint8 image.

    `value_range` as in `to_uint8` (None: the images' own range).

    Example:
        >>> grid = make_grid(np.random.rand(16, 8, 8, 1))   # 4 × 4 tiles
    """
    images = to_uint8(images, value_range)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"`images` must have shape (n, H, W, 1 or 3), got {images.shape}")
    n, height, width, channels = images.shape
    if n == 0:
        raise ValueError("`images` is empty")
    rows = rows or int(np.ceil(np.sqrt(n)))
    cols = int(np.ceil(n / rows))
    grid = np.full((rows * (height + padding) + padding, cols * (width + padding) + padding, channels), 255, np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        top, left = padding + r * (height + padding), padding + c * (width + padding)
        grid[top:top + height, left:left + width] = images[k]
    return grid


def save_grid(path, images, rows=None, scale=4, value_range=(0.0, 1.0)):
    """Write a grid of images to a PNG, each pixel enlarged `scale` times (nearest neighbour); returns path.

    The file is written to a temporary name and renamed, so a failure leaves nothing half-written.
    """
    from PIL import Image

    grid = make_grid(images, rows=rows, value_range=value_range)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale != 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    picture.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def scatter_image(points, size=256, extent=None, centres=None):
    """Rasterise 2-D points into a `(size, size, 3)` uint8 picture (dark dots over red centre crosses).

    Args:
        points: `(n, 2)` array.
        extent: `(low, high)` shared by both axes; by default the points' range with a 5 % margin.
        centres: optional `(k, 2)` array drawn as red crosses (modes of a mixture).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"`points` must have shape (n, 2), got {points.shape}")
    if extent is None:
        low, high = points.min(), points.max()
        margin = 0.05 * (high - low + 1e-9)
        extent = (low - margin, high + margin)
    low, high = extent
    canvas = np.full((size, size, 3), 255, np.uint8)

    def to_pixels(p):
        scaled = (p - low) / (high - low) * (size - 1)
        cols = np.clip(np.round(scaled[:, 0]), 0, size - 1).astype(int)
        rows = np.clip(np.round((size - 1) - scaled[:, 1]), 0, size - 1).astype(int)
        return rows, cols

    if centres is not None:
        # Crosses first, so that samples sitting on a mode stay visible on top of its marker.
        rows, cols = to_pixels(np.asarray(centres, dtype=np.float64))
        for dr in range(-3, 4):
            canvas[np.clip(rows + dr, 0, size - 1), cols] = (220, 30, 30)
            canvas[rows, np.clip(cols + dr, 0, size - 1)] = (220, 30, 30)
    rows, cols = to_pixels(points)
    canvas[rows, cols] = (30, 30, 30)
    return canvas


def save_png(path, picture):
    """Write a uint8 `(H, W)` or `(H, W, 3)` array to PNG atomically; returns path."""
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    Image.fromarray(np.asarray(picture, np.uint8)).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
