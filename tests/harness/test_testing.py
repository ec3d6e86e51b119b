"""The conformance kit fails the promises it names, and passes units that keep them."""

import dataclasses
import random
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from harness.algorithms.base import HashAlgorithm
from harness.testing import ConformanceError, check_algorithm, check_transform, sample_images
from transforms.base import Transform


@dataclasses.dataclass(frozen=True)
class Mean(HashAlgorithm):
    """8 bits: grey levels of a 3 x 3 thumbnail above their mean (the centre left out)."""

    name: ClassVar[str] = "kit_mean"
    always_shown: ClassVar[tuple[str, ...] | None] = ()

    @property
    def n_bits(self) -> int:
        return 8

    def hash_bits(self, image: Image.Image) -> np.ndarray:
        grey = np.asarray(image.convert("L").resize((3, 3)), float).ravel()
        return np.delete(grey > grey.mean(), 4)


class Noisy(Mean):
    def hash_bits(self, image):
        return np.random.default_rng().integers(0, 2, 8).astype(bool)


class Padded(Mean):
    @property
    def n_bits(self):
        return 5

    def hash(self, image):
        return np.packbits(super().hash_bits(image))  # 8 bits where 5 are declared


class OneSided(Mean):
    def metric(self):
        return lambda q, r: np.bitwise_count(q[:, None, :] & ~r[None, :, :]).sum(2, dtype=np.int64)


class ShortCut(Mean):
    def hash_shared(self, memo):
        return ~self.hash(memo.image)  # a run would see other bytes than hash() gives


@dataclasses.dataclass(frozen=True)
class Greedy(Transform):
    name: ClassVar[str] = "kit_greedy"

    def _apply(self, image, rng):
        random.random()
        return image


def test_a_conforming_unit_passes():
    from harness.algorithms import ALGORITHMS

    ALGORITHMS._items["kit_mean"] = Mean  # registered for the id round trip, then removed
    try:
        check_algorithm(Mean())
    finally:
        del ALGORITHMS._items["kit_mean"]
    check_transform(Transform.from_dict({"name": "jpeg", "params": {"quality": 50}}))


@pytest.mark.parametrize(
    ("algo", "message"),
    [
        (Noisy(), "hashing the same image twice differs"),
        (Padded(), "padding bits beyond n_bits are not zero"),
        (OneSided(), r"d\(x, y\) != d\(y, x\)"),
        (ShortCut(), r"hash_shared\(\) differs from hash\(\)"),
    ],
)
def test_broken_algorithms_fail_with_the_promise_they_break(algo, message):
    with pytest.raises(ConformanceError, match=message):
        check_algorithm(algo, sample_images(4))


def test_a_transform_using_the_global_rng_fails():
    with pytest.raises(ConformanceError, match="global random state"):
        check_transform(Greedy(), sample_images(1))


def test_an_unregistered_algorithm_fails_the_round_trip():
    with pytest.raises(ConformanceError, match="its id does not rebuild it"):
        check_algorithm(Mean())
