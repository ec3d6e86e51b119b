"""Example plugin: importing this module registers one algorithm and one transform.

hash-harness imports it the first time a registry is asked for a name it does not know, because
the package declares entry points in the groups ``hash_harness.algorithms`` and
``hash_harness.transforms`` (see pyproject.toml beside this folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image, ImageOps

from harness.algorithms.base import ALGORITHMS, HashAlgorithm
from harness.core.params import param
from transforms.base import TRANSFORMS, Transform


@ALGORITHMS.register("example_row_bands")
@dataclass(frozen=True)
class RowBands(HashAlgorithm):
    """One bit per horizontal band: brighter than the image's mean (``bands`` bits)."""

    libraries: ClassVar[tuple[str, ...]] = ("hash-harness-example-plugin", "pillow")
    bands: int = param(int, 16, min=2, max=256, doc="bits")

    @property
    def n_bits(self) -> int:
        return self.bands

    def hash_bits(self, image: Image.Image) -> np.ndarray:
        grey = np.asarray(image.convert("L").resize((1, self.bands), Image.Resampling.BOX), float)
        return grey.ravel() > grey.mean()


@TRANSFORMS.register("example_invert")
@dataclass(frozen=True)
class Invert(Transform):
    """Photographic negative. Output size: unchanged."""

    models: ClassVar[str] = "a negative image (example plugin)"

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return ImageOps.invert(image)
