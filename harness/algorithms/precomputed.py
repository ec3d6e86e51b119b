"""Hashes computed elsewhere (a vendor's offline run), imported by ``hash-harness score``."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from harness.algorithms.base import ALGORITHMS, LabelledAlgorithm
from harness.algorithms.vectors import MAX_LENGTH, Measured
from harness.core.errors import HarnessError
from harness.core.params import param


# Measured's properties (distance, level_unit, always_shown) stand in for class attributes.
@ALGORITHMS.register("precomputed")
@dataclasses.dataclass(frozen=True)
class Precomputed(Measured, LabelledAlgorithm):  # type: ignore[misc,override]
    """Hashes computed elsewhere and imported with ``hash-harness score`` (cannot hash itself).

    Bits compared by Hamming or weighted Hamming, or float vectors by L1 / L2 / cosine, exactly
    as an external hasher's answers (:class:`~harness.algorithms.vectors.Measured`); named by its
    ``label`` in results.
    """

    standalone: ClassVar[bool] = False
    label: str = param(str, "vendor", identifier=True, doc="names the imported hashes")
    bits: int = param(int, 64, min=1, max=MAX_LENGTH, doc="hash length")

    def validate(self) -> None:
        self.check_label()
        self.check_measure("precomputed")

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        raise HarnessError(
            "precomputed hashes come from a vendor file: use `hash-harness score`, not `run`."
        )
