"""pytest plugin: guard a hash library against regressions with one line.

Installed with hash-harness (entry point ``pytest11``), it provides the ``hash_harness`` fixture::

    def test_robust(hash_harness):
        hash_harness.assert_no_regression("benchmarks/baselines/default.json")

The baseline records its suite, so the fixture re-runs exactly that suite in the current
environment (or reads ``results=`` from an earlier run) and fails with the Markdown comparison
when a rate got worse beyond tolerance and noise. ``--hash-harness-workers`` sets parallelism.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


class HashHarnessGuard:
    """What the ``hash_harness`` fixture returns."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    def run_baseline_suite(self, baseline: dict[str, Any]) -> dict[str, Any]:
        from harness.evaluate import run_suite
        from harness.suite import parse_suite

        suite = parse_suite(
            baseline["suite"]["config"], source=f"baseline suite {baseline['suite']['name']}"
        )
        return run_suite(suite, workers=self.workers, quiet=True)

    def compare(
        self,
        baseline: str | Path,
        results: str | Path | None = None,
        tolerance: float | None = None,
    ) -> dict[str, Any]:
        from harness import guard
        from harness import results as results_io

        base = guard.load_baseline(baseline)
        result = results_io.load(results) if results else self.run_baseline_suite(base)
        return guard.check(
            result, base, guard.DEFAULT_TOLERANCE if tolerance is None else tolerance
        )

    def assert_no_regression(
        self,
        baseline: str | Path,
        results: str | Path | None = None,
        tolerance: float | None = None,
    ) -> dict[str, Any]:
        """Fail the test, with the comparison table, when any rate regressed."""
        from harness import guard

        report = self.compare(baseline, results, tolerance)
        if report["regression"]:
            pytest.fail(guard.render_markdown(report), pytrace=False)
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
    return HashHarnessGuard(workers=request.config.getoption("--hash-harness-workers"))
