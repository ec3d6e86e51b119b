"""The typed results model: lossless JSON round trips, validation at load, the JSON Schema."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import result_model, results
from harness.core.errors import HarnessError
from harness.result_model import Results
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "results.schema.json"


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results.json of the ci suite, written by the command a user runs."""
    out = tmp_path_factory.mktemp("ci")
    assert run_cli("ci", "skimage", out, "--no-cache") == 0
    return out / "results.json"


def test_a_real_run_round_trips_byte_for_byte(ci_run: Path):
    text = ci_run.read_text(encoding="utf-8")
    doc = results.from_json(text)
    assert isinstance(doc, Results)
    assert results.to_json(doc) == text
    assert results.to_json(results.load(ci_run)) == text


def test_a_real_run_matches_the_committed_schema(ci_run: Path):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(ci_run.read_text(encoding="utf-8")), schema)


def test_the_committed_schema_is_current():
    assert SCHEMA.read_text(encoding="utf-8") == result_model.json_schema(), (
        "docs/results.schema.json is stale: python -m harness.result_model > "
        "docs/results.schema.json"
    )


def test_the_schema_command_prints_the_schema():
    done = subprocess.run(
        [sys.executable, "-m", "harness.result_model"], capture_output=True, text=True, check=True
    )
    assert done.stdout == result_model.json_schema()


def test_typed_reading(ci_run: Path):
    doc = results.load(ci_run)
    algo = doc.algorithms[0]
    assert algo.levels == json.loads(ci_run.read_text())["algorithms"][0]["n_bits"]
    cell = doc.cell(algo.id, doc.transforms[0].id)
    assert cell is not None
    assert cell.metrics[0].rate.n == cell.metrics[0].n
    assert doc.originals_collision(algo.id) is not None
    assert doc.without_run().run is msgspec.UNSET
    with pytest.raises(KeyError, match="no algorithm 'nope'"):
        doc.algorithm("nope")


# -- edge cases: a minimal document and its variations --------------------------------------


def _rate(value: float | None = 0.5) -> dict:
    return {"k": 1, "n": 2, "value": value, "ci95": [0.0, 1.0], "status": "ok"}


def _minimal() -> dict:
    """The smallest document this version could write (keys with a default - empty lists,
    status ok - are always written, and filled in when an older document lacks them)."""
    metric = {"name": "tpr", "params": {"threshold": 3}, **_rate()}
    return {
        "schema_version": 3,
        "suite": {"name": "s", "version": 1},
        "dataset": {"name": "d", "n_images": 0, "n_evaluated": 0, "images": [], "excluded": []},
        "environment": {},
        "algorithms": [{"id": "phash", "n_bits": 64, "thresholds": [3]}],
        "transforms": [{"id": "jpeg", "steps": [{"name": "jpeg", "params": {}}]}],
        "cells": [
            {
                "algorithm": "phash",
                "transform": "jpeg",
                "positives": {"n": 0, "hist": [], "gated": []},
                "negatives": {},
                "metrics": [metric],
                "misses": [],
                "false_matches": [],
            }
        ],
        "collisions": [],
        "quality": [],
        "curves": [],
        "recommendations": [],
    }


def _round_trip(data: dict) -> str:
    text = results.to_json(data)
    assert results.to_json(results.from_json(text)) == text
    return text


def test_a_minimal_document_round_trips():
    _round_trip(_minimal())


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["cells"][0]["metrics"][0].update(value=None, ci95=[None, None]),
        lambda d: d["cells"][0]["metrics"][0].update(value=1, ci95=[0, 1]),  # ints stay ints
        lambda d: d["cells"][0]["metrics"][0].update(value=1.0, ci95=[0.0, 1.0]),
        lambda d: d["cells"][0]["metrics"][0].update(value=1e-300, ci95=[5e-324, 1.0]),
        lambda d: d.update(cells=[], collisions=[], quality=[], curves=[]),
        lambda d: d.update(impostors=None, leaderboard=None),
        lambda d: d["dataset"].update(excluded=[{"id": "x", "reason": "exact duplicate of y"}]),
        lambda d: d["dataset"]["images"].append(
            {"id": "é\u2028🙂", "width": None, "height": None, "status": "failed"}
        ),
        lambda d: d.update(run={"id": "ab", "scored_from": "vendor.csv"}),
        lambda d: d.update(
            curves=[
                {
                    "algorithm": "phash",
                    "positives": "p",
                    "negatives": "n",
                    "status": "undefined",
                    "reason": "needs both positive and negative pairs",
                    "tpr_at_fpr": [],
                    "fpr_at_tpr": [],
                    "precision": [],
                }
            ]
        ),
    ],
)
def test_edge_cases_round_trip(change):
    data = _minimal()
    change(data)
    _round_trip(data)


_json_number = st.one_of(
    st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False), st.none()
)


@settings(max_examples=60, deadline=None)
@given(
    value=_json_number,
    ci=st.lists(_json_number, min_size=2, max_size=2),
    hist=st.lists(st.integers(0, 2**40), max_size=20),
    ids=st.lists(st.text(max_size=8), max_size=4),
)
def test_any_numbers_and_names_round_trip(value, ci, hist, ids):
    data = _minimal()
    data["cells"][0]["metrics"][0].update(value=value, ci95=ci)
    data["cells"][0]["positives"].update(n=sum(hist), hist=hist, gated=ids)
    data["dataset"]["images"] = [{"id": i, "status": "ok"} for i in ids]
    text = _round_trip(data)
    jsonschema.validate(json.loads(text), json.loads(SCHEMA.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["cells"][0]["positives"].update(n="many"), "$.cells[0].positives.n"),
        (lambda d: d["cells"][0]["metrics"][0].pop("k"), "k"),
        (lambda d: d["algorithms"][0].update(n_bits=None), "$.algorithms[0].n_bits"),
        (lambda d: d["cells"][0].update(surprise=1), "surprise"),
        (lambda d: d.update(cells={}), "$.cells"),
        (lambda d: d["suite"].update(version="1"), "$.suite.version"),
    ],
)
def test_a_malformed_document_is_refused_in_one_line(tmp_path: Path, change, where: str):
    data = _minimal()
    change(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(HarnessError, match="is malformed") as info:
        results.load(path)
    message = str(info.value)
    assert where in message
    assert "\n" not in message


def test_a_malformed_document_exits_2_without_a_traceback(tmp_path: Path, capsys):
    from harness.cli import main

    data = _minimal()
    data["cells"][0]["metrics"][0]["ci95"] = "narrow"
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is malformed" in err
    assert "$.cells[0].metrics[0].ci95" in err
    assert "Traceback" not in err


def test_the_model_is_immutable():
    doc = results.from_builtins(copy.deepcopy(_minimal()))
    with pytest.raises(AttributeError):
        doc.suite.name = "other"  # type: ignore[misc]
