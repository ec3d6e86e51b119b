"""Codecs: the only module that encodes pixels.

Everything else in the harness keeps images in memory as decoded pixels, so no edit picks up a
hidden re-encode on the way to the hasher (a pitfall of other benchmarks, where "jpeg50" silently
becomes q95 -> q50 -> q95).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from harness._validation import check_choice, check_int
from transforms.base import TRANSFORMS, Transform

#: Pillow's names for chroma subsampling.
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def encode_decode(image: Image.Image, fmt: str, **options: object) -> Image.Image:
    """Encode ``image`` to ``fmt`` in memory and decode it again, fully loaded."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    buf.seek(0)
    with Image.open(buf) as decoded:
        decoded.load()
        return decoded.convert("RGB") if decoded.mode != "RGB" else decoded.copy()


@TRANSFORMS.register("jpeg", "jpg")
@dataclass(frozen=True)
class Jpeg(Transform):
    """Re-encode as baseline JPEG with Pillow's encoder (libjpeg-turbo, integer DCT).

    Parameters
    ----------
    quality : int in [1, 100]
        Encoder quality (IJG scale).
    subsampling : {"4:4:4", "4:2:2", "4:2:0"}
        Chroma subsampling; "4:2:0" is what most platforms write.

    Output size: unchanged.
    """

    name: ClassVar[str] = "jpeg"
    models: ClassVar[str] = "recompression by a platform, messenger or camera app"
    quality: int = 75
    subsampling: str = "4:2:0"

    def __post_init__(self) -> None:
        check_int("quality", self.quality, owner="jpeg", min_value=1, max_value=100)
        check_choice("subsampling", self.subsampling, owner="jpeg", choices=SUBSAMPLING)

    @property
    def intensity(self) -> float:
        return (100 - self.quality) / 99

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return encode_decode(
            image, "JPEG", quality=self.quality, subsampling=SUBSAMPLING[self.subsampling]
        )
