"""Codecs: the only module that encodes pixels.

Everything else in the harness keeps images in memory as decoded pixels, so no edit picks up a
hidden re-encode on the way to the hasher (a pitfall of other benchmarks, where "jpeg50" silently
becomes q95 -> q50 -> q95). The few other encodings - lossless PNG for vendors and external
hashers, report thumbnails - live here too, so there is one place to audit. Encoders are Pillow's:
libjpeg-turbo (integer DCT), libwebp, libavif, zlib; their versions are recorded in every
result's environment.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image, features

from harness.core.errors import InvalidParameterError
from harness.core.params import Intensity, param
from transforms._util import Size
from transforms.base import TRANSFORMS, Transform

#: Pillow's names for chroma subsampling.
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
DITHER = {"none": Image.Dither.NONE, "floyd_steinberg": Image.Dither.FLOYDSTEINBERG}


def _encode(image: Image.Image, fmt: str, **options: object) -> io.BytesIO:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    buf.seek(0)
    return buf


def _decode(buf: io.BytesIO, draft: Size | None = None) -> Image.Image:
    with Image.open(buf) as decoded:
        if draft is not None:
            decoded.draft("RGB", draft)
        decoded.load()
        return decoded.convert("RGB") if decoded.mode != "RGB" else decoded.copy()


def png_bytes(image: Image.Image) -> bytes:
    """Lossless PNG file bytes (for handing exact pixels to a vendor or a file).

    Pixels only: the source file's metadata that Pillow would carry over (ICC profile,
    transparency key, text) is dropped, so a file handed to a vendor says nothing about where
    its pixels came from, and a hasher sees exactly the pixels the harness evaluates.
    """
    bare = image.copy()
    bare.info.clear()
    return _encode(bare, "PNG").getvalue()


def thumbnail_jpeg(image: Image.Image, side: int = 160) -> bytes:
    """A small JPEG (q85) for reports: display only, never hashed."""
    small = image.copy()
    small.thumbnail((side, side))
    return _encode(small.convert("RGB"), "JPEG", quality=85).getvalue()


def encode_decode(image: Image.Image, fmt: str, **options: object) -> Image.Image:
    """Encode ``image`` to ``fmt`` in memory and decode it again, fully loaded."""
    return _decode(_encode(image, fmt, **options))


def _jpeg(image: Image.Image, quality: int, subsampling: str = "4:2:0") -> Image.Image:
    return encode_decode(image, "JPEG", quality=quality, subsampling=SUBSAMPLING[subsampling])


def _quality(default: int, lo: int = 1, intensity: Intensity | None = None) -> Any:
    return param(int, default, min=lo, max=100, doc="encoder quality", intensity=intensity)


@TRANSFORMS.register("jpeg", "jpg")
@dataclass(frozen=True)
class Jpeg(Transform):
    """Re-encode as JPEG with Pillow's encoder (libjpeg-turbo, integer DCT).

    Parameters
    ----------
    quality : int in [1, 100]
        Encoder quality (IJG scale).
    subsampling : {"4:4:4", "4:2:2", "4:2:0"}
        Chroma subsampling; "4:2:0" is what most platforms write.
    progressive : bool
        Progressive scan order. A control: it changes the file, not the decoded pixels.

    Output size: unchanged.
    """

    models: ClassVar[str] = "recompression by a platform, messenger or camera app"
    quality: int = _quality(75, intensity=Intensity(99, origin=100))
    subsampling: str = param(str, "4:2:0", choices=SUBSAMPLING, doc="chroma subsampling")
    progressive: bool = param(bool, False, doc="progressive scan order")

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return encode_decode(
            image,
            "JPEG",
            quality=self.quality,
            subsampling=SUBSAMPLING[self.subsampling],
            progressive=self.progressive,
        )


@TRANSFORMS.register("jpeg_generations")
@dataclass(frozen=True)
class JpegGenerations(Transform):
    """``n`` successive JPEG re-encodes, optionally shifting the 8x8 grid between them.

    Parameters
    ----------
    n : int in [1, 50]
        Generations (download -> re-upload cycles).
    quality : int in [1, 100]
    jitter : int in [0, 2]
        Pixels trimmed from a randomly chosen side, horizontally and vertically, before each
        re-encode. Aligned re-encodes converge after a few generations; misaligned ones keep
        degrading, as when every repost crops or rescales slightly.

    Output size: each generation trims ``jitter`` pixels from a side that is longer than
    ``jitter``: ``W' = W - jitter`` if ``W > jitter`` else ``W`` (likewise ``H``), ``n`` times.
    """

    models: ClassVar[str] = "memes and forwards re-encoded on every download and re-upload"
    intensity_meaning: ClassVar[str] = "n / 50 scaled by (100 - quality) / 99, plus jitter"
    uses_rng: ClassVar[bool] = True
    n: int = param(int, 5, min=1, max=50, doc="generations")
    quality: int = _quality(75)
    jitter: int = param(int, 0, min=0, max=2, doc="pixels trimmed before each re-encode")

    def output_size(self, size: Size) -> Size:
        w, h = size
        for _ in range(self.n):
            w = w - self.jitter if w > self.jitter else w
            h = h - self.jitter if h > self.jitter else h
        return w, h

    @property
    def intensity(self) -> float:
        return min(
            1.0, (self.n / 50) ** 0.5 * (0.25 + (100 - self.quality) / 99) + 0.1 * self.jitter
        )

    def draw(self, size: Size, rng: np.random.Generator) -> dict[str, Any]:
        if not self.jitter:
            return {}
        return {
            "trim_left": rng.integers(0, 2, self.n).tolist(),
            "trim_top": rng.integers(0, 2, self.n).tolist(),
        }

    def render(self, image: Image.Image, drawn: Mapping[str, Any]) -> Image.Image:
        j = self.jitter
        for g in range(self.n):
            if j:
                w, h = image.size
                dx = j if w > j else 0
                dy = j if h > j else 0
                left = dx if drawn["trim_left"][g] else 0
                top = dy if drawn["trim_top"][g] else 0
                image = image.crop((left, top, left + w - dx, top + h - dy))
            image = _jpeg(image, self.quality)
        return image


@TRANSFORMS.register("jpeg_keep")
@dataclass(frozen=True)
class JpegKeep(Transform):
    """Re-save a JPEG with its own quantisation tables (Pillow's ``quality="keep"``).

    The input is first written as a JPEG at ``source_quality`` (the file as uploaded), then that
    decoded file is saved again keeping its tables, as apps do that "preserve quality".

    Output size: unchanged.
    """

    models: ClassVar[str] = "an app editing and re-saving a JPEG at its original quality"
    source_quality: int = param(
        int,
        85,
        min=1,
        max=100,
        doc="quality of the uploaded file",
        intensity=Intensity(99, origin=100),
    )

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        buf = _encode(image, "JPEG", quality=self.source_quality)
        with Image.open(buf) as first:
            first.load()
            again = _encode(first, "JPEG", quality="keep")
        return _decode(again)


@TRANSFORMS.register("webp")
@dataclass(frozen=True)
class Webp(Transform):
    """Re-encode as WebP (libwebp, encoder method 4 pinned).

    Output size: unchanged.
    """

    models: ClassVar[str] = "CDN delivery or a WebP upload re-encoded by the platform"
    intensity_meaning: ClassVar[str] = "(100 - quality) / 100; 0 when lossless"
    quality: int = _quality(80, lo=0)
    lossless: bool = param(bool, False)

    @property
    def intensity(self) -> float:
        return 0.0 if self.lossless else (100 - self.quality) / 100

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return encode_decode(image, "WEBP", quality=self.quality, lossless=self.lossless, method=4)


@TRANSFORMS.register("avif")
@dataclass(frozen=True)
class Avif(Transform):
    """Re-encode as AVIF (libavif in Pillow's wheels; refused when Pillow lacks AVIF).

    Output pixels change between libavif versions (1.3 -> 1.4 did), so AVIF is left out of the
    exact golden digests; the environment records the libavif version.

    Output size: unchanged.
    """

    models: ClassVar[str] = "modern CDN delivery (AVIF)"
    stable_pixels: ClassVar[bool] = False
    quality: int = _quality(60, lo=0, intensity=Intensity(100, origin=100))
    speed: int = param(int, 6, min=0, max=10, doc="encoder speed (10 fastest)")

    def validate(self) -> None:
        if not features.check("avif"):
            raise InvalidParameterError(
                "avif needs a Pillow built with AVIF support (Pillow >= 11.3 wheels have it); "
                "this Pillow has none. Use webp or jpeg instead."
            )

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return encode_decode(image, "AVIF", quality=self.quality, speed=self.speed)


@TRANSFORMS.register("png")
@dataclass(frozen=True)
class Png(Transform):
    """PNG round trip: lossless, so a control (any change is a harness bug).

    Output size: unchanged.
    """

    models: ClassVar[str] = "a lossless re-save (screenshot tools, PNG uploads)"
    intensity_meaning: ClassVar[str] = "always 0 (lossless)"

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return encode_decode(image, "PNG")


@TRANSFORMS.register("palette")
@dataclass(frozen=True)
class Palette(Transform):
    """Reduce to an adaptive palette of ``colors`` (median cut) and save as PNG8.

    Output size: unchanged.
    """

    models: ClassVar[str] = "PNG8 and GIF conversions (Twitter keeps PNG8 as is)"
    intensity_meaning: ClassVar[str] = "(8 - log2(colors)) / 7"
    colors: int = param(int, 256, min=2, max=256, doc="palette size")
    dither: str = param(str, "none", choices=DITHER)

    @property
    def intensity(self) -> float:
        return (8 - np.log2(self.colors)) / 7

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        quantized = image.quantize(
            self.colors, method=Image.Quantize.MEDIANCUT, dither=DITHER[self.dither]
        )
        return encode_decode(quantized, "PNG")


@TRANSFORMS.register("strip_metadata")
@dataclass(frozen=True)
class StripMetadata(Transform):
    """Drop EXIF/XMP/ICC metadata. Pixels are already decoded here, so nothing changes: a
    control that lets a chain describe the real pipeline step by step.

    Output size: unchanged.
    """

    models: ClassVar[str] = "platforms removing EXIF, XMP and ICC data on upload"
    intensity_meaning: ClassVar[str] = "always 0 (no pixel change)"

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return image.copy()


@TRANSFORMS.register("draft_decode")
@dataclass(frozen=True)
class DraftDecode(Transform):
    """Decode a JPEG with libjpeg's DCT-domain downscaling (Pillow ``draft``), as thumbnailers do.

    The input is written as a JPEG at ``quality`` and read back at ``1 / reduce`` scale; a
    decode-side variant: the same file, read faster and differently.

    Output size: ``(ceil(W / s), ceil(H / s))`` where ``s`` is the largest of 1, 2, 4, 8 not
    above ``min(reduce, W // max(1, W // reduce), H // max(1, H // reduce))`` - libjpeg never
    decodes below one pixel, so tiny images are reduced less.
    """

    models: ClassVar[str] = "a thumbnailer or hasher reading a JPEG with DCT scaling"
    reduce: int = param(
        int,
        2,
        choices=(1, 2, 4, 8),
        doc="DCT scaling denominator",
        intensity=Intensity(3, log2=True),
    )
    quality: int = _quality(95)

    def _request(self, size: Size) -> Size:
        return max(1, size[0] // self.reduce), max(1, size[1] // self.reduce)

    def output_size(self, size: Size) -> Size:
        req = self._request(size)
        limit = min(self.reduce, size[0] // req[0], size[1] // req[1])
        s = max(f for f in (1, 2, 4, 8) if f <= limit)
        return -(-size[0] // s), -(-size[1] // s)

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        buf = _encode(image, "JPEG", quality=self.quality)
        return _decode(buf, draft=self._request(image.size))
