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
from harness.core.errors import HashExcluded
from harness.core.params import param
from harness.kernels import Metric


def pdq_hash_and_quality(image: Image.Image) -> tuple[npt.NDArray[np.bool_], int]:
    """256 PDQ bits (in pdqhash's order) and PDQ's quality score for an RGB image."""
    pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    vector, quality = pdqhash.compute(pixels)
    return np.asarray(vector, dtype=bool), int(quality)


@ALGORITHMS.register("pdq", "pdqhash")
@dataclass(frozen=True)
class PDQ(HashAlgorithm):
    """Meta's PDQ: 64x64 Jarosz-filtered luma, 16x16 DCT, bit = coefficient > median."""

    libraries: ClassVar[tuple[str, ...]] = ("pdqhash", "numpy")
    examples: ClassVar[tuple[str, ...]] = ("pdq", "pdq(quality_gate=0)")
    #: Hashes of lower quality are excluded (Meta: discard quality <= 49); 0 keeps every hash.
    quality_gate: int = param(int, 50, min=0, max=100, doc="least PDQ quality kept")

    @property
    def n_bits(self) -> int:
        return 256

    def operating_thresholds(self) -> tuple[OperatingThreshold, ...]:
        return (OperatingThreshold(31, "Meta pdq/README.md: match at Hamming distance <= 31"),)

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        bits, quality = pdq_hash_and_quality(image)
        if quality < self.quality_gate:
            raise HashExcluded(
                f"PDQ quality {quality} is below the gate {self.quality_gate} (Meta discards such "
                "hashes: the image is too flat for its bits to mean anything)"
            )
        return bits


@ALGORITHMS.register("pdq_dihedral")
@dataclass(frozen=True)
class PDQDihedral(PDQ):
    """PDQ with dihedral matching: the upload's hash against the 8 orientations of the reference.

    The dihedral policy over pdq (``dihedral(pdq)``, see :mod:`harness.algorithms.policies`)
    with the orientations taken from PDQ's own DCT instead of transposed pixels; same layout
    and metric, kept under its own id so that results recorded with it stay comparable.

    ``pdqhash.compute_dihedral`` derives the 7 other orientations (rotations by 90/180/270,
    flips, transposes) from the original's DCT rather than from rotated pixels; the distance is
    the minimum over the 8 (query in its own orientation vs each variant of the reference). Each
    row stores all 8 hashes (2048 bits); distances run 0..256 as for PDQ. The derivation is exact
    only for 64 x 64 inputs: 14-32 bits off on 256-512 px photos (measured in the tests).
    """

    distance: ClassVar[str] = "hamming, minimum over the reference's 8 orientations"
    symmetric: ClassVar[bool] = False
    examples: ClassVar[tuple[str, ...]] = ("pdq_dihedral", "pdq_dihedral(quality_gate=0)")

    @property
    def n_bits(self) -> int:
        return 8 * 256

    @property
    def n_levels(self) -> int:
        return 256

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        vectors, quality = pdqhash.compute_dihedral(pixels)
        if quality < self.quality_gate:
            raise HashExcluded(
                f"PDQ quality {quality} is below the gate {self.quality_gate} (Meta discards such "
                "hashes: the image is too flat for its bits to mean anything)"
            )
        return np.concatenate([np.asarray(v, dtype=bool) for v in vectors])

    def metric(self) -> Metric:
        # The dihedral policy's metric over plain PDQ rows: rows are laid out the same way.
        from harness.algorithms.policies import DihedralMetric

        return DihedralMetric(PDQ(quality_gate=self.quality_gate))
