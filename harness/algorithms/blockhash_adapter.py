"""blockhash.io (Yang, Gu and Niu's block mean value hash) through ``phash-blockhashio``.

Optional extra: ``pip install 'hash-harness[blockhash]'``. The PyPI package ``phash-blockhashio``
installs the module ``blockhash``; the unrelated PyPI package *named* ``blockhash`` (a SHA tool)
installs a clashing module of the same name, so the adapter checks it got the right one. Both
methods of the C reference are offered: "precise" (method 2, block means over fractional
blocks) and "quick" (method 1, even blocks); both match the reference's test vectors exactly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from harness.algorithms.base import ALGORITHMS, HashAlgorithm
from harness.core.errors import InvalidParameterError
from harness.core.params import param


def _core():  # type: ignore[no-untyped-def]
    try:
        from blockhash import core
    except ImportError as exc:
        raise InvalidParameterError(
            "blockhash needs the optional package phash-blockhashio: "
            "pip install 'hash-harness[blockhash]' (not the unrelated PyPI package 'blockhash')."
        ) from exc
    if not hasattr(core, "blockhash_even"):
        raise InvalidParameterError(
            "The installed 'blockhash' module is not phash-blockhashio (the PyPI package named "
            "'blockhash' is an unrelated SHA tool): pip uninstall blockhash && "
            "pip install phash-blockhashio."
        )
    return core


@ALGORITHMS.register("blockhash")
@dataclass(frozen=True)
class Blockhash(HashAlgorithm):
    """blockhash.io: grey block means of a bits x bits grid vs the median of each quarter."""

    examples: ClassVar[tuple[str, ...]] = (
        "blockhash",
        "blockhash(method='quick')",
        "blockhash(bits=8)",
    )
    libraries: ClassVar[tuple[str, ...]] = ("phash-blockhashio", "pillow")
    extra: ClassVar[str | None] = "blockhash"
    bits: int = param(int, 16, min=4, max=64, doc="side of the block grid, a multiple of 4")
    method: str = param(str, "precise", choices=("precise", "quick"))

    def validate(self) -> None:
        if self.bits % 4:
            raise InvalidParameterError(
                "The 'bits' parameter of blockhash must be a multiple of 4 in [4, 64]. "
                f"Got {self.bits!r} instead."
            )
        _core()  # refuse at construction, before any image, when the package is missing

    @property
    def n_bits(self) -> int:
        return self.bits * self.bits

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        core = _core()
        fn = core.blockhash if self.method == "precise" else core.blockhash_even
        with warnings.catch_warnings():
            # phash-blockhashio 0.1.4 reads pixels with Image.getdata, deprecated in Pillow 13
            # and due for removal in Pillow 14: pin Pillow below 14 until the package follows.
            warnings.filterwarnings("ignore", "Image.Image.getdata", DeprecationWarning)
            hex_hash = fn(image.convert("RGB"), self.bits)
        return np.unpackbits(np.frombuffer(bytes.fromhex(hex_hash), np.uint8)).astype(bool)
