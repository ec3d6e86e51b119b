"""Geometric edits: crops, pads, rotations, flips, warps and every way of resampling.

Sizes are fractions of the image wherever possible, so a severity means the same at 300 px and at
4000 px. Every transform documents its output size in :meth:`output_size`, and the tests check it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from harness.core.errors import InvalidParameterError
from harness.core.params import Intensity, param
from transforms._util import COLORS, FILLS, canvas, from_array, mean_color
from transforms.base import TRANSFORMS, Transform

#: Largest output any transform may make: Pillow's decompression-bomb limit (pixels), and the
#: longest side a square output can have within it.
MAX_PIXELS = int(Image.MAX_IMAGE_PIXELS or 89_478_485)
MAX_SIDE = math.isqrt(MAX_PIXELS)

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

    models: ClassVar[str] = "the same file uploaded again"
    intensity_meaning: ClassVar[str] = "always 0 (no change)"

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

    models: ClassVar[str] = "a user trimming the borders or cutting out part of a photo"
    keep_area: float = param(
        float,
        0.81,
        min=0.0,
        max=1.0,
        min_open=True,
        doc="area kept",
        intensity=Intensity(1, origin=1),
    )
    anchor: str = param(str, "center", choices=ANCHORS, doc="where the kept window sits")

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        s = math.sqrt(self.keep_area)
        return max(1, round(size[0] * s)), max(1, round(size[1] * s))

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
    filter : {"nearest", "box", "bilinear", "hamming", "bicubic", "lanczos", "mks2013", "mks2021"}
        Pillow resampling filter (antialiased except "nearest"; MKS needs Pillow >= 13).
    upscale : bool
        False: leave images that are already small enough alone, as platforms with a size cap
        do (they never enlarge an upload).

    Output size: with ``scale``, ``(max(1, round(W * scale)), max(1, round(H * scale)))``; with
    ``long_side``, the longer side becomes ``long_side`` and the shorter
    ``max(1, round(short * long_side / long))``. With ``upscale=False`` an output larger than
    the input is replaced by the input size.
    """

    models: ClassVar[str] = "a platform or client scaling an upload (thumbnails, size caps)"
    intensity_meaning: ClassVar[str] = "|log2(scale)| / 3; 0 with long_side (depends on the input)"
    scale: float | None = param(
        float,
        None,
        min=0.0,
        max=8.0,
        min_open=True,
        doc="factor",
        intensity=Intensity(3, log2=True),
    )
    # A square output must stay within the pixel limit every decoder enforces.
    long_side: int | None = param(int, None, min=1, max=MAX_SIDE, doc="pixels")
    filter: str = param(str, "bicubic", choices=FILTERS, doc="Pillow resampling filter")
    upscale: bool = param(bool, True, doc="False: never enlarge")

    def validate(self) -> None:
        if (self.scale is None) == (self.long_side is None):
            raise InvalidParameterError(
                "resize needs exactly one of 'scale' (a factor, e.g. scale=0.5) or 'long_side' "
                f"(pixels, e.g. long_side=1080). Got scale={self.scale!r}, "
                f"long_side={self.long_side!r} instead."
            )

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        out = self._scaled(size)
        if not self.upscale and out[0] * out[1] > size[0] * size[1]:
            return size
        return out

    def _scaled(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        if self.scale is not None:
            return max(1, round(w * self.scale)), max(1, round(h * self.scale))
        assert self.long_side is not None  # noqa: S101 - guaranteed by validate
        if w >= h:
            return self.long_side, max(1, round(h * self.long_side / w))
        return max(1, round(w * self.long_side / h)), self.long_side

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        size = self.output_size(image.size)
        if size == image.size:
            return image.copy()
        if size[0] * size[1] > MAX_PIXELS:  # scale=8 on a large image: refuse, do not allocate
            raise InvalidParameterError(
                f"{self.id} would make a {size[0]}x{size[1]} image, over the limit of "
                f"{MAX_PIXELS:,} pixels."
            )
        return image.resize(size, resample=FILTERS[self.filter])


if hasattr(Image.Resampling, "MKS2021"):  # Magic Kernel Sharp, Pillow >= 13
    FILTERS["mks2013"] = Image.Resampling.MKS2013
    FILTERS["mks2021"] = Image.Resampling.MKS2021


def _aspect() -> Any:
    return param(float, 1.0, min=0.05, max=20.0, doc="width / height")


@TRANSFORMS.register("crop_to_aspect")
@dataclass(frozen=True)
class CropToAspect(Transform):
    """Crop the largest centred window of width / height ``aspect`` (1.0 square, 0.8 = 4:5).

    ``mode`` "exact" always crops to ``aspect``; "at_most" only crops images wider than
    ``aspect``, "at_least" only images narrower (Instagram keeps 4:5 .. 1.91:1 and crops the rest).

    Output size: if ``W / H > aspect`` (and mode is not "at_least"),
    ``(max(1, round(H * aspect)), H)``; if ``W / H < aspect`` (and mode is not "at_most"),
    ``(W, max(1, round(W / aspect)))``; otherwise unchanged.
    """

    models: ClassVar[str] = "platform aspect limits (Instagram 4:5..1.91:1) and square avatars"
    intensity_meaning: ClassVar[str] = "0 (depends on the input's aspect; see output_size)"
    aspect: float = _aspect()
    mode: str = param(str, "exact", choices=("exact", "at_most", "at_least"))

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        if w / h > self.aspect and self.mode != "at_least":
            return min(w, max(1, round(h * self.aspect))), h
        if w / h < self.aspect and self.mode != "at_most":
            return w, min(h, max(1, round(w / self.aspect)))
        return size

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = image.size
        cw, ch = self.output_size((w, h))
        left, top = (w - cw) // 2, (h - ch) // 2
        return image.crop((left, top, left + cw, top + ch))


@TRANSFORMS.register("pad")
@dataclass(frozen=True)
class Pad(Transform):
    """Add a border of ``fraction`` of each side's length on every side.

    Parameters
    ----------
    fraction : float in [0, 1]
        Border per side as a fraction of that side (0.1 on a 400 x 300 image: 40 px left and
        right, 30 px top and bottom).
    fill : {"black", "white", "gray", "mean", "blur"}
        Border colour; "mean" is the image's mean colour, "blur" a blurred, stretched copy.
    sides : {"all", "horizontal", "vertical"}
        Pad every side, only left and right, or only top and bottom.

    Output size: ``(W + 2 * round(fraction * W), H + 2 * round(fraction * H))``, with the
    unpadded direction's term left out.
    """

    models: ClassVar[str] = "borders and frames added by editors or reposting apps"
    intensity_meaning: ClassVar[str] = "fraction / 0.4 (a 40% border per side is the harshest)"
    fraction: float = param(
        float, 0.05, min=0.0, max=1.0, doc="border per side / side", intensity=Intensity(0.4)
    )
    fill: str = param(str, "black", choices=FILLS)
    sides: str = param(str, "all", choices=("all", "horizontal", "vertical"))

    def _margins(self, size: tuple[int, int]) -> tuple[int, int]:
        dx = round(self.fraction * size[0]) if self.sides != "vertical" else 0
        dy = round(self.fraction * size[1]) if self.sides != "horizontal" else 0
        return dx, dy

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        dx, dy = self._margins(size)
        return size[0] + 2 * dx, size[1] + 2 * dy

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        out = canvas(image, self.output_size(image.size), self.fill)
        out.paste(image, self._margins(image.size))
        return out


@TRANSFORMS.register("pad_to_aspect")
@dataclass(frozen=True)
class PadToAspect(Transform):
    """Letterbox to width / height ``aspect`` (0.5625 = 9:16 story), image centred.

    Output size: if ``W / H < aspect``, ``(max(W, round(H * aspect)), H)``, else
    ``(W, max(H, round(W / aspect)))``.
    """

    models: ClassVar[str] = "letterboxing and story backgrounds (blurred copy behind the photo)"
    intensity_meaning: ClassVar[str] = "0 (depends on the input's aspect; see output_size)"
    aspect: float = _aspect()
    fill: str = param(str, "black", choices=FILLS)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        if w / h < self.aspect:
            return max(w, round(h * self.aspect)), h
        return w, max(h, round(w / self.aspect))

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        size = self.output_size(image.size)
        out = canvas(image, size, self.fill)
        out.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
        return out


def _affine(
    image: Image.Image, size: tuple[int, int], forward: np.ndarray, fill: tuple[int, int, int]
) -> Image.Image:
    """Warp by the 2x2 linear map ``forward`` about the centres of input and output (bicubic)."""
    inv = np.linalg.inv(forward)
    ocx, ocy = size[0] / 2, size[1] / 2
    icx, icy = image.width / 2, image.height / 2
    a, b, d, e = inv[0, 0], inv[0, 1], inv[1, 0], inv[1, 1]
    coeffs = (a, b, icx - a * ocx - b * ocy, d, e, icy - d * ocx - e * ocy)
    return image.transform(
        size, Image.Transform.AFFINE, coeffs, Image.Resampling.BICUBIC, fillcolor=fill
    )


@TRANSFORMS.register("rotate")
@dataclass(frozen=True)
class Rotate(Transform):
    """Rotate by ``degrees`` counter-clockwise (bicubic), as a phone editor straightens a photo.

    Parameters
    ----------
    degrees : float in [-180, 180]
    mode : {"expand", "crop", "same"}
        "expand": the canvas grows to hold the whole rotated image, corners filled with
        ``fill``; "crop": keep the largest centred window of the original aspect that has no
        fill (what "straighten" tools do); "same": keep the canvas, cutting the corners off and
        filling the uncovered ones (what augmentation libraries do).
    fill : {"black", "white", "gray", "mean"}

    Output size, with ``c = |cos|``, ``s = |sin|``: "expand" ``(max(1, round(W c + H s)),
    max(1, round(W s + H c)))``; "crop" ``(max(1, floor(k W)), max(1, floor(k H)))`` with
    ``k = min(W / (W c + H s), H / (W s + H c))``; "same" ``(W, H)``.
    """

    models: ClassVar[str] = "straightening or a tilted re-photograph"
    degrees: float = param(
        float, 5.0, min=-180, max=180, doc="counter-clockwise", intensity=Intensity(45)
    )
    mode: str = param(str, "expand", choices=("expand", "crop", "same"))
    fill: str = param(str, "black", choices=(*COLORS, "mean"))

    def _cs(self) -> tuple[float, float]:
        t = math.radians(self.degrees)
        return abs(round(math.cos(t), 12)), abs(round(math.sin(t), 12))

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        c, s = self._cs()
        if self.mode == "same":
            return size
        if self.mode == "expand":
            return max(1, round(w * c + h * s)), max(1, round(w * s + h * c))
        k = min(w / (w * c + h * s), h / (w * s + h * c))
        return max(1, math.floor(k * w + 1e-9)), max(1, math.floor(k * h + 1e-9))

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        t = math.radians(self.degrees)
        # Counter-clockwise on screen (y grows downwards), as Pillow's rotate.
        forward = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
        fill = mean_color(image) if self.fill == "mean" else COLORS[self.fill]
        return _affine(image, self.output_size(image.size), forward, fill)


@TRANSFORMS.register("rotate90")
@dataclass(frozen=True)
class Rotate90(Transform):
    """Rotate by ``k`` quarter turns counter-clockwise (lossless).

    Output size: ``(H, W)`` for odd ``k``, else ``(W, H)``.
    """

    models: ClassVar[str] = "sideways uploads and EXIF orientation mishandled"
    intensity_meaning: ClassVar[str] = "1 (a quarter turn scrambles global hashes)"
    k: int = param(int, 1, choices=(1, 2, 3), doc="quarter turns counter-clockwise")

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return (size[1], size[0]) if self.k % 2 else size

    @property
    def intensity(self) -> float:
        return 1.0

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        method = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180}
        return image.transpose(method.get(self.k, Image.Transpose.ROTATE_270))


