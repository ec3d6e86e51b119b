"""Adapters for the imagehash library (average, perceptual, difference, wavelet, colour hashes).

Each adapter passes the RGB image to imagehash unchanged; imagehash converts to greyscale and
resizes with Pillow's LANCZOS itself, which is why Pillow's version is part of the fingerprint.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import imagehash
import numpy as np
import numpy.typing as npt
from PIL import Image

from harness.algorithms.base import ALGORITHMS, HashAlgorithm, OperatingThreshold
from harness.core.errors import InvalidParameterError
from harness.core.params import param
from harness.kernels import Metric

_COMMON_64 = (
    OperatingThreshold(
        10,
        "conventional 64-bit starting point (<= 10 of 64 bits; imagededup, Hacker Factor)",
    ),
)
_LIBS = ("ImageHash", "pillow", "numpy")


def _highfreq() -> Any:
    """The DCT thumbnail is hash_size * highfreq_factor pixels wide."""
    return param(int, 4, min=1, max=16, doc="thumbnail side / hash_size")


@dataclass(frozen=True)
class _SquareHash(HashAlgorithm):
    """A hash of ``hash_size**2`` bits."""

    hash_size: int = param(int, 8, min=2, max=64, doc="side of the bit grid")

    @property
    def n_bits(self) -> int:
        return self.hash_size * self.hash_size

    def operating_thresholds(self) -> tuple[OperatingThreshold, ...]:
        return _COMMON_64 if self.hash_size == 8 else ()

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        return np.asarray(self._imagehash(image).hash, dtype=bool)

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        raise NotImplementedError


@ALGORITHMS.register("average_hash", "ahash")
@dataclass(frozen=True)
class AverageHash(_SquareHash):
    """imagehash ``average_hash``: greyscale, resize to hash_size², bit = pixel > mean."""

    libraries: ClassVar[tuple[str, ...]] = _LIBS

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.average_hash(image, hash_size=self.hash_size)


@ALGORITHMS.register("phash")
@dataclass(frozen=True)
class PHash(_SquareHash):
    """imagehash ``phash``: 2-D DCT of a (hash_size·highfreq_factor)² thumbnail vs its median."""

    examples: ClassVar[tuple[str, ...]] = (
        "phash",
        "phash(hash_size=16)",
        "phash(highfreq_factor=2)",
    )
    libraries: ClassVar[tuple[str, ...]] = (*_LIBS, "scipy")
    highfreq_factor: int = _highfreq()

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.phash(
            image, hash_size=self.hash_size, highfreq_factor=self.highfreq_factor
        )


@ALGORITHMS.register("dhash")
@dataclass(frozen=True)
class DHash(_SquareHash):
    """imagehash ``dhash``: horizontal gradient signs of a (hash_size+1)×hash_size thumbnail."""

    libraries: ClassVar[tuple[str, ...]] = _LIBS

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.dhash(image, hash_size=self.hash_size)


@ALGORITHMS.register("phash_simple")
@dataclass(frozen=True)
class PHashSimple(_SquareHash):
    """imagehash ``phash_simple``: 1-D DCT along rows of the thumbnail, bit = coefficient > mean
    (the older pHash variant; mean instead of median changes its collision behaviour)."""

    libraries: ClassVar[tuple[str, ...]] = (*_LIBS, "scipy")
    highfreq_factor: int = _highfreq()

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.phash_simple(
            image, hash_size=self.hash_size, highfreq_factor=self.highfreq_factor
        )


@ALGORITHMS.register("dhash_vertical")
@dataclass(frozen=True)
class DHashVertical(_SquareHash):
    """imagehash ``dhash_vertical``: vertical gradient signs of a hash_size×(hash_size+1)
    thumbnail (dhash turned 90 degrees)."""

    libraries: ClassVar[tuple[str, ...]] = _LIBS

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.dhash_vertical(image, hash_size=self.hash_size)


@ALGORITHMS.register("whash")
@dataclass(frozen=True)
class WHash(_SquareHash):
    """imagehash ``whash``: wavelet (PyWavelets) low band of a power-of-two thumbnail vs median.

    ``hash_size`` must be a power of two (imagehash's own requirement). With ``mode="db4"`` the
    Daubechies-4 boundary padding makes the hash larger than hash_size² (196 bits for 8), and the
    grid shrinks when imagehash's thumbnail (``image_scale``, by default the largest power of two
    not above the short side) is under 16 x hash_size. To keep one length for every image, db4
    uses ``image_scale = max(default, 16 * hash_size)``; ``n_bits`` is measured once.
    """

    examples: ClassVar[tuple[str, ...]] = ("whash", "whash(hash_size=16)", "whash(mode='db4')")
    libraries: ClassVar[tuple[str, ...]] = (*_LIBS, "PyWavelets")
    mode: str = param(str, "haar", choices=("haar", "db4"), doc="wavelet")

    def validate(self) -> None:
        if self.hash_size & (self.hash_size - 1):
            raise InvalidParameterError(
                "The 'hash_size' parameter of whash must be a power of two in [2, 64]. "
                f"Got {self.hash_size!r} instead."
            )

    @property
    def n_bits(self) -> int:
        if self.mode == "haar":
            return self.hash_size * self.hash_size
        return _db4_bits(self.hash_size)

    def operating_thresholds(self) -> tuple[OperatingThreshold, ...]:
        return _COMMON_64 if (self.hash_size, self.mode) == (8, "haar") else ()

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        scale = None
        if self.mode == "db4":
            default = max(2 ** int(np.log2(max(1, min(image.size)))), self.hash_size)
            scale = max(default, 16 * self.hash_size)
        with warnings.catch_warnings():
            # PyWavelets warns that db4 at this level has boundary effects everywhere: it does,
            # and that is the hash imagehash defines.
            warnings.filterwarnings("ignore", "Level value", UserWarning)
            return imagehash.whash(
                image,
                hash_size=self.hash_size,
                mode=self.mode,  # type: ignore[arg-type]  # checked against its choices above
                image_scale=scale,
            )


@functools.cache
def _db4_bits(hash_size: int) -> int:
    probe = Image.new("RGB", (64, 64), (90, 120, 150))
    return int(
        imagehash.whash(
            probe, hash_size=hash_size, mode="db4", image_scale=16 * hash_size
        ).hash.size
    )


@ALGORITHMS.register("colorhash")
@dataclass(frozen=True)
class ColorHash(HashAlgorithm):
    """imagehash ``colorhash``: fractions of black, grey and 6 hue x 2 saturation bins in HSV,
    each quantised to ``binbits`` bits (14 x binbits bits; 42 for the default 3).

    A colour histogram, not a layout hash: robust to geometry, weakly discriminative (large
    groups of unrelated images share a hash; McKeown and Buchanan advise against it at scale).
    """

    libraries: ClassVar[tuple[str, ...]] = _LIBS
    binbits: int = param(int, 3, min=1, max=16, doc="bits per histogram bin")

    @property
    def n_bits(self) -> int:
        return 14 * self.binbits

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        return np.asarray(imagehash.colorhash(image, binbits=self.binbits).hash, dtype=bool)


#: Segment hashes kept per image by crop_resistant_hash (imagehash finds about 10 on a photo).
MAX_SEGMENTS = 32


@ALGORITHMS.register("crop_resistant_hash")
@dataclass(frozen=True)
class CropResistantHash(HashAlgorithm):
    """imagehash ``crop_resistant_hash``: dhash of each segment of a watershed-like segmentation.

    A multi-hash, compared as imagehash's ``ImageMultiHash.hash_diff``: a segment of the query
    (the upload) *matches* when some segment of the reference is within 25% of its bits (16 of
    64). The distance level is the percentage of the query's segments with no match, 0..100:
    0 for the same image, threshold 50 = "at least half the upload's regions are found".
    imagehash's own ``matches`` default (at least one region) depends on the segment count, so
    it is not a single threshold here. Up to 32 segments are kept per image (row: count byte +
    32 x 8 bytes); imagehash finds about 10 on a photo, more on textures. About 200 ms per image.
    """

    distance: ClassVar[str] = "segments of the upload without a match within 25% of bits, as %"
    symmetric: ClassVar[bool] = False  # a share of the upload's segments, not the reference's
    libraries: ClassVar[tuple[str, ...]] = (*_LIBS, "scipy")
    level_unit: ClassVar[str] = "% of the upload's segments unmatched"

    @property
    def n_bits(self) -> int:
        return 8 * (1 + 8 * MAX_SEGMENTS)

    @property
    def n_levels(self) -> int:
        return 100

    def operating_thresholds(self) -> tuple[OperatingThreshold, ...]:
        # No published operating point; imagehash's own default is "at least one region".
        return (OperatingThreshold(90, "harness convention: at least 10% of the regions found"),)

    def hash(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        segments = imagehash.crop_resistant_hash(image).segment_hashes[:MAX_SEGMENTS]
        row = np.zeros(1 + 8 * MAX_SEGMENTS, dtype=np.uint8)
        row[0] = len(segments)
        for k, seg in enumerate(segments):
            row[1 + 8 * k : 9 + 8 * k] = np.packbits(np.asarray(seg.hash, dtype=bool).reshape(-1))
        return row

    def metric(self) -> Metric:
        return _segment_levels


def _segment_levels(
    queries: npt.NDArray[np.uint8], references: npt.NDArray[np.uint8]
) -> npt.NDArray[np.int64]:
    qn, rn = queries[:, 0].astype(np.int64), references[:, 0].astype(np.int64)
    q = queries[:, 1:].reshape(len(queries), MAX_SEGMENTS, 8)
    r = references[:, 1:].reshape(len(references), MAX_SEGMENTS, 8)
    # (nq, nr, 32 query segments, 32 reference segments) Hamming distances.
    d = np.bitwise_count(q[:, None, :, None, :] ^ r[None, :, None, :, :]).sum(
        axis=4, dtype=np.int64
    )
    d = np.where(np.arange(MAX_SEGMENTS)[None, None, None, :] < rn[None, :, None, None], d, 1 << 20)
    matched = (d.min(axis=3) <= 16) & (np.arange(MAX_SEGMENTS)[None, None, :] < qn[:, None, None])
    unmatched = qn[:, None] - matched.sum(axis=2)
    return (
        np.rint(100 * unmatched / np.maximum(qn, 1)[:, None]).astype(np.int64)
        + 100 * (qn == 0)[:, None]
    )
