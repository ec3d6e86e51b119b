"""The public Python API: what ``import harness`` offers, and the tables notebooks read."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import harness
from harness import guard, results
from harness.cli import main
from harness.core.errors import HarnessError, InvalidParameterError, SuiteError


@pytest.fixture(scope="module")
def ci(tmp_path_factory: pytest.TempPathFactory) -> harness.Results:
    cache = tmp_path_factory.mktemp("cache") / "hashes.sqlite"
    return harness.run("ci", workers=1, cache=cache)


def test_import_is_light():
    """The engine, numpy, pandas and matplotlib load only when a function needs them."""
    code = (
        "import sys, harness; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'numpy', 'pandas', 'matplotlib', 'PIL', 'scipy', 'imagehash'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_is_documented():
    assert set(harness.__all__) == {
        "Results",
        "Table",
        "__version__",
        "load_results",
        "load_suite",
        "run",
        "suites",
        "threshold",
    }
    for name in harness.__all__:
        obj = getattr(harness, name)
        if callable(obj):
            assert inspect.getdoc(obj), name
            hints = inspect.signature(obj).parameters.values()
            assert all(p.annotation is not inspect.Parameter.empty for p in hints), name
    for fn in (harness.run, harness.threshold, harness.load_suite):
        assert "Parameters\n----------" in inspect.getdoc(fn)


def test_cells_are_one_row_per_algorithm_edit_and_metric(ci):
    doc = results.to_builtins(ci.document)
    table = ci.cells
    assert len(table) == sum(len(c["metrics"]) for c in doc["cells"])
    assert table.columns[:3] == ("algorithm", "transform", "metric")
    first = doc["cells"][0]["metrics"][0]
    row = table.records()[0]
    assert row["algorithm"] == doc["cells"][0]["algorithm"]
    assert (row["k"], row["n"], row["value"]) == (first["k"], first["n"], first["value"])
    assert [row["lo"], row["hi"]] == first["ci95"]
    assert row["threshold"] == first["params"]["threshold"]
    assert row["category"] == ""  # all images
    # Per-protocol FPR rows carry their protocol; the table's keys are unique.
    rows = table.records()
    fpr = [r for r in rows if r["metric"] == "fpr"]
    assert fpr
    assert {r["protocol"] for r in fpr} >= {"edited_vs_other_originals"}
    keys = [
        (r["algorithm"], r["transform"], r["metric"], r["threshold"], r["protocol"], r["category"])
        for r in rows
    ]
    assert len(set(keys)) == len(keys)


def test_tables_as_dataframes(ci):
    frame = ci.cells.to_pandas()
    assert list(frame.columns) == list(ci.cells.columns)
    assert len(frame) == len(ci.cells)
    pooled = frame[(frame.metric == "tpr") & (frame.category == "")]
    assert ((pooled.k <= pooled.n) & (pooled.lo <= pooled.value)).all()
    coll = ci.collisions.to_pandas()
    assert set(coll.protocol) == {c.protocol for c in ci.document.collisions}
    assert len(coll) == sum(len(c.metrics) for c in ci.document.collisions)
    assert (coll.metric == "fpr").all()
    held_out = ci.thresholds.to_pandas()
    targets = sum(len(r.targets) for r in ci.document.recommendations)
    assert (held_out.metric == "held_out_fpr").sum() == targets
    assert len(ci.failures) == 0


def test_tables_are_the_rows_of_results_csv(ci):
    """One tidy representation: the tables partition the rows results.csv holds."""
    from harness.report.tidy import rows

    tables = (ci.cells, ci.collisions, ci.thresholds)
    assert sorted(r for t in tables for r in t.rows) == sorted(
        tuple(r.values()) for r in rows(ci.document)
    )


def test_to_pandas_without_pandas_says_which_extra(ci, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(HarnessError, match=r"hash-harness\[pandas\]"):
        ci.cells.to_pandas()
    assert ci.cells.records()  # still readable without pandas


def test_results_round_trip_and_match_the_cli(ci, tmp_path):
    path = ci.save(tmp_path / "results.json")
    again = harness.load_results(path)
    assert again.cells == ci.cells
    assert "ci v1" in repr(again)
    assert "# hash-harness" in again.report("md")
    with pytest.raises(HarnessError, match="format must be one of"):
        again.report("pdf")
    # The same suite through the command line gives the same document (apart from `run`).
    assert (
        main(["run", "--suite", "ci", "--out", str(tmp_path / "cli"), "--quiet", "--no-cache"]) == 0
    )
    cli = results.load(tmp_path / "cli" / "results.json")
    assert results.comparable(cli) == results.comparable(ci.document)
    assert not guard.check(cli, guard.load_baseline("ci"))["regression"]


def test_list_suites_and_validate_by_name(capsys):
    assert main(["list", "suites"]) == 0
    out = capsys.readouterr().out
    assert "thorn (v1): Thorn perception benchmark transforms" in out
    assert "default (v" in out
    assert main(["validate", "mckeown"]) == 0
    assert "valid suite 'mckeown'" in capsys.readouterr().out


def test_suites_and_their_errors():
    names = [r["name"] for r in harness.suites()]
    assert {"default", "ci", "thorn", "mckeown", "struppek", "imagededup"} <= set(names)
    assert harness.load_suite("thorn").name == "thorn"
    with pytest.raises(SuiteError, match="Did you mean 'thorn'"):
        harness.load_suite("thron")
    with pytest.raises(HarnessError, match="workers must be >= 0"):
        harness.run("ci", workers=-1)
    with pytest.raises(HarnessError, match="executor must be"):
        harness.run("ci", executor="spark")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_fpr": 0.0}, "target_fpr"),
        ({"target_fpr": 1e-3, "calibration_fraction": 1.5}, "calibration_fraction"),
        ({"target_fpr": 1e-3, "suite": "nope"}, "Cannot read suite file 'nope'"),
    ],
)
def test_threshold_refuses_bad_arguments_before_any_work(kwargs, message):
    with pytest.raises((InvalidParameterError, SuiteError), match=message):
        harness.threshold("pdq", **kwargs)


def test_threshold_answers_like_the_cli():
    answer = harness.threshold("phash", 0.05, suite="ci", workers=1)
    assert answer["algorithm"]["id"] == "phash"
    assert answer["suite"]["name"] == "ci"
    assert answer["dataset"]["n_evaluated"] == 17