@TRANSFORMS.register("hflip")
@dataclass(frozen=True)
class HFlip(Transform):
    """Mirror left-right. Output size: unchanged."""

    models: ClassVar[str] = "mirrored selfies and reposts"
    intensity_meaning: ClassVar[str] = "1 (mirroring sends DCT hashes to chance)"

    @property
    def intensity(self) -> float:
        return 1.0

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


@TRANSFORMS.register("vflip")
@dataclass(frozen=True)
class VFlip(Transform):
    """Mirror top-bottom. Output size: unchanged."""

    models: ClassVar[str] = "upside-down reposts"
    intensity_meaning: ClassVar[str] = "1"

    @property
    def intensity(self) -> float:
        return 1.0

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)


@TRANSFORMS.register("perspective")
@dataclass(frozen=True)
class Perspective(Transform):
    """Random perspective: each corner moves by up to ``max_shift`` of the short side (seeded).

    Models photographing a screen or a print. The four corner offsets are drawn from the
    generator and recorded. Output size: unchanged (uncovered areas black).
    """

    models: ClassVar[str] = "a photo of a screen or a print"
    uses_rng: ClassVar[bool] = True
    max_shift: float = param(
        float, 0.05, min=0, max=0.3, doc="of the short side", intensity=Intensity(0.15)
    )

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
        shift = self.max_shift * min(size)
        return {"corner_shifts_px": np.round(rng.uniform(-shift, shift, (4, 2)), 3).tolist()}

    def render(self, image: Image.Image, drawn: Mapping[str, Any]) -> Image.Image:
        w, h = image.size
        out_corners = np.array([(0, 0), (w, 0), (w, h), (0, h)], dtype=float)
        in_corners = out_corners + np.array(drawn["corner_shifts_px"])
        # Solve for the 8 coefficients mapping output (x, y) to input (u, v).
        rows, rhs = [], []
        for (x, y), (u, v) in zip(out_corners, in_corners, strict=True):
            rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
            rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
            rhs += [u, v]
        coeffs = np.linalg.solve(np.array(rows), np.array(rhs))
        return image.transform(
            (w, h), Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BICUBIC
        )


