"""OpenCV ``img_hash`` (opencv-contrib): AverageHash, PHash, BlockMeanHash, MarrHildreth (bit
hashes) and RadialVariance, ColorMoment (compared by a score: see their distance levels).

Optional extra: ``pip install 'hash-harness[opencv]'`` (``opencv-contrib-python-headless``; keep a
single ``opencv-*`` distribution installed, they all provide ``cv2``). OpenCV expects BGR, so the
RGB image is reversed before ``compute``; fed RGB, PHash moves 3/64 bits and BlockMean 24/256 on
a photo. Note that OpenCV's Average/PHash/BlockMean downscale with ``INTER_LINEAR_EXACT``
(no antialiasing) and OpenCV's PHash thresholds at the *mean* with the DC term zeroed: these are
not bit-compatible with imagehash's hashes of the same names.

OpenCV packs bits least-significant first; they are unpacked in that order, trimmed to the
declared length (BlockMeanHash mode 1 has 961 bits in 121 bytes) and repacked MSB first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from harness.algorithms.base import ALGORITHMS, HashAlgorithm
from harness.core.errors import InvalidParameterError
from harness.core.params import param
from harness.kernels import Metric


def _img_hash() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise InvalidParameterError(
            "OpenCV hashes need the optional package opencv-contrib-python-headless: "
            "pip install 'hash-harness[opencv]'."
        ) from exc
    if not hasattr(cv2, "img_hash"):
        raise InvalidParameterError(
            "The installed cv2 has no img_hash module (it comes only with the contrib builds): "
            "uninstall other opencv-* packages and pip install opencv-contrib-python-headless."
        )
    return cv2.img_hash


@dataclass(frozen=True)
class _OpenCVBitHash(HashAlgorithm):
    libraries: ClassVar[tuple[str, ...]] = ("opencv-contrib-python-headless", "numpy")
    extra: ClassVar[str | None] = "opencv"
    bits: ClassVar[int] = 64

    def validate(self) -> None:
        _img_hash()  # refuse at construction when OpenCV is missing

    @property
    def n_bits(self) -> int:
        return self.bits

    def _hasher(self) -> Any:
        raise NotImplementedError

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])
        raw = np.asarray(self._hasher().compute(bgr), dtype=np.uint8).reshape(-1)
        return np.unpackbits(raw, bitorder="little")[: self.n_bits].astype(bool)


@ALGORITHMS.register("cv_average_hash")
@dataclass(frozen=True)
class CvAverageHash(_OpenCVBitHash):
    """OpenCV AverageHash: 8x8 non-antialiased thumbnail, bit = pixel > round(mean) (64 bits)."""

    def _hasher(self) -> Any:
        return _img_hash().AverageHash_create()


@ALGORITHMS.register("cv_phash")
@dataclass(frozen=True)
class CvPHash(_OpenCVBitHash):
    """OpenCV PHash: 32x32 DCT, top-left 8x8 with DC zeroed, bit = coefficient > mean (64 bits)."""

    def _hasher(self) -> Any:
        return _img_hash().PHash_create()


@ALGORITHMS.register("cv_block_mean_hash")
@dataclass(frozen=True)
class CvBlockMeanHash(_OpenCVBitHash):
    """OpenCV BlockMeanHash: 256x256 grey, block means vs the image mean; mode 0 = 16x16
    disjoint blocks (256 bits), mode 1 = 31x31 half-overlapping blocks (961 bits)."""

    examples: ClassVar[tuple[str, ...]] = ("cv_block_mean_hash", "cv_block_mean_hash(mode=1)")
    mode: int = param(int, 0, choices=(0, 1), doc="0: 16x16 disjoint blocks, 1: 31x31 overlapping")

    @property
    def n_bits(self) -> int:
        return 256 if self.mode == 0 else 961

    def _hasher(self) -> Any:
        return _img_hash().BlockMeanHash_create(self.mode)


@ALGORITHMS.register("cv_marr_hildreth_hash")
@dataclass(frozen=True)
class CvMarrHildrethHash(_OpenCVBitHash):
    """OpenCV MarrHildrethHash: 512x512 equalised grey, Marr-Hildreth (LoG) response signs
    over 31x31 blocks in 3x3 groups (576 bits)."""

    bits: ClassVar[int] = 576

    def _hasher(self) -> Any:
        return _img_hash().MarrHildrethHash_create()


@dataclass(frozen=True)
class _OpenCVScoreHash(HashAlgorithm):
    """OpenCV hashes compared by a score, not Hamming: rows hold the raw hash bytes."""

    libraries: ClassVar[tuple[str, ...]] = ("opencv-contrib-python-headless", "numpy")
    extra: ClassVar[str | None] = "opencv"
    raw_bytes: ClassVar[int] = 40

    def validate(self) -> None:
        _img_hash()

    @property
    def n_bits(self) -> int:
        return 8 * self.raw_bytes

    def _raw(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        raise NotImplementedError

    def hash(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        raw = self._raw(image)
        if raw.size != self.raw_bytes:
            raise RuntimeError(f"{self.id} produced {raw.size} bytes, expected {self.raw_bytes}")
        return raw


def _bgr(image: Image.Image) -> npt.NDArray[np.uint8]:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])


@ALGORITHMS.register("cv_radial_variance_hash")
@dataclass(frozen=True)
class CvRadialVarianceHash(_OpenCVScoreHash):
    """OpenCV RadialVarianceHash: 40 DCT coefficients of radial variance projections, compared
    by peak Pearson correlation over cyclic shifts (higher = closer; 1 for the same image).

    Distance levels are ``round((1 - peak correlation) * 100)``, 0..200: level 20 means a
    correlation of 0.8. The correlation is computed in numpy exactly as OpenCV's ``compare``.
    """

    distance: ClassVar[str] = "peak correlation (higher = closer), as levels"
    level_unit: ClassVar[str] = "(1 - peak correlation) x 100"
    raw_bytes: ClassVar[int] = 40

    @property
    def n_levels(self) -> int:
        return 200

    def _raw(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        return np.asarray(
            _img_hash().RadialVarianceHash_create().compute(_bgr(image)), np.uint8
        ).reshape(-1)

    def metric(self) -> Metric:
        return _radial_levels


def _radial_levels(
    queries: npt.NDArray[np.uint8], references: npt.NDArray[np.uint8]
) -> npt.NDArray[np.int64]:
    def standardise(x: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        f = x.astype(np.float64)
        f -= f.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(f, axis=1, keepdims=True)
        return np.divide(f, norm, out=np.zeros_like(f), where=norm > 0)

    q, r = standardise(queries), standardise(references)
    peak = np.full((len(q), len(r)), -1.0)
    for shift in range(q.shape[1]):
        peak = np.maximum(peak, q @ np.roll(r, shift, axis=1).T)
    return np.clip(np.rint((1.0 - peak) * 100), 0, 200).astype(np.int64)


@ALGORITHMS.register("cv_color_moment_hash")
@dataclass(frozen=True)
class CvColorMomentHash(_OpenCVScoreHash):
    """OpenCV ColorMomentHash: 42 Hu moments of the HSV and YCrCb channels, compared by L2
    distance x 10000 (OpenCV's ``compare``; lower = closer).

    Distance levels are that score rounded, capped at 1000 (level 1000 = 1000 or more).
    """

    distance: ClassVar[str] = "L2 x 10000 (lower = closer), as levels"
    level_unit: ClassVar[str] = "L2 distance x 10000"
    raw_bytes: ClassVar[int] = 42 * 8

    @property
    def n_levels(self) -> int:
        return 1000

    def _raw(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        moments = np.asarray(_img_hash().ColorMomentHash_create().compute(_bgr(image)), "<f8")
        return np.frombuffer(moments.reshape(-1).tobytes(), np.uint8).copy()

    def metric(self) -> Metric:
        return _moment_levels


def _moment_levels(
    queries: npt.NDArray[np.uint8], references: npt.NDArray[np.uint8]
) -> npt.NDArray[np.int64]:
    q = np.ascontiguousarray(queries).view("<f8")
    r = np.ascontiguousarray(references).view("<f8")
    d = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(axis=2)) * 10000
    return np.minimum(np.rint(d), 1000).astype(np.int64)
