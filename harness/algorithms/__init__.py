"""Hash algorithm adapters; importing this package registers the built-in ones."""

from harness.algorithms import imagehash_adapters, pdq
from harness.algorithms.base import ALGORITHMS, HashAlgorithm, OperatingThreshold, make_algorithm

__all__ = [
    "ALGORITHMS",
    "HashAlgorithm",
    "OperatingThreshold",
    "imagehash_adapters",
    "make_algorithm",
    "pdq",
]
