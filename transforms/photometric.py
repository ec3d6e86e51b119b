"""Photometric edits: tone, colour, filters, blur, sharpening, noise and pixel quantisation.

Strengths that depend on image size (blur radii, pixelation blocks, motion length) are fractions
of the short side, so a severity means the same at 300 px and at 4000 px. Noise is drawn from the
generator handed in; its seed is recorded so every output can be replayed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from harness.core.params import Intensity, param
from transforms._util import COLORS, from_array, px, to_array
from transforms.base import TRANSFORMS, Transform


def _factor(default: float, full: float = 0.6) -> Any:
    return param(
        float,
        default,
        min=0.0,
        max=4.0,
        doc="1 leaves the image unchanged",
        intensity=Intensity(full, origin=1),
    )


class _Enhance(Transform):
    """Shared shape of Pillow ``ImageEnhance`` edits: ``factor`` 1 leaves the image unchanged."""

    enhancer: ClassVar[Any] = None
    factor: float

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return type(self).enhancer(image).enhance(self.factor)


@TRANSFORMS.register("brightness")
@dataclass(frozen=True)
class Brightness(_Enhance):
    """Scale brightness by ``factor`` (Pillow ImageEnhance; 1 = unchanged). Size unchanged."""

    models: ClassVar[str] = "exposure edits"
    enhancer: ClassVar[Any] = ImageEnhance.Brightness
    factor: float = _factor(1.2)


@TRANSFORMS.register("contrast")
@dataclass(frozen=True)
class Contrast(_Enhance):
    """Scale contrast about the mean grey by ``factor`` (1 = unchanged). Size unchanged."""

    models: ClassVar[str] = "contrast edits and auto-enhance"
    enhancer: ClassVar[Any] = ImageEnhance.Contrast
    factor: float = _factor(1.2)


@TRANSFORMS.register("saturation")
@dataclass(frozen=True)
class Saturation(_Enhance):
    """Scale colour saturation by ``factor`` (0 = grey, 1 = unchanged). Size unchanged."""

    models: ClassVar[str] = "vivid or muted filters"
    enhancer: ClassVar[Any] = ImageEnhance.Color
    factor: float = _factor(1.5, full=1)


@TRANSFORMS.register("gamma")
@dataclass(frozen=True)
class Gamma(Transform):
    """Tone curve ``out = 255 * (in / 255) ** gamma``. Size unchanged."""

    models: ClassVar[str] = "tone curves, HDR to SDR conversion"
    intensity_meaning: ClassVar[str] = "|log2(gamma)| / log2(2.5)"
    gamma: float = param(
        float,
        1.25,
        min=0.1,
        max=10.0,
        doc="exponent of the tone curve",
        intensity=Intensity(math.log2(2.5), log2=True),
    )

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        lut = [round(255 * (i / 255) ** self.gamma) for i in range(256)]
        return image.point(lut * 3)


@TRANSFORMS.register("hue_shift")
@dataclass(frozen=True)
class HueShift(Transform):
    """Rotate hue by ``degrees`` in HSV (Pillow's 8-bit HSV). Size unchanged."""

    models: ClassVar[str] = "colour filters"
    degrees: float = param(
        float, 30.0, min=-180, max=180, doc="rotation of the hue circle", intensity=Intensity(180)
    )

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        h, s, v = image.convert("HSV").split()
        shift = round(self.degrees / 360 * 256)
        h = h.point([(i + shift) % 256 for i in range(256)])
        return Image.merge("HSV", (h, s, v)).convert("RGB")


@TRANSFORMS.register("grayscale")
@dataclass(frozen=True)
class Grayscale(Transform):
    """Black and white: Rec. 601 luma (Pillow "L") or the plain channel average. Size unchanged."""

    models: ClassVar[str] = "black-and-white filters"
    intensity_meaning: ClassVar[str] = "0.5 (colour removed, structure kept)"
    method: str = param(str, "luma", choices=("luma", "average"))

    @property
    def intensity(self) -> float:
        return 0.5

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        if self.method == "luma":
            return image.convert("L").convert("RGB")
        grey = to_array(image).mean(axis=2, keepdims=True)
        return from_array(np.repeat(grey, 3, axis=2))


PRESETS = ("sepia", "warm", "cool", "fade", "vignette", "autocontrast", "equalize")


@TRANSFORMS.register("filter_preset")
@dataclass(frozen=True)
class FilterPreset(Transform):
    """A one-tap "Instagram-style" filter.

    ``sepia`` (classic sepia matrix), ``warm`` / ``cool`` (red-blue channel gains 1.1 / 0.9),
    ``fade`` (blacks lifted to 40, whites to 244), ``vignette`` (edges darkened to 45% with a
    radial falloff), ``autocontrast`` (1% clipped), ``equalize`` (histogram equalisation).
    Size unchanged.
    """

    models: ClassVar[str] = "one-tap photo filters in social apps"
    intensity_meaning: ClassVar[str] = "0.5 (categorical)"
    preset: str = param(str, "sepia", choices=PRESETS)

    @property
    def intensity(self) -> float:
        return 0.5

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        p = self.preset
        if p == "autocontrast":
            return ImageOps.autocontrast(image, cutoff=1)
        if p == "equalize":
            return ImageOps.equalize(image)
        a = to_array(image)
        if p == "sepia":
            m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
            return from_array(a @ m.T)
        if p in ("warm", "cool"):
            gain = np.array([1.1, 1.0, 0.9]) if p == "warm" else np.array([0.9, 1.0, 1.1])
            return from_array(a * gain)
        if p == "fade":
            return from_array(40 + 0.8 * a)
        h, w = a.shape[:2]
        y, x = np.mgrid[0:h, 0:w]
        r = np.hypot((x + 0.5) / w - 0.5, (y + 0.5) / h - 0.5) / math.hypot(0.5, 0.5)
        return from_array(a * (1 - 0.55 * r[..., None] ** 2))


@TRANSFORMS.register("gaussian_blur")
@dataclass(frozen=True)
class GaussianBlur(Transform):
    """Gaussian blur with radius ``radius`` x short side (Pillow). Size unchanged."""

    models: ClassVar[str] = "defocus, privacy blur, smoothing filters"
    radius: float = param(
        float, 0.002, min=0.0, max=0.1, doc="fraction of the short side", intensity=Intensity(0.01)
    )

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return image.filter(ImageFilter.GaussianBlur(self.radius * min(image.size)))


@TRANSFORMS.register("motion_blur")
@dataclass(frozen=True)
class MotionBlur(Transform):
    """Linear motion blur of ``length`` x short side (rounded up to an odd number of pixels) at
    ``angle`` degrees (line kernel, edges reflected). Size unchanged."""

    models: ClassVar[str] = "camera shake when re-photographing a screen or print"
    length: float = param(
        float, 0.01, min=0.0, max=0.2, doc="fraction of the short side", intensity=Intensity(0.05)
    )
    angle: float = param(float, 0.0, min=-180, max=180, doc="degrees")

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        # An odd kernel keeps the blur centred (an even one also shifts the image half a pixel).
        n = px(self.length, min(image.size)) | 1
        if n == 1:
            return image.copy()
        kernel = np.zeros((n, n))
        t = math.radians(self.angle)
        c = (n - 1) / 2
        for k in np.linspace(-c, c, 4 * n):  # dense samples along the line, then normalise
            kernel[round(c - k * math.sin(t)), round(c + k * math.cos(t))] += 1
        kernel /= kernel.sum()
        from scipy import ndimage  # here, not at import: most runs never blur along a line

        a = to_array(image)
        out = np.stack([ndimage.convolve(a[..., i], kernel, mode="reflect") for i in range(3)], -1)
        return from_array(out)


@TRANSFORMS.register("sharpen")
@dataclass(frozen=True)
class Sharpen(Transform):
    """Unsharp mask (Pillow): ``percent`` strength, ``radius`` in pixels, ``threshold`` levels.
    Size unchanged."""

    models: ClassVar[str] = "platform and app sharpening after downscaling"
    percent: int = param(
        int, 100, min=0, max=1000, doc="unsharp-mask strength", intensity=Intensity(400)
    )
    radius: float = param(float, 1.5, min=0.0, max=10.0, doc="pixels")
    threshold: int = param(int, 3, min=0, max=255, doc="least level difference sharpened")

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return image.filter(ImageFilter.UnsharpMask(self.radius, self.percent, self.threshold))


@TRANSFORMS.register("median")
@dataclass(frozen=True)
class Median(Transform):
    """Median filter over a ``size`` x ``size`` window (Pillow). Size unchanged."""

    models: ClassVar[str] = "beauty and denoise filters"
    size: int = param(
        int, 3, choices=(3, 5, 7), doc="window side in pixels", intensity=Intensity(6, origin=1)
    )

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return image.filter(ImageFilter.MedianFilter(self.size))


def _noise_seed(rng: np.random.Generator) -> dict[str, Any]:
    """Noise fields are too large to record; their seed is recorded instead."""
    return {"noise_seed": int(rng.integers(0, 2**63 - 1))}


@TRANSFORMS.register("gaussian_noise")
@dataclass(frozen=True)
class GaussianNoise(Transform):
    """Additive Gaussian noise of standard deviation ``sigma`` (8-bit levels), seeded.
    Size unchanged."""

    models: ClassVar[str] = "sensor noise, screen re-capture"
    uses_rng: ClassVar[bool] = True
    sigma: float = param(
        float, 5.0, min=0.0, max=128.0, doc="standard deviation in levels", intensity=Intensity(25)
    )

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
        return _noise_seed(rng)

    def render(self, image: Image.Image, drawn: Mapping[str, Any]) -> Image.Image:
        noise = np.random.default_rng(drawn["noise_seed"]).normal(
            0.0, self.sigma, (image.height, image.width, 3)
        )
        return from_array(to_array(image) + noise)


class _SeededPixels(Transform):
    """Shared shape of edits that touch a random fraction ``amount`` of the pixels: the draw is
    one recorded seed (the pixel field itself is too large to record)."""

    uses_rng: ClassVar[bool] = True
    amount: float

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
        return _noise_seed(rng)


@TRANSFORMS.register("salt_pepper")
@dataclass(frozen=True)
class SaltPepper(_SeededPixels):
    """Set a fraction ``amount`` of pixels to black or white at random, seeded. Size unchanged."""

    models: ClassVar[str] = "transmission artefacts, dust on a scanned print"
    amount: float = param(
        float, 0.01, min=0.0, max=1.0, doc="fraction of the pixels", intensity=Intensity(0.05)
    )

    def render(self, image: Image.Image, drawn: Mapping[str, Any]) -> Image.Image:
        g = np.random.default_rng(drawn["noise_seed"])
        a = np.asarray(image).copy()
        hit = g.random(a.shape[:2]) < self.amount
        a[hit] = np.where(g.random(int(hit.sum())) < 0.5, 0, 255)[:, None]
        return Image.fromarray(a, "RGB")


@TRANSFORMS.register("shuffle_pixels")
@dataclass(frozen=True)
class ShufflePixels(_SeededPixels):
    """Permute a fraction ``amount`` of pixel positions among themselves, seeded. Size unchanged."""

    models: ClassVar[str] = "light adversarial pixel noise (an evasion probe, not a benign edit)"
    amount: float = param(
        float, 0.01, min=0.0, max=1.0, doc="fraction of the pixels", intensity=Intensity(0.1)
    )

    def render(self, image: Image.Image, drawn: Mapping[str, Any]) -> Image.Image:
        g = np.random.default_rng(drawn["noise_seed"])
        flat = np.asarray(image).reshape(-1, 3).copy()
        chosen = np.flatnonzero(g.random(len(flat)) < self.amount)
        flat[chosen] = flat[g.permutation(chosen)]
        return Image.fromarray(flat.reshape(image.height, image.width, 3), "RGB")


@TRANSFORMS.register("pixelize")
@dataclass(frozen=True)
class Pixelize(Transform):
    """True pixelation: box-average into blocks of ``block`` x short side, enlarge with nearest.

    (AugLy's ``pixelization`` relies on Pillow's default filter and now blurs instead.)
    Output size: unchanged; blocks are ``max(1, round(block * short side))`` pixels.
    """

    models: ClassVar[str] = "censor pixelation, low-resolution sources"
    block: float = param(
        float,
        1 / 64,
        min=0.0,
        max=0.5,
        min_open=True,
        doc="of the short side",
        intensity=Intensity(1 / 16),
    )

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        b = px(self.block, min(image.size))
        small = (max(1, round(image.width / b)), max(1, round(image.height / b)))
        return image.resize(small, Image.Resampling.BOX).resize(
            image.size, Image.Resampling.NEAREST
        )


@TRANSFORMS.register("posterize")
@dataclass(frozen=True)
class Posterize(Transform):
    """Keep the ``bits`` most significant bits of each channel (Pillow). Size unchanged."""

    models: ClassVar[str] = "heavy palette reduction, poster effects"
    bits: int = param(
        int, 4, min=1, max=8, doc="bits kept per channel", intensity=Intensity(6, origin=8)
    )

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return ImageOps.posterize(image, self.bits)


@TRANSFORMS.register("opacity")
@dataclass(frozen=True)
class Opacity(Transform):
    """Blend the image over a plain ``background`` at opacity ``alpha`` (1 = unchanged).
    Size unchanged."""

    models: ClassVar[str] = "faded reposts and semi-transparent layers"
    alpha: float = param(
        float,
        0.8,
        min=0.0,
        max=1.0,
        doc="opacity of the image",
        intensity=Intensity(0.65, origin=1),
    )
    background: str = param(str, "white", choices=COLORS)

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        bg = np.array(COLORS[self.background], dtype=np.float64)
        return from_array(to_array(image) * self.alpha + bg * (1 - self.alpha))
