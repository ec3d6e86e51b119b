"""Turn an image file into the RGB pixels every transform and hasher sees.

Two decode policies (see :data:`POLICIES`):

``viewer`` (the default for runs)
    "What a viewer shows": EXIF orientation applied, transparency composited onto white, 16-bit
    and float images scaled (not clipped) to 8 bits, every other mode converted by Pillow.
``reference``
    Pillow's ``Image.open(path).convert("RGB")``, as the PDQ reference vectors (Meta's
    ThreatExchange, pdqhash) were produced: alpha dropped (a transparent background becomes
    whatever colour its pixels hold, often black), 16-bit samples clipped, no EXIF rotation.

The policy changes answers a lot on images with transparency, so it is recorded in results and
is part of the cache key. Multi-frame files (animations, multi-page TIFFs) are read at their
first frame, and say so. Anything that cannot be decoded raises
:class:`~harness.core.errors.ImageLoadError` with a reason that ends up in the run's failure list.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from harness.core.errors import ImageLoadError, ImageTooLargeError

#: Background used when flattening transparency.
ALPHA_BACKGROUND = (255, 255, 255)

#: Decode policies: name -> one-line description (reports and ``--help`` show these).
POLICIES = {
    "viewer": "transparency flattened on white, 16-bit scaled, EXIF rotation applied",
    "reference": 'Pillow convert("RGB"): alpha dropped, 16-bit clipped (reference vectors)',
}
DEFAULT_POLICY = "viewer"


def check_policy(policy: object) -> str:
    """``policy`` if it names a decode policy, else a one-line error naming the choices."""
    if policy not in POLICIES:
        from harness.core.errors import InvalidParameterError

        raise InvalidParameterError(
            f"The decode policy must be one of {', '.join(map(repr, POLICIES))}. "
            f"Got {policy!r} instead."
        )
    return str(policy)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def pixel_sha256(image: Image.Image) -> str:
    """SHA-256 of an image's mode, size and raw pixel bytes (independent of file encoding)."""
    h = hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def _scale_to_8bit(image: Image.Image) -> Image.Image:
    arr = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or (image.mode == "I" and arr.max(initial=0) > 255):
        arr = arr / 257.0  # 0..65535 -> 0..255
    elif image.mode == "F" and arr.max(initial=0) <= 1.0:
        arr = arr * 255.0  # float images in [0, 1]
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image, policy: str = DEFAULT_POLICY) -> Image.Image:
    """Convert a decoded image of any Pillow mode to RGB following ``policy``."""
    if policy == "reference":
        return image if image.mode == "RGB" else image.convert("RGB")
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _scale_to_8bit(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def load_rgb(path: str | Path, policy: str = DEFAULT_POLICY) -> Image.Image:
    """Decode the file at ``path`` into a fully loaded RGB image under decode ``policy``.

    A multi-frame file is read at its first frame; the returned image's ``info["frames"]``
    holds the file's frame count then.

    Raises
    ------
    ImageLoadError
        For empty, truncated, corrupt, oversized (decompression bomb) or non-image files, with a
        human-readable reason.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageLoadError("empty file (0 bytes)")
        with warnings.catch_warnings():
            # Pillow warns, then errors, on huge images; treat both as refusals.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                opened.load()
                frames = int(getattr(opened, "n_frames", 1) or 1)
                image: Image.Image = opened
                if policy == "viewer":
                    image = ImageOps.exif_transpose(opened) or opened
                rgb = to_rgb(image, policy)
                rgb.load()
                if frames > 1:
                    rgb.info["frames"] = frames
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"refused as a possible decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError("not an image Pillow can identify") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncation and corruption as OSError / SyntaxError / ValueError.
        raise ImageLoadError(f"cannot decode: {type(exc).__name__}: {exc}") from exc
    except MemoryError as exc:
        raise ImageLoadError("cannot decode: the image does not fit in memory") from exc
    except Exception as exc:  # plugins can raise anything on hostile bytes; it is the file's fault
        raise ImageLoadError(f"cannot decode: {type(exc).__name__}: {exc}") from exc
    if rgb.width == 0 or rgb.height == 0:
        raise ImageLoadError(f"image has no pixels ({rgb.width}x{rgb.height})")
    return rgb
