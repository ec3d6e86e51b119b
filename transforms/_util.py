"""Small helpers shared by the transform modules: sizes as fractions, colours, arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

Size = tuple[int, int]

#: Named fill colours; "mean" and "blur" are computed from the image.
COLORS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
}
FILLS = (*COLORS, "mean", "blur")


def short_side(size: Size) -> int:
    return min(size)


def px(fraction: float, length: int, minimum: int = 1) -> int:
    """``fraction`` of ``length`` in whole pixels, at least ``minimum``."""
    return max(minimum, round(fraction * length))


def to_array(image: Image.Image) -> npt.NDArray[np.float64]:
    return np.asarray(image, dtype=np.float64)


def from_array(arr: npt.NDArray[Any]) -> Image.Image:
    """Round to the nearest integer and clip to 0..255 (one rounding rule everywhere)."""
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


def mean_color(image: Image.Image) -> tuple[int, int, int]:
    r, g, b = np.rint(to_array(image).reshape(-1, 3).mean(axis=0)).astype(int).tolist()
    return r, g, b


def canvas(image: Image.Image, size: Size, fill: str) -> Image.Image:
    """A background of ``size``: a named colour, the image's mean colour, or a blurred copy of
    the image stretched over it (the "story background" look)."""
    if fill == "mean":
        return Image.new("RGB", size, mean_color(image))
    if fill == "blur":
        radius = max(1.0, 0.05 * short_side(size))
        return image.resize(size, Image.Resampling.BILINEAR).filter(
            ImageFilter.GaussianBlur(radius)
        )
    return Image.new("RGB", size, COLORS[fill])


def fit_within(size: Size, box: Size) -> Size:
    """Largest size with the aspect of ``size`` that fits in ``box`` (each side >= 1)."""
    scale = min(box[0] / size[0], box[1] / size[1])
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
