"""PDQ (Meta) through the ``pdqhash`` bindings of the reference C++ code.

``pdqhash.compute`` takes an RGB uint8 ``(H, W, 3)`` array and hashes it at full resolution (no
512 px pre-resize as Meta's CLI front end does), returning 256 bits and a quality score in
[0, 100]. Meta discards hashes of quality below 50 (flat, featureless images whose bits are
noise); the adapter does the same by default and the run records each as a counted exclusion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pdqhash
from PIL import Image

from harness.algorithms.base import ALGORITHMS, HashAlgorithm, OperatingThreshold
from harness.algorithms.policies import Dihedral
from harness.algorithms.shared import SharedHashes
from harness.core.errors import HashExcluded
from harness.core.params import check_choice, param


def pdq_hash_and_quality(image: Image.Image) -> tuple[npt.NDArray[np.bool_], int]:
    """256 PDQ bits (in pdqhash's order) and PDQ's quality score for an RGB image."""
    pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    vector, quality = pdqhash.compute(pixels)
    return np.asarray(vector, dtype=bool), int(quality)


def shared_pdq(memo: SharedHashes) -> tuple[npt.NDArray[np.bool_], int]:
    """:func:`pdq_hash_and_quality` of ``memo``'s picture, computed once per picture (PDQ and
    a quality gate read the same result)."""
    return memo.value("pdq_hash_and_quality", lambda: pdq_hash_and_quality(memo.image))


@ALGORITHMS.register("pdq", "pdqhash")
@dataclass(frozen=True)
class PDQ(HashAlgorithm):
    """Meta's PDQ: 64x64 Jarosz-filtered luma, 16x16 DCT, bit = coefficient > median."""

    libraries: ClassVar[tuple[str, ...]] = ("pdqhash", "numpy")
    examples: ClassVar[tuple[str, ...]] = ("pdq", "pdq(quality_gate=0)")
    #: Hashes of lower quality are excluded (Meta: discard quality <= 49); 0 keeps every hash.
    quality_gate: int = param(int, 50, min=0, max=100, doc="least PDQ quality kept")
    #: The dihedral policy over PDQ with :meth:`dihedral_hashes` is known by this name.
    native_dihedral: ClassVar[str] = "pdq_dihedral"

    @property
    def n_bits(self) -> int:
        return 256

    def operating_thresholds(self) -> tuple[OperatingThreshold, ...]:
        return (OperatingThreshold(31, "Meta pdq/README.md: match at Hamming distance <= 31"),)

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        bits, quality = pdq_hash_and_quality(image)
        self._gate(quality)
        return bits

    def hash_shared(self, memo: SharedHashes) -> npt.NDArray[np.uint8]:
        bits, quality = shared_pdq(memo)
        self._gate(quality)
        return np.packbits(bits)

    def dihedral_hashes(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        """The 8 orientations' packed hashes, upright first, derived by pdqhash from the
        upright image's DCT (``dihedral(pdq,orientations='native')``)."""
        pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        vectors, quality = pdqhash.compute_dihedral(pixels)
        self._gate(quality)
        return np.packbits(np.concatenate([np.asarray(v, dtype=bool) for v in vectors]))

    def _gate(self, quality: int) -> None:
        if quality < self.quality_gate:
            raise HashExcluded(
                f"PDQ quality {quality} is below the gate {self.quality_gate} (Meta discards such "
                "hashes: the image is too flat for its bits to mean anything)"
            )


@ALGORITHMS.register("pdq_dihedral")
@dataclass(frozen=True)
class PDQDihedral(Dihedral):
    """PDQ's own dihedral matching: the upload against the 8 orientations pdqhash derives.

    The same unit as ``dihedral(pdq,orientations='native')`` (one id, one record: the old
    algorithm's, so results recorded with it stay comparable), written with PDQ's parameters:
    ``pdq_dihedral(quality_gate=0)`` is ``dihedral(pdq(quality_gate=0),orientations='native')``.
    ``pdqhash.compute_dihedral`` derives the 7 other orientations from the upright image's DCT
    rather than from turned pixels: exact for 64 x 64 inputs, 14-32 bits off on 256-512 px
    photos (measured in the tests), where ``dihedral(pdq)`` hashes turned pixels instead.
    """

    standalone: ClassVar[bool] = True
    examples: ClassVar[tuple[str, ...]] = ("pdq_dihedral", "pdq_dihedral(quality_gate=0)")
    orientations: str = param(str, "native", choices=("native",), doc="PDQ's own orientations")
    quality_gate: int = param(int, 50, min=0, max=100, doc="least PDQ quality kept")

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", (PDQ(quality_gate=self.quality_gate),))
        super().__post_init__()
        check_choice("orientations", self.orientations, owner="pdq_dihedral", choices=("native",))
