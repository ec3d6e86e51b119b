"""Overlays and compositions: text, meme captions, watermarks, stickers, stripes, screenshot
frames, picture-in-picture and collages - the "DISC21-style" edit tier.

Everything is procedural (no image or font assets): text uses Pillow's bundled CC0 font (Aileron,
``ImageFont.load_default(size=...)``, Pillow >= 10.1). Text rendering depends on the FreeType and
HarfBuzz builds in Pillow's wheels, so transforms that draw text are left out of exact golden
digests (``stable_pixels = False``). Positions and colours are drawn from the generator and
recorded; sizes are fractions of the image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from harness.core.params import Intensity, check_int, param
from transforms._util import COLORS, fit_within, from_array, px, to_array
from transforms.base import TRANSFORMS, Transform

POSITIONS = ("random", "center", "top", "bottom")


def _font(height: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(1, height))


def _text_layer(
    size: tuple[int, int],
    text: str,
    height: int,
    xy: tuple[float, float],
    fill: tuple[int, int, int],
    stroke: bool,
) -> tuple[Image.Image, Image.Image]:
    """Text drawn on a transparent layer: (RGB colours, L alpha), ``xy`` = text centre."""
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    stroke_fill = (0, 0, 0) if sum(fill) > 384 else (255, 255, 255)
    draw.text(
        xy,
        text,
        font=_font(height),
        fill=(*fill, 255),
        anchor="mm",
        stroke_width=max(1, height // 12) if stroke else 0,
        stroke_fill=(*stroke_fill, 255),
    )
    return layer.convert("RGB"), layer.getchannel("A")


def _blend(
    image: Image.Image, layer: Image.Image, alpha: Image.Image, opacity: float
) -> Image.Image:
    a = to_array(alpha)[..., None] / 255.0 * opacity
    return from_array(to_array(image) * (1 - a) + to_array(layer) * a)


def _text(default: str) -> Any:
    return param(str, default, max_length=200, doc="the words drawn")


@TRANSFORMS.register("text")
@dataclass(frozen=True)
class Text(Transform):
    """Draw one line of text over the image (outlined, Pillow's bundled CC0 font).

    Parameters
    ----------
    text : str
    height : float in (0, 1]
        Font size as a fraction of the image height.
    position : {"random", "center", "top", "bottom"}
        "random" draws the centre uniformly (recorded).
    opacity : float in [0, 1]
    color : {"black", "white", "gray"}

    Output size: unchanged.
    """

    models: ClassVar[str] = "captions, usernames and handles typed over a photo"
    intensity_meaning: ClassVar[str] = "height / 0.25 x opacity"
    uses_rng: ClassVar[bool] = True
    stable_pixels: ClassVar[bool] = False
    height: float = param(float, 0.07, min=0.0, max=1.0, min_open=True, doc="of the short side")
    text: str = _text("hash-harness")
    position: str = param(str, "random", choices=POSITIONS)
    opacity: float = param(float, 1.0, min=0.0, max=1.0)
    color: str = param(str, "white", choices=COLORS)

    @property
    def intensity(self) -> float:
        return min(1.0, self.height / 0.25) * self.opacity

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
        if self.position != "random":
            return {}
        x, y = rng.uniform(0.2, 0.8, 2)
        return {"center": [round(float(x), 4), round(float(y), 4)]}

    def render(self, image: Image.Image, drawn: Mapping[str, Any]) -> Image.Image:
        w, h = image.size
        fx, fy = {"center": (0.5, 0.5), "top": (0.5, 0.1), "bottom": (0.5, 0.9)}.get(
            self.position, tuple(drawn.get("center", (0.5, 0.5)))
        )
        layer, alpha = _text_layer(
            image.size,
            self.text,
            px(self.height, h),
            (fx * w, fy * h),
            COLORS[self.color],
            stroke=True,
        )
        return _blend(image, layer, alpha, self.opacity)


@TRANSFORMS.register("caption_bar")
@dataclass(frozen=True)
class CaptionBar(Transform):
    """Meme format: a white band with black text added above, below or both.

    Output size: ``(W, H + k * max(1, round(height * H)))``, ``k`` = 2 for "both", else 1.
    """

    models: ClassVar[str] = "meme reposts with top / bottom text"
    intensity_meaning: ClassVar[str] = "k * height / 0.5"
    stable_pixels: ClassVar[bool] = False
    height: float = param(float, 0.2, min=0.0, max=2.0, min_open=True, doc="of the image height")
    position: str = param(str, "top", choices=("top", "bottom", "both"))
    text: str = _text("WHEN THE HASH STILL MATCHES")

    def _bands(self) -> int:
        return 2 if self.position == "both" else 1

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return size[0], size[1] + self._bands() * px(self.height, size[1])

    @property
    def intensity(self) -> float:
        return min(1.0, self._bands() * self.height / 0.5)

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = image.size
        band = px(self.height, h)
        out = Image.new("RGB", self.output_size(image.size), COLORS["white"])
        top = band if self.position in ("top", "both") else 0
        out.paste(image, (0, top))
        draw = ImageDraw.Draw(out)
        font_h = max(1, min(round(band * 0.6), round(1.6 * w / max(1, len(self.text)))))
        for y0 in ([0] if top else []) + ([top + h] if self.position in ("bottom", "both") else []):
            draw.text(
                (w / 2, y0 + band / 2), self.text, font=_font(font_h), fill=(0, 0, 0), anchor="mm"
            )
        return out


def _logo(size: int) -> tuple[Image.Image, Image.Image]:
    """A procedural logo: a ring with a filled centre and a diagonal bar (RGB, alpha)."""
    s = max(1, size)
    alpha = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(alpha)
    d.ellipse((0, 0, s - 1, s - 1), outline=255, width=max(1, s // 10))
    d.ellipse((s * 0.3, s * 0.3, s * 0.7, s * 0.7), fill=255)
    d.line((s * 0.15, s * 0.85, s * 0.85, s * 0.15), fill=255, width=max(1, s // 12))
    return Image.new("RGB", (s, s), COLORS["white"]), alpha


@TRANSFORMS.register("watermark")
@dataclass(frozen=True)
class Watermark(Transform):
    """A semi-transparent text or logo mark in a corner, the centre, or tiled over the image.

    ``scale`` is the mark's height as a fraction of the short side. Output size: unchanged.
    """

    models: ClassVar[str] = "stock-photo and creator watermarks"
    intensity_meaning: ClassVar[str] = "opacity x (1 if tiled else scale / 0.4)"
    stable_pixels: ClassVar[bool] = False
    opacity: float = param(float, 0.4, min=0.0, max=1.0)
    scale: float = param(float, 0.15, min=0.0, max=1.0, min_open=True, doc="of the short side")
    layout: str = param(str, "corner", choices=("corner", "center", "tiled"))
    kind: str = param(str, "text", choices=("text", "logo"))

    @property
    def intensity(self) -> float:
        return self.opacity * (1.0 if self.layout == "tiled" else min(1.0, self.scale / 0.4))

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = image.size
        mark_h = px(self.scale, min(w, h))
        if self.layout == "tiled":
            step_x, step_y = max(1, 3 * mark_h), max(1, 2 * mark_h)
            centres = [
                (x, y) for y in range(step_y // 2, h, step_y) for x in range(step_x // 2, w, step_x)
            ]
        elif self.layout == "center":
            centres = [(w // 2, h // 2)]
        else:
            centres = [(w - mark_h, h - mark_h // 2 - 1)]
        layer = Image.new("RGB", (w, h), COLORS["white"])
        alpha = Image.new("L", (w, h), 0)
        for cx, cy in centres:
            if self.kind == "logo":
                _, mark = _logo(mark_h)
                alpha.paste(mark, (cx - mark_h // 2, cy - mark_h // 2), mark)
            else:
                _, a = _text_layer(
                    (w, h), "(c) hash-harness", mark_h, (cx, cy), COLORS["white"], False
                )
                alpha = Image.fromarray(np.maximum(np.asarray(alpha), np.asarray(a)))
        return _blend(image, layer, alpha, self.opacity)


SHAPES = ("circle", "star", "rounded_rect")


@TRANSFORMS.register("stickers")
@dataclass(frozen=True)
class Stickers(Transform):
    """``count`` opaque procedural stickers (shape, colour and position drawn and recorded).

    ``size`` is each sticker's width as a fraction of the short side. Output size: unchanged.
    """

    models: ClassVar[str] = "emoji and sticker overlays"
    intensity_meaning: ClassVar[str] = "count x size^2 / 0.16 (covered area)"
    uses_rng: ClassVar[bool] = True
    size: float = param(float, 0.15, min=0.0, max=1.0, min_open=True, doc="of the short side")
    count: int = param(int, 1, min=1, max=20)
    shape: str = param(str, "circle", choices=SHAPES)

    @property
    def intensity(self) -> float:
        return min(1.0, self.count * self.size**2 / 0.16)

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
        return {
            "centers": np.round(rng.uniform(0.1, 0.9, (self.count, 2)), 4).tolist(),
            "colors": rng.integers(0, 256, (self.count, 3)).tolist(),
        }

    def render(self, image: Image.Image, drawn: Mapping[str, Any]) -> Image.Image:
        out = image.copy()
        draw = ImageDraw.Draw(out)
        w, h = image.size
        r = px(self.size, min(w, h)) / 2
        for (fx, fy), color in zip(drawn["centers"], drawn["colors"], strict=True):
            cx, cy = fx * w, fy * h
            box = (cx - r, cy - r, cx + r, cy + r)
            fill = tuple(color)
            if self.shape == "circle":
                draw.ellipse(box, fill=fill, outline=(0, 0, 0))
            elif self.shape == "rounded_rect":
                draw.rounded_rectangle(box, radius=r / 3, fill=fill, outline=(0, 0, 0))
            else:
                pts = [
                    (
                        cx + (r if k % 2 == 0 else r / 2.5) * math.sin(k * math.pi / 5),
                        cy - (r if k % 2 == 0 else r / 2.5) * math.cos(k * math.pi / 5),
                    )
                    for k in range(10)
                ]
                draw.polygon(pts, fill=fill, outline=(0, 0, 0))
        return out


@TRANSFORMS.register("stripes")
@dataclass(frozen=True)
class Stripes(Transform):
    """Parallel stripes covering a fraction ``density`` of the image at ``angle`` degrees.

    Stripe width is ``width`` x short side; the period is ``width / density``. Output size:
    unchanged.
    """

    models: ClassVar[str] = "overlaid line patterns and censor bars"
    intensity_meaning: ClassVar[str] = "density x opacity / 0.7"
    density: float = param(float, 0.2, min=0.0, max=1.0, doc="fraction of the area covered")
    angle: float = param(float, 0.0, min=-180, max=180, doc="degrees")
    width: float = param(float, 0.02, min=0.0, max=1.0, min_open=True, doc="of the short side")
    opacity: float = param(float, 1.0, min=0.0, max=1.0)
    color: str = param(str, "white", choices=COLORS)

    @property
    def intensity(self) -> float:
        return min(1.0, self.density * self.opacity / 0.7)

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        if self.density == 0:
            return image.copy()
        w, h = image.size
        stripe = self.width * min(w, h)
        period = stripe / self.density
        y, x = np.mgrid[0:h, 0:w] + 0.5
        t = math.radians(self.angle)
        u = x * math.sin(t) + y * math.cos(t)  # angle 0: horizontal stripes
        mask = (np.mod(u, period) < stripe).astype(np.float64)[..., None] * self.opacity
        color = np.array(COLORS[self.color], dtype=np.float64)
        return from_array(to_array(image) * (1 - mask) + color * mask)


DEVICES = {"phone": (390, 844), "desktop": (1280, 720)}


@TRANSFORMS.register("screenshot_frame")
@dataclass(frozen=True)
class ScreenshotFrame(Transform):
    """The image inside procedural app chrome, as in a screenshot of a post being reshared.

    Phone (390 x 844 logical pixels): status bar, header with avatar and name bar, action bar.
    Desktop (1280 x 720): window title bar, sidebar and header. The image is fitted (bicubic,
    aspect kept) into a centred box of ``area`` of the content width and height. Chrome is
    boxes and circles, no text, so pixels are stable.

    Output size: the device size (phone ``(390, 844)``, desktop ``(1280, 720)``).
    """

    models: ClassVar[str] = "a screenshot of a post reshared as a new image"
    area: float = param(
        float,
        0.6,
        min=0.05,
        max=1.0,
        doc="fraction of the screen filled",
        intensity=Intensity(1, origin=1),
    )
    device: str = param(str, "phone", choices=DEVICES)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return DEVICES[self.device]

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        cw, ch = DEVICES[self.device]
        out = Image.new("RGB", (cw, ch), (250, 250, 250))
        d = ImageDraw.Draw(out)
        if self.device == "phone":
            d.rectangle((0, 0, cw, 44), fill=(20, 20, 20))  # status bar
            d.ellipse((12, 56, 52, 96), fill=(120, 160, 220))  # avatar
            d.rounded_rectangle((64, 66, 220, 86), radius=8, fill=(60, 60, 60))  # name
            d.rectangle((0, ch - 84, cw, ch), fill=(235, 235, 235))  # action bar
            for i in range(4):
                d.ellipse(
                    (30 + 90 * i, ch - 62, 60 + 90 * i, ch - 32), outline=(80, 80, 80), width=3
                )
            content = (0, 108, cw, ch - 96)
        else:
            d.rectangle((0, 0, cw, 36), fill=(45, 45, 48))  # title bar
            for i, c in enumerate([(237, 106, 94), (245, 191, 79), (98, 197, 84)]):
                d.ellipse((12 + 22 * i, 11, 26 + 22 * i, 25), fill=c)
            d.rectangle((0, 36, 220, ch), fill=(240, 240, 243))  # sidebar
            for i in range(8):
                d.rounded_rectangle(
                    (20, 70 + 44 * i, 190, 92 + 44 * i), radius=6, fill=(210, 210, 215)
                )
            d.rectangle((220, 36, cw, 96), fill=(255, 255, 255))  # header
            content = (220, 96, cw, ch)
        bw = (content[2] - content[0]) * self.area
        bh = (content[3] - content[1]) * self.area
        fitted = image.resize(
            fit_within(image.size, (max(1, round(bw)), max(1, round(bh)))), Image.Resampling.BICUBIC
        )
        x = content[0] + (content[2] - content[0] - fitted.width) // 2
        y = content[1] + (content[3] - content[1] - fitted.height) // 2
        out.paste(fitted, (x, y))
        return out


BACKGROUNDS = ("noise", "gradient", "gray")


def _background(size: tuple[int, int], kind: str, seed: int) -> Image.Image:
    """A procedural scene to hide an image in: smooth coloured noise, a gradient, or grey."""
    w, h = size
    if kind == "gray":
        return Image.new("RGB", size, COLORS["gray"])
    if kind == "gradient":
        y, x = np.mgrid[0:h, 0:w]
        fx, fy = x / max(1, w - 1), y / max(1, h - 1)
        return from_array(np.stack([255 * fx, 255 * fy, 255 * (1 - fx) * (1 - fy)], -1))
    small = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(small, "RGB").resize(size, Image.Resampling.BICUBIC)


@TRANSFORMS.register("picture_in_picture")
@dataclass(frozen=True)
class PictureInPicture(Transform):
    """The image, scaled by ``scale``, placed at a random spot of a procedural background.

    The hardest DISC21 category (an image hidden inside an unrelated one). The background is
    procedural (smooth noise, gradient or grey); position and noise seed are recorded.
    Output size: unchanged; the inset is ``max(1, round(W * scale)) x max(1, round(H * scale))``.
    """

    models: ClassVar[str] = "an image embedded in another image or a video frame"
    uses_rng: ClassVar[bool] = True
    scale: float = param(
        float,
        0.6,
        min=0.0,
        max=1.0,
        min_open=True,
        doc="inset side / side",
        intensity=Intensity(0.7, origin=1),
    )
    background: str = param(str, "noise", choices=BACKGROUNDS)

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
        x, y = rng.random(2)
        return {
            "offset": [round(float(x), 4), round(float(y), 4)],
            "noise_seed": int(rng.integers(0, 2**63 - 1)),
        }

    def render(self, image: Image.Image, drawn: Mapping[str, Any]) -> Image.Image:
        w, h = image.size
        out = _background((w, h), self.background, drawn["noise_seed"])
        inset = image.resize(
            (max(1, round(w * self.scale)), max(1, round(h * self.scale))), Image.Resampling.BICUBIC
        )
        fx, fy = drawn["offset"]
        out.paste(inset, (round(fx * (w - inset.width)), round(fy * (h - inset.height))))
        return out


GRIDS = {"1x2": (2, 1), "2x1": (1, 2), "2x2": (2, 2), "3x3": (3, 3)}


@TRANSFORMS.register("collage")
@dataclass(frozen=True)
class Collage(Transform):
    """The image as one tile of a ``grid`` (columns x rows) collage; other tiles are procedural.

    Output size: unchanged. The image is fitted into cell ``slot`` (row-major) of size
    ``(W // columns, H // rows)`` (at least 1 x 1).
    """

    models: ClassVar[str] = "side-by-side and grid posts"
    intensity_meaning: ClassVar[str] = "1 - 1 / cells"
    uses_rng: ClassVar[bool] = True
    grid: str = param(str, "2x2", choices=GRIDS, doc="columns x rows")
    slot: int = param(int, 0, min=0, max=8, doc="cell of the image, row-major")

    def validate(self) -> None:
        cols, rows = GRIDS[self.grid]
        check_int("slot", self.slot, owner=self.name, min_value=0, max_value=cols * rows - 1)

    @property
    def intensity(self) -> float:
        cols, rows = GRIDS[self.grid]
        return 1 - 1 / (cols * rows)

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
        return {"noise_seed": int(rng.integers(0, 2**63 - 1))}

    def render(self, image: Image.Image, drawn: Mapping[str, Any]) -> Image.Image:
        w, h = image.size
        cols, rows = GRIDS[self.grid]
        cell = (max(1, w // cols), max(1, h // rows))
        out = Image.new("RGB", (w, h), COLORS["white"])
        for k in range(cols * rows):
            x, y = (k % cols) * cell[0], (k // cols) * cell[1]
            if k == self.slot:
                tile = image.resize(cell, Image.Resampling.BICUBIC)
            else:
                tile = _background(cell, "noise", drawn["noise_seed"] + k)
            out.paste(tile, (x, y))
        return out
