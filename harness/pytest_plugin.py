"""pytest plugin: guard a hash library against regressions with one line.

Installed with hash-harness (entry point ``pytest11``), it provides the ``hash_harness`` fixture::

    def test_robust(hash_harness):
        hash_harness.assert_no_regression("ci")   # a committed baseline by name, or a path

The baseline records its suite and its dataset, so the fixture re-runs exactly that suite on
exactly those images (a registered name, a folder or a manifest, found as written, under the
pytest root or beside the baseline; ``dataset=`` overrides it) in the current environment, or
reads ``results=`` from an earlier run, and fails with the Markdown comparison when a rate got
worse (significant after the multiplicity correction, and beyond tolerance).
``--hash-harness-workers`` sets parallelism.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.result_model import Results


class HashHarnessGuard:
    """What the ``hash_harness`` fixture returns."""

    def __init__(self, workers: int = 1, root: str | Path | None = None) -> None:
        self.workers = workers
        self.root = Path(root) if root is not None else None

    def baseline_dataset(self, baseline: dict[str, Any], where: Path | None = None) -> str:
        """The dataset the baseline was measured on, as :func:`open_dataset` accepts it: a
        registered name (``skimage``, ``NAME[N]``) as is; a folder or manifest path as written
        if it exists, else under the pytest root, else beside the baseline file."""
        from datasets_benign import DATASETS

        name = str(baseline["dataset"]["name"])
        if name in DATASETS or Path(name).is_absolute() or Path(name).exists():
            return name
        for base in (self.root, where):
            if base is not None and (base / name).exists():
                return str(base / name)
        return name  # a registered name, or a path open_dataset reports as missing

    def run_baseline_suite(
        self,
        baseline: dict[str, Any],
        where: Path | None = None,
        dataset: str | None = None,
    ) -> Results:
        from harness.pipeline import run_suite
        from harness.suite import parse_suite

        suite = parse_suite(
            baseline["suite"]["config"], source=f"baseline suite {baseline['suite']['name']}"
        )
        dataset = dataset or self.baseline_dataset(baseline, where)
        return run_suite(suite, dataset=dataset, workers=self.workers, quiet=True)

    def compare(
        self,
        baseline: str | Path,
        results: str | Path | None = None,
        tolerance: float | None = None,
        dataset: str | None = None,
    ) -> dict[str, Any]:
        from harness import guard
        from harness import results as results_io

        base = guard.load_baseline(baseline)
        if results:
            result = results_io.load(results)
        else:
            result = self.run_baseline_suite(base, Path(baseline).resolve().parent, dataset)
        return guard.check(
            result, base, guard.DEFAULT_TOLERANCE if tolerance is None else tolerance
        )

    def assert_no_regression(
        self,
        baseline: str | Path,
        results: str | Path | None = None,
        tolerance: float | None = None,
        dataset: str | None = None,
    ) -> dict[str, Any]:
        """Fail the test, with the comparison table, when any rate regressed."""
        from harness.report import regression

        report = self.compare(baseline, results, tolerance, dataset)
        if report["regression"]:
            pytest.fail(regression.render_markdown(report), pytrace=False)
        return report


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hash-harness-workers",
        type=int,
        default=1,
        help="worker processes for suites run by the hash_harness fixture (default 1)",
    )


@pytest.fixture
def hash_harness(request: pytest.FixtureRequest) -> HashHarnessGuard:
    return HashHarnessGuard(
        workers=request.config.getoption("--hash-harness-workers"),
        root=request.config.rootpath,
    )
