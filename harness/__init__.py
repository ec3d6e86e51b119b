"""hash-harness: robustness and collision evaluation for perceptual image hashes.

The public Python API (documented in docs/api.md)::

    import harness

    r = harness.run("ci")                        # a bundled suite by name, or a TOML path
    r.cells.to_pandas()                          # one row per algorithm x edit x metric
    harness.load_results("results/results.json")
    harness.threshold("pdq", 1e-3, suite="default")

The package is split along the data flow ``datasets_benign -> transforms -> harness.algorithms ->
harness.pairs/kernels -> harness.metrics -> harness.results -> harness.report``, all built on
``harness.core`` (docs/architecture.md); this module stays light (the engine, numpy and pandas are
imported only when a function needs them).
"""

from importlib.metadata import PackageNotFoundError, version

from harness.api import Results, Table, load_results, load_suite, run, suites, threshold

try:
    __version__ = version("hash-harness")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Results",
    "Table",
    "__version__",
    "load_results",
    "load_suite",
    "run",
    "suites",
    "threshold",
]
