"""Geometric edits: identity, crop and resize.

Sizes are fractions of the image wherever possible, so a severity means the same at 300 px and at
4000 px. Every transform documents its output size in :meth:`output_size`, and the tests check it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from harness._validation import check_choice, check_int, check_real
from harness.errors import InvalidParameterError
from transforms.base import TRANSFORMS, Transform

#: Pillow resampling filters by the names suites use.
FILTERS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

ANCHORS = ("center", "top_left", "top_right", "bottom_left", "bottom_right")


@TRANSFORMS.register("identity", "noop")
@dataclass(frozen=True)
class Identity(Transform):
    """Leave the image unchanged: the control cell (every hash must match itself at distance 0)."""

    name: ClassVar[str] = "identity"
    models: ClassVar[str] = "the same file uploaded again"

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return image.copy()


@TRANSFORMS.register("crop")
@dataclass(frozen=True)
class Crop(Transform):
    """Keep a fraction of the image's area, at the centre or in a corner.

    Parameters
    ----------
    keep_area : float in (0, 1]
        Fraction of the area kept. The aspect ratio is preserved, so each side keeps
        ``sqrt(keep_area)`` of its length: ``keep_area=0.81`` is a "90% crop" of each side.
    anchor : {"center", "top_left", "top_right", "bottom_left", "bottom_right"}
        Where the kept window sits.

    Output size: ``(max(1, round(W * s)), max(1, round(H * s)))`` with ``s = sqrt(keep_area)``.
    """

    name: ClassVar[str] = "crop"
    models: ClassVar[str] = "a user trimming the borders or cutting out part of a photo"
    keep_area: float = 0.81
    anchor: str = "center"

    def __post_init__(self) -> None:
        v = check_real(
            "keep_area", self.keep_area, owner="crop", min_value=0.0, max_value=1.0, min_open=True
        )
        object.__setattr__(self, "keep_area", v)
        check_choice("anchor", self.anchor, owner="crop", choices=ANCHORS)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        s = math.sqrt(self.keep_area)
        return max(1, round(size[0] * s)), max(1, round(size[1] * s))

    @property
    def intensity(self) -> float:
        return 1.0 - self.keep_area

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = image.size
        cw, ch = self.output_size((w, h))
        if self.anchor == "center":
            left, top = (w - cw) // 2, (h - ch) // 2
        else:
            vertical, horizontal = self.anchor.split("_")
            left = 0 if horizontal == "left" else w - cw
            top = 0 if vertical == "top" else h - ch
        return image.crop((left, top, left + cw, top + ch))


@TRANSFORMS.register("resize")
@dataclass(frozen=True)
class Resize(Transform):
    """Resample to a new size, keeping the aspect ratio.

    Parameters
    ----------
    scale : float in (0, 8], optional
        Factor applied to both sides. Give exactly one of ``scale`` and ``long_side``.
    long_side : int >= 1, optional
        Target length of the longer side in pixels, as platforms that cap uploads do.
    filter : {"nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"}
        Pillow resampling filter (antialiased except "nearest").

    Output size: with ``scale``, ``(max(1, round(W * scale)), max(1, round(H * scale)))``; with
    ``long_side``, the longer side becomes ``long_side`` and the shorter
    ``max(1, round(short * long_side / long))``.
    """

    name: ClassVar[str] = "resize"
    models: ClassVar[str] = "a platform or client scaling an upload (thumbnails, size caps)"
    scale: float | None = None
    long_side: int | None = None
    filter: str = "bicubic"

    def __post_init__(self) -> None:
        if (self.scale is None) == (self.long_side is None):
            raise InvalidParameterError(
                "resize needs exactly one of 'scale' (a factor, e.g. scale=0.5) or 'long_side' "
                f"(pixels, e.g. long_side=1080). Got scale={self.scale!r}, "
                f"long_side={self.long_side!r} instead."
            )
        if self.scale is not None:
            v = check_real(
                "scale", self.scale, owner="resize", min_value=0.0, max_value=8.0, min_open=True
            )
            object.__setattr__(self, "scale", v)
        if self.long_side is not None:
            check_int("long_side", self.long_side, owner="resize", min_value=1, max_value=65535)
        check_choice("filter", self.filter, owner="resize", choices=FILTERS)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        if self.scale is not None:
            return max(1, round(w * self.scale)), max(1, round(h * self.scale))
        assert self.long_side is not None  # noqa: S101 - guaranteed by __post_init__
        if w >= h:
            return self.long_side, max(1, round(h * self.long_side / w))
        return max(1, round(w * self.long_side / h)), self.long_side

    @property
    def intensity(self) -> float:
        # Halving or doubling three times is taken as the harshest resize worth modelling.
        if self.scale is None:
            return 0.0  # depends on the input; see output_size
        return min(1.0, abs(math.log2(self.scale)) / 3.0)

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        size = self.output_size(image.size)
        if size == image.size:
            return image.copy()
        return image.resize(size, resample=FILTERS[self.filter])
