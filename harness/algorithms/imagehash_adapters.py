"""Adapters for the imagehash library (average, perceptual, difference and wavelet hashes).

Each adapter passes the RGB image to imagehash unchanged; imagehash converts to greyscale and
resizes with Pillow's LANCZOS itself, which is why Pillow's version is part of the fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import imagehash
import numpy as np
import numpy.typing as npt
from PIL import Image

from harness._validation import check_choice, check_int
from harness.algorithms.base import ALGORITHMS, HashAlgorithm, OperatingThreshold
from harness.errors import InvalidParameterError

_COMMON_64 = (
    OperatingThreshold(
        10,
        "conventional 64-bit starting point (<= 10 of 64 bits; imagededup, Hacker Factor)",
    ),
)
_LIBS = ("ImageHash", "pillow", "numpy")


@dataclass(frozen=True)
class _SquareHash(HashAlgorithm):
    """A hash of ``hash_size**2`` bits."""

    hash_size: int = 8

    def __post_init__(self) -> None:
        check_int("hash_size", self.hash_size, owner=self.name, min_value=2, max_value=64)

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

    name: ClassVar[str] = "average_hash"
    libraries: ClassVar[tuple[str, ...]] = _LIBS

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.average_hash(image, hash_size=self.hash_size)


@ALGORITHMS.register("phash")
@dataclass(frozen=True)
class PHash(_SquareHash):
    """imagehash ``phash``: 2-D DCT of a (hash_size·highfreq_factor)² thumbnail vs its median."""

    name: ClassVar[str] = "phash"
    libraries: ClassVar[tuple[str, ...]] = (*_LIBS, "scipy")
    highfreq_factor: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("highfreq_factor", self.highfreq_factor, owner="phash", min_value=1, max_value=16)

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.phash(
            image, hash_size=self.hash_size, highfreq_factor=self.highfreq_factor
        )


@ALGORITHMS.register("dhash")
@dataclass(frozen=True)
class DHash(_SquareHash):
    """imagehash ``dhash``: horizontal gradient signs of a (hash_size+1)×hash_size thumbnail."""

    name: ClassVar[str] = "dhash"
    libraries: ClassVar[tuple[str, ...]] = _LIBS

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.dhash(image, hash_size=self.hash_size)


@ALGORITHMS.register("whash")
@dataclass(frozen=True)
class WHash(_SquareHash):
    """imagehash ``whash``: wavelet (PyWavelets) low band of a power-of-two thumbnail vs median.

    ``hash_size`` must be a power of two (imagehash's own requirement). Only the "haar" wavelet
    is offered: with "db4", imagehash 4.3.2 returns 169 or 196 bits depending on the input size
    (wavelet boundary padding), so it is not a fixed-length hash.
    """

    name: ClassVar[str] = "whash"
    libraries: ClassVar[tuple[str, ...]] = (*_LIBS, "PyWavelets")
    mode: str = "haar"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hash_size & (self.hash_size - 1):
            raise InvalidParameterError(
                "The 'hash_size' parameter of whash must be a power of two in [2, 64]. "
                f"Got {self.hash_size!r} instead."
            )
        check_choice("mode", self.mode, owner="whash", choices=("haar",))

    def _imagehash(self, image: Image.Image) -> imagehash.ImageHash:
        # "haar" is the only mode __post_init__ accepts (see the class docstring).
        return imagehash.whash(image, hash_size=self.hash_size, mode="haar")
