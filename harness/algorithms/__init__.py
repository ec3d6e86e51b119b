"""Hash algorithm adapters; importing this package registers the built-in ones.

Adapters whose library is an optional extra (OpenCV, blockhash) register anyway and refuse to be
constructed, with the install command, when the library is missing.
"""

from harness.algorithms import (
    blockhash_adapter,
    external,
    imagehash_adapters,
    opencv_adapters,
    pdq,
    policies,
    precomputed,
)
from harness.algorithms.base import ALGORITHMS, HashAlgorithm, OperatingThreshold, make_algorithm

__all__ = [
    "ALGORITHMS",
    "HashAlgorithm",
    "OperatingThreshold",
    "blockhash_adapter",
    "external",
    "imagehash_adapters",
    "make_algorithm",
    "opencv_adapters",
    "pdq",
    "policies",
    "precomputed",
]
