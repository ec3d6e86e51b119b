"""hash-harness: robustness and collision evaluation for perceptual image hashes.

The package is split along the data flow ``datasets_benign -> transforms -> harness.algorithms ->
harness.pairs/kernels -> harness.metrics -> harness.results -> harness.report``; this module stays
light so that importing any part of it does not pull in the whole engine.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hash-harness")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
