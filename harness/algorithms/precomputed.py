"""Hashes computed elsewhere (a vendor's offline run), imported by ``hash-harness score``."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from harness.algorithms.base import ALGORITHMS, HashAlgorithm
from harness.core.errors import HarnessError
from harness.core.params import param


@ALGORITHMS.register("precomputed")
@dataclasses.dataclass(frozen=True)
class Precomputed(HashAlgorithm):
    """Hashes computed elsewhere and imported with ``hash-harness score`` (cannot hash itself)."""

    standalone: ClassVar[bool] = False
    always_shown: ClassVar[tuple[str, ...] | None] = ("label", "bits")
    label: str = param(str, "vendor", identifier=True, doc="names the imported hashes")
    bits: int = param(int, 64, min=1, max=65536, doc="hash length")

    @property
    def n_bits(self) -> int:
        return self.bits

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        raise HarnessError(
            "precomputed hashes come from a vendor file: use `hash-harness score`, not `run`."
        )
