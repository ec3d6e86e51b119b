"""OpenCV ``img_hash`` (opencv-contrib) bit hashes: AverageHash, PHash, BlockMeanHash, MarrHildreth.

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

from harness._validation import check_choice
from harness.algorithms.base import ALGORITHMS, HashAlgorithm
from harness.errors import InvalidParameterError


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

    def __post_init__(self) -> None:
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

    name: ClassVar[str] = "cv_average_hash"

    def _hasher(self) -> Any:
        return _img_hash().AverageHash_create()


@ALGORITHMS.register("cv_phash")
@dataclass(frozen=True)
class CvPHash(_OpenCVBitHash):
    """OpenCV PHash: 32x32 DCT, top-left 8x8 with DC zeroed, bit = coefficient > mean (64 bits)."""

    name: ClassVar[str] = "cv_phash"

    def _hasher(self) -> Any:
        return _img_hash().PHash_create()


@ALGORITHMS.register("cv_block_mean_hash")
@dataclass(frozen=True)
class CvBlockMeanHash(_OpenCVBitHash):
    """OpenCV BlockMeanHash: 256x256 grey, block means vs the image mean; mode 0 = 16x16
    disjoint blocks (256 bits), mode 1 = 31x31 half-overlapping blocks (961 bits)."""

    name: ClassVar[str] = "cv_block_mean_hash"
    mode: int = 0

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, owner="cv_block_mean_hash", choices=(0, 1))
        super().__post_init__()

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

    name: ClassVar[str] = "cv_marr_hildreth_hash"
    bits: ClassVar[int] = 576

    def _hasher(self) -> Any:
        return _img_hash().MarrHildrethHash_create()