@TRANSFORMS.register("translate")
@dataclass(frozen=True)
class Translate(Transform):
    """Shift the content by ``dx`` x W and ``dy`` x H (positive: right / down), filling the
    uncovered strip with ``fill``. Output size: unchanged.
    """

    models: ClassVar[str] = "a re-framed or slightly offset copy (misaligned screenshot, re-crop)"
    dx: float = param(
        float,
        0.02,
        min=-1.0,
        max=1.0,
        doc="of the width, positive: right",
        intensity=Intensity(0.2),
    )
    dy: float = param(
        float, 0.0, min=-1.0, max=1.0, doc="of the height, positive: down", intensity=Intensity(0.2)
    )
    fill: str = param(str, "black", choices=(*COLORS, "mean"))

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        fill = mean_color(image) if self.fill == "mean" else COLORS[self.fill]
        out = Image.new("RGB", image.size, fill)
        out.paste(image, (round(self.dx * image.width), round(self.dy * image.height)))
        return out


@TRANSFORMS.register("shear")
@dataclass(frozen=True)
class Shear(Transform):
    """Shear along ``axis`` by ``factor`` (x' = x + factor * y about the centre).

    Output size: unchanged (uncovered corners black).
    """

    models: ClassVar[str] = "a skewed re-photograph or a careless free-transform"
    factor: float = param(float, 0.1, min=-1.0, max=1.0, intensity=Intensity(0.3))
    axis: str = param(str, "x", choices=("x", "y"))

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        f = self.factor
        forward = (
            np.array([[1.0, f], [0.0, 1.0]])
            if self.axis == "x"
            else np.array([[1.0, 0.0], [f, 1.0]])
        )
        return _affine(image, image.size, forward, COLORS["black"])


