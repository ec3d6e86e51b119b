"""Decode-side variants: the same file read differently, not an edit.

These model how the hasher (or the platform) *reads* an upload: whether the EXIF orientation tag
is applied, what a transparent area is composited on, and which mode-conversion path a decoder
takes. They are the usual source of "same file, different hash" bugs and of CI drift, so sweep them
separately from edits. JPEG draft decoding lives in :mod:`transforms.codec` (it encodes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image, ImageDraw

from harness.core.params import Intensity, param
from transforms._util import COLORS, from_array, px
from transforms.base import TRANSFORMS, Transform

#: The operation a viewer applies for each EXIF orientation (as ``ImageOps.exif_transpose``).
EXIF_DISPLAY = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: Its inverse: how the camera stored the pixels of the picture we see.
EXIF_STORED = {
    **EXIF_DISPLAY,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


@TRANSFORMS.register("exif_ignored")
@dataclass(frozen=True)
class ExifIgnored(Transform):
    """What a decoder that ignores EXIF orientation ``tag`` sees of the picture.

    Phones store pixels in sensor order with a tag (6 = "rotate 90 clockwise to view");
    platforms apply the tag and drop it, while imagehash and many hashers read raw pixels.
    This returns the stored pixels, so the pair (displayed, stored) is the real mismatch.

    Output size: ``(H, W)`` for tags 5 to 8 (a quarter turn or transpose), else ``(W, H)``.
    """

    models: ClassVar[str] = "a phone photo whose orientation tag the hasher does not apply"
    intensity_meaning: ClassVar[str] = "1 (a flip or quarter turn)"
    tag: int = param(int, 6, choices=tuple(EXIF_STORED), doc="EXIF orientation")

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return (size[1], size[0]) if self.tag >= 5 else size

    @property
    def intensity(self) -> float:
        return 1.0

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return image.transpose(EXIF_STORED[self.tag])


@TRANSFORMS.register("alpha_background")
@dataclass(frozen=True)
class AlphaBackground(Transform):
    """An upload with transparent rounded corners (``corner`` x short side), flattened onto
    ``background``: decoders disagree on white, black or the raw (often black) colour.

    Output size: unchanged.
    """

    models: ClassVar[str] = "PNG/WebP with transparency flattened differently (white vs black)"
    background: str = param(str, "black", choices=COLORS)
    corner: float = param(
        float, 0.1, min=0.0, max=0.5, doc="fraction of the short side", intensity=Intensity(0.25)
    )

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = image.size
        mask = Image.new("L", (w, h), 0)
        radius = px(self.corner, min(w, h), minimum=0)
        ImageDraw.Draw(mask).rounded_rectangle((0, 0, w - 1, h - 1), radius=radius, fill=255)
        out = Image.new("RGB", (w, h), COLORS[self.background])
        out.paste(image, (0, 0), mask)
        return out


MODE_PATHS = ("i16_clip", "i16_shift", "palette_web", "la")


@TRANSFORMS.register("mode_path")
@dataclass(frozen=True)
class ModePath(Transform):
    """Read the picture through another pixel-mode conversion, as decoders of such files do.

    ``i16_clip``: a 16-bit greyscale file read with Pillow's ``convert("L")``, which clips
    every value above 255 (nearly everything turns white - a real decoding bug);
    ``i16_shift``: the same file scaled correctly (``>> 8``); ``palette_web``: the 216-colour web
    palette with Floyd-Steinberg dithering (GIF-like); ``la``: greyscale with alpha.

    Output size: unchanged.
    """

    models: ClassVar[str] = "16-bit, palette and grey-alpha files decoded through different paths"
    intensity_meaning: ClassVar[str] = "1 for i16_clip, 0.5 for the rest"
    path: str = param(str, "palette_web", choices=MODE_PATHS)

    @property
    def intensity(self) -> float:
        return 1.0 if self.path == "i16_clip" else 0.5

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        if self.path == "palette_web":
            return image.convert("P", palette=Image.Palette.WEB).convert("RGB")
        if self.path == "la":
            return image.convert("LA").convert("RGB")
        sixteen = np.asarray(image.convert("L"), dtype=np.uint16) * 257
        if self.path == "i16_shift":
            return from_array(np.repeat((sixteen >> 8)[..., None], 3, axis=2).astype(np.float64))
        return Image.fromarray(sixteen).convert("L").convert("RGB")
