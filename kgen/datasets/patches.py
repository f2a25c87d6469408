"""Natural-image patches: square grayscale crops of the photographs and textures bundled in scikit-image.

Source: `skimage.data` of scikit-image 0.26 (``pip install kgen[data]``), whose wheel ships the images, so
nothing is downloaded. `PATCH_SOURCES` lists the nine used, label i is the source ``PATCH_SOURCES[i]``:

* textures: brick, grass, gravel (512x512, grayscale in the wheel);
* photographs: camera (512x512), astronaut (512x512), chelsea (300x451), coffee (400x600), rocket (427x640),
  immunohistochemistry (512x512, a stained tissue slide).

Left out: hubble_deep_field (872x1000, mostly empty dark sky: it would be a quarter of the crops, nearly flat),
retina (a black border around a smooth disc), moon and the text/page scans (little texture).

Grayscale, one channel: colour images are reduced to luma Y = 0.2125 R + 0.7154 G + 0.0721 B (Rec. 709, the
weights of `skimage.color.rgb2gray`), rounded to uint8. Why: the point of these patches is high-frequency
texture (Upsample Guidance, resolution-shifted schedules), which lives mostly in luminance; one channel is a
third of the pixels, which keeps 16x16 and 32x32 diffusion training within reach of a 2-core CPU, and the power
spectrum (`kgen.metrics.power_spectrum`) of one channel needs no convention for mixing channels.

Split by region, not by crop: each source image is cut at column ⌊3W/4⌋; "train" crops lie entirely in the left
three quarters, "test" crops entirely in the right quarter, so no test pixel is inside any training crop.
Crops sit on a regular grid of step `stride` (default size // 2) from the region's top-left corner, row-major,
source by source: the same crops on every call and machine. `patch_boxes` gives each crop's position.
"""

import functools
import importlib.util

import numpy as np

from kgen._checks import check_choice, check_int
from ._split import SPLITS

PATCH_SOURCES = ("brick", "grass", "gravel", "camera", "astronaut", "chelsea", "coffee", "rocket",
                 "immunohistochemistry")
PATCH_LEVELS = 256
TRAIN_FRACTION = 0.75
_LUMA = np.array([0.2125, 0.7154, 0.0721])
# Heights and widths of the sources in scikit-image 0.26 (checked on load), so argument errors need no image.
_SHAPES = {"brick": (512, 512), "grass": (512, 512), "gravel": (512, 512), "camera": (512, 512),
           "astronaut": (512, 512), "chelsea": (300, 451), "coffee": (400, 600), "rocket": (427, 640),
           "immunohistochemistry": (512, 512)}


def _regions(shape):
    """{split: (row0, row1, col0, col1)} of one source image of `shape` (H, W)."""
    height, width = shape
    cut = int(np.floor(TRAIN_FRACTION * width))
    return {"train": (0, height, 0, cut), "test": (0, height, cut, width)}


def _largest_size():
    return min(min(r1 - r0, c1 - c0) for shape in _SHAPES.values() for r0, r1, c0, c1 in _regions(shape).values())


@functools.lru_cache(maxsize=1)
def _sources():
    if importlib.util.find_spec("skimage") is None:
        raise ImportError("load_patches needs scikit-image's bundled images: pip install kgen[data]")
    import skimage.data  # deferred: only the loader needs it

    images = []
    for name in PATCH_SOURCES:
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 3:
            image = np.floor(image[..., :3].astype(np.float64) @ _LUMA + 0.5).clip(0, 255)
        if image.shape != _SHAPES[name]:
            raise ValueError(f"scikit-image's `{name}` has shape {image.shape}, expected {_SHAPES[name]}")
        image = image.astype(np.uint8)
        image.flags.writeable = False
        images.append(image)
    return tuple(images)


def _check(split, size, stride):
    check_choice("split", split, SPLITS)
    size = check_int("size", size, 1)
    largest = _largest_size()
    if size > largest:
        raise ValueError(f"`size`={size} is larger than the smallest source region ({largest} px: the test quarter "
                         f"of `chelsea`); use size <= {largest}")
    stride = max(size // 2, 1) if stride is None else check_int("stride", stride, 1)
    return split, size, stride


def _boxes(split, size, stride):
    if split == "all":
        return np.concatenate([_boxes("train", size, stride), _boxes("test", size, stride)])
    rows = []
    for label, name in enumerate(PATCH_SOURCES):
        r0, r1, c0, c1 = _regions(_SHAPES[name])[split]
        tops, lefts = np.arange(r0, r1 - size + 1, stride), np.arange(c0, c1 - size + 1, stride)
        grid = np.stack(np.meshgrid(tops, lefts, indexing="ij"), axis=-1).reshape(-1, 2)
        rows.append(np.concatenate([np.full((len(grid), 1), label), grid], axis=1))
    return np.concatenate(rows).astype(np.int64)


def _subset(count, limit, seed):
    if limit is None:
        return np.arange(count)
    limit = check_int("limit", limit, 1)
    seed = check_int("seed", seed, 0)
    if limit >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


def patch_boxes(split="train", size=32, stride=None, limit=None, seed=0):
    """Where each crop of `load_patches` (same arguments) comes from: rows (label, top, left).

    The crop is ``source[top:top + size, left:left + size]`` of the grayscale source image ``PATCH_SOURCES[label]``.

    Returns:
        int64 array of shape (n, 3), in `load_patches`' order.

    Example:
        >>> boxes = patch_boxes("test", size=32)
        >>> print(boxes.shape, boxes.dtype, PATCH_SOURCES[boxes[0, 0]], boxes[0, 1:].tolist())
        (1821, 3) int64 brick [0, 384]
    """
    split, size, stride = _check(split, size, stride)
    boxes = _boxes(split, size, stride)
    return boxes[_subset(len(boxes), limit, seed)]


def load_patches(split="train", size=32, stride=None, limit=None, seed=0):
    """Square grayscale crops of scikit-image's photographs and textures (see the module docstring).

    Args:
        split: "train" (crops in the left 3/4 of every source image), "test" (the right 1/4) or "all"
            (train then test). No test pixel lies inside any training crop.
        size: side of the square crops in pixels, an int in 1..113 (113: the test quarter of `chelsea`).
        stride: step of the crop grid, an int >= 1; default size // 2 (crops overlap by half).
        limit: None (every crop) or the number of crops to keep, drawn without replacement with `seed` and
            returned in grid order.
        seed: non-negative int for `numpy.random.default_rng`, used only with `limit`.

    Returns:
        images: uint8, shape (n, size, size, 1), values 0..255 (use ``levels=256`` with `dequantize`).
        labels: int64, shape (n,), the source image: ``PATCH_SOURCES[label]``.
        Fresh arrays: modifying them does not affect later calls.

    Raises:
        ImportError: scikit-image is not installed (``pip install kgen[data]``).
        TypeError, ValueError: a bad argument (named in the message), before any image is read.

    Example:
        >>> x, y = load_patches("train", size=32)
        >>> print(x.shape, x.dtype, y.dtype, PATCH_SOURCES[y[-1]])
        (5991, 32, 32, 1) uint8 int64 immunohistochemistry
    """
    boxes = patch_boxes(split, size, stride, limit, seed)
    size = int(size)
    sources = _sources()
    images = np.empty((len(boxes), size, size, 1), dtype=np.uint8)
    for i, (label, top, left) in enumerate(boxes):
        images[i, :, :, 0] = sources[label][top:top + size, left:left + size]
    return images, boxes[:, 0].copy()