@TRANSFORMS.register("down_up")
@dataclass(frozen=True)
class DownUp(Transform):
    """Shrink by ``factor`` and enlarge back: a low-resolution copy re-enlarged.

    Output size: unchanged (the intermediate is ``max(1, round(W * factor))`` wide).
    """

    models: ClassVar[str] = "a low-resolution copy (thumbnail, old repost) scaled back up"
    intensity_meaning: ClassVar[str] = "log2(1 / factor) / log2(10)"
    factor: float = param(float, 0.5, min=0.0, max=1.0, min_open=True, doc="of each side")
    down_filter: str = param(str, "bicubic", choices=FILTERS)
    up_filter: str = param(str, "bicubic", choices=FILTERS)

    @property
    def intensity(self) -> float:
        return min(1.0, math.log2(1 / self.factor) / math.log2(10))

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        small = (
            max(1, round(image.width * self.factor)),
            max(1, round(image.height * self.factor)),
        )
        down = image.resize(small, FILTERS[self.down_filter])
        return down.resize(image.size, FILTERS[self.up_filter])


RESAMPLE_METHODS = ("nonaa_bilinear", "linear_light", "reducing_gap", "reduce_box")


@TRANSFORMS.register("resample")
@dataclass(frozen=True)
class Resample(Transform):
    """Downscale by ``scale`` the way other server stacks do (compare with ``resize``).

    Parameters
    ----------
    scale : float in (0, 1]
    method : {"nonaa_bilinear", "linear_light", "reducing_gap", "reduce_box"}
        "nonaa_bilinear": bilinear without antialiasing (OpenCV ``INTER_LINEAR``; emulated
        with an affine transform, 53 dB from cv2 in the research); "linear_light": Lanczos in
        linear light (gamma 2.2 removed first); "reducing_gap": Pillow's two-step Lanczos
        (``reducing_gap=2``); "reduce_box": integer box reduction then Lanczos (libvips-like).

    Output size: ``(max(1, round(W * scale)), max(1, round(H * scale)))``.
    """

    models: ClassVar[str] = "a different server stack's downscaler (OpenCV, libvips, gamma-aware)"
    intensity_meaning: ClassVar[str] = "log2(1 / scale) / 3"
    scale: float = param(float, 0.5, min=0.0, max=1.0, min_open=True, doc="of each side")
    method: str = param(str, "nonaa_bilinear", choices=RESAMPLE_METHODS)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return max(1, round(size[0] * self.scale)), max(1, round(size[1] * self.scale))

    @property
    def intensity(self) -> float:
        return min(1.0, math.log2(1 / self.scale) / 3)

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        size = self.output_size(image.size)
        lanczos = Image.Resampling.LANCZOS
        if self.method == "nonaa_bilinear":
            sx, sy = image.width / size[0], image.height / size[1]
            # Sample at pixel centres as cv2 does: u = (x + 0.5) * sx - 0.5.
            coeffs = (sx, 0, 0.5 * sx - 0.5, 0, sy, 0.5 * sy - 0.5)
            return image.transform(size, Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR)
        if self.method == "linear_light":
            linear = (np.asarray(image, dtype=np.float64) / 255.0) ** 2.2
            channels = [
                np.asarray(
                    Image.fromarray(linear[..., c].astype(np.float32), "F").resize(size, lanczos)
                )
                for c in range(3)
            ]
            return from_array(np.clip(np.stack(channels, axis=-1), 0, 1) ** (1 / 2.2) * 255)
        if self.method == "reducing_gap":
            return image.resize(size, lanczos, reducing_gap=2.0)
        factor = max(1, min(image.width // size[0], image.height // size[1]))
        return image.reduce(factor).resize(size, lanczos)


@TRANSFORMS.register("thumbnail")
@dataclass(frozen=True)
class Thumbnail(Transform):
    """Pillow ``thumbnail`` into a ``long_side`` square box (never enlarges; reducing gap 2).

    Output size: unchanged if both sides fit in ``long_side``; otherwise Pillow's rule - the
    constrained side becomes ``long_side`` and the other the floor or ceiling of the
    proportional length, whichever keeps the aspect closer (at least 1).
    """

    models: ClassVar[str] = "link previews and grid thumbnails"
    intensity_meaning: ClassVar[str] = "0 (depends on the input size; see output_size)"
    long_side: int = param(int, 320, min=1, max=65535, doc="box side in pixels")
    reducing_gap: float = param(float, 2.0, min=1.0, max=8.0, min_open=True)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        x = y = self.long_side
        if x >= w and y >= h:
            return size
        aspect = w / h

        def nearest(number: float, key: Any) -> int:
            return max(min(math.floor(number), math.ceil(number), key=key), 1)

        if x / y >= aspect:
            x = nearest(y * aspect, key=lambda n: abs(aspect - n / y))
        else:
            y = nearest(x / aspect, key=lambda n: 0 if n == 0 else abs(aspect - x / n))
        return x, y

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        out = image.copy()
        out.thumbnail((self.long_side, self.long_side), reducing_gap=self.reducing_gap)
        return out


@TRANSFORMS.register("aspect_stretch")
@dataclass(frozen=True)
class AspectStretch(Transform):
    """Stretch to a new aspect at constant area (width times ``sqrt(ratio)``, height divided).

    Output size: ``(max(1, round(W * sqrt(ratio))), max(1, round(H / sqrt(ratio))))``.
    """

    models: ClassVar[str] = "careless apps stretching an image to fit a frame"
    ratio: float = param(
        float,
        1.25,
        min=0.25,
        max=4.0,
        doc="new aspect / old aspect",
        intensity=Intensity(1, log2=True),
    )

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        r = math.sqrt(self.ratio)
        return max(1, round(size[0] * r)), max(1, round(size[1] / r))

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return image.resize(self.output_size(image.size), Image.Resampling.BICUBIC)
