"""Hashes computed elsewhere (a vendor's offline run), imported by ``hash-harness score``."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from harness.algorithms.base import ALGORITHMS, HashAlgorithm
from harness.core.errors import HarnessError, InvalidParameterError
from harness.core.params import check_int


@ALGORITHMS.register("precomputed")
@dataclasses.dataclass(frozen=True)
class Precomputed(HashAlgorithm):
    """Hashes computed elsewhere and imported with ``hash-harness score`` (cannot hash itself)."""

    name: ClassVar[str] = "precomputed"
    standalone: ClassVar[bool] = False
    always_shown: ClassVar[tuple[str, ...] | None] = ("label", "bits")
    label: str = "vendor"
    bits: int = 64

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.isidentifier():
            raise InvalidParameterError(
                "The 'label' parameter of precomputed must be a short identifier. "
                f"Got {self.label!r} instead."
            )
        check_int("bits", self.bits, owner="precomputed", min_value=1, max_value=65536)

    @property
    def n_bits(self) -> int:
        return self.bits

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        raise HarnessError(
            "precomputed hashes come from a vendor file: use `hash-harness score`, not `run`."
        )
