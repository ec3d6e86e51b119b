import json

import pytest

from harness import results
from harness.core.errors import HarnessError, SchemaVersionError
from harness.env import environment, environment_differences
from harness.report.markdown import code, esc


def _minimal(version=results.SCHEMA_VERSION):
    empty = {k: [] for k in results.REQUIRED}
    dataset = {"name": "d", "n_images": 0, "n_evaluated": 0, "images": [], "excluded": []}
    sections = {"suite": {"name": "s", "version": 1}, "dataset": dataset, "environment": {}}
    later = {"quality": [], "curves": [], "recommendations": []}
    return {"schema_version": version, **empty, **sections, **later}


def test_dump_load_round_trip_and_atomic_write(tmp_path):
    data = _minimal()
    data["run"] = {"created_utc": "x"}
    path = results.dump(results.from_builtins(data), tmp_path / "deep" / "results.json")
    assert results.to_builtins(results.load(path)) == data
    assert results.comparable(results.load(path)) == _minimal()
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp files left


def test_nan_is_refused_rather_than_written(tmp_path):
    data = _minimal()
    data["collisions"] = [{"algorithm": "a", "protocol": "p", "hist": [], "metrics": []}]
    data["collisions"][0]["summary"] = {
        "n": 0,
        "mean": float("nan"),
        **dict.fromkeys(("min", "median", "max")),
    }
    with pytest.raises(ValueError, match="not JSON compliant"):
        results.dump(results.from_builtins(data), tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_migrations_apply_step_by_step(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(
        results,
        "MIGRATIONS",
        {1: lambda d: {**d, "a": 1}, 2: lambda d: {**d, "b": d["a"] + 1}},
    )
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_minimal(1)))
    data = results.migrate(json.loads(path.read_text()))
    assert (data["schema_version"], data["a"], data["b"]) == (3, 1, 2)
    with pytest.raises(HarnessError, match="unknown field `a`"):
        results.load(path)  # the migrated document is then checked against the model
    monkeypatch.setattr(results, "MIGRATIONS", {})
    with pytest.raises(SchemaVersionError, match="No migration from schema_version 1"):
        results.load(path)


def test_v1_results_migrate_to_the_current_schema(tmp_path):
    v1 = _minimal(1)
    v1["cells"] = [
        {
            "algorithm": "phash",
            "transform": "identity",
            "positives": {"n": 0},
            "negatives": {"protocol": "edited_vs_other_originals", "n": 2, "hist": [1, 1]},
            "metrics": [
                {"name": "tpr", "params": {"threshold": 1}},
                {"name": "fpr", "params": {"threshold": 1}},
            ],
        }
    ]
    data = results.migrate(v1)
    cell = data["cells"][0]
    assert data["schema_version"] == results.SCHEMA_VERSION == 3
    assert cell["negatives"] == {"edited_vs_other_originals": {"n": 2, "hist": [1, 1]}}
    assert cell["metrics"][1]["params"] == {"threshold": 1, "protocol": "edited_vs_other_originals"}
    assert data["recommendations"] == []


def test_v2_results_migrate_to_v3(tmp_path):
    """v2 used -1 for "no threshold" and left gated copies out of TPR; v3 has statuses and
    counts gated copies (rebuilt from the exclusions) as misses."""
    v2 = _minimal(2)
    v2["dataset"]["images"] = [
        {"id": i, "status": "ok", "split": s} for i, s in (("a", "calibration"), ("b", "held_out"))
    ]
    v2["exclusions"] = [
        {"image": "b", "transform": "jpeg", "algorithm": "pdq", "reason": "quality 20 < 50"}
    ]
    v2["cells"] = [
        {
            "algorithm": "pdq",
            "transform": "jpeg",
            "positives": {"n": 1, "distances": [3, None]},
            "metrics": [{"name": "tpr", "params": {"threshold": 31}, "k": 1, "n": 1}],
        }
    ]
    v2["curves"] = [
        {
            "roc": {"threshold": [-1, 0, 3]},
            "eer": {"threshold": -1},
            "tpr_at_fpr": [{"threshold": -1, "status": "ok"}],
            "fpr_at_tpr": [{"threshold": -1, "status": "unreachable"}],
        }
    ]
    v2["recommendations"] = [
        {
            "algorithm": "pdq",
            "targets": [
                {
                    "target_fpr": 1e-3,
                    "threshold": -1,
                    "threshold_ci95": [-1, 2],
                    "status": "ok",
                    "explanation": "x",
                }
            ],
        }
    ]
    data = results.migrate(v2)
    cell = data["cells"][0]
    assert cell["positives"]["gated"] == ["b"]
    assert (cell["metrics"][0]["k"], cell["metrics"][0]["n"]) == (1, 2)
    curve = data["curves"][0]
    assert curve["roc"]["threshold"] == [None, 0, 3]
    assert curve["eer"]["threshold"] is None
    assert curve["fpr_at_tpr"][0]["status"] == "undefined"
    target = data["recommendations"][0]["targets"][0]
    assert (target["threshold"], target["status"]) == (None, "unachievable")
    assert target["threshold_ci95"] == [None, 2]
    assert target["reason"].startswith("no threshold meets FPR <= 0.001")
    assert data["impostors"] is None
    assert "-1" not in json.dumps(data)


def test_missing_sections_are_named(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"schema_version": 1, "suite": {}}))
    with pytest.raises(Exception, match="missing dataset"):
        results.load(path)


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "a|b",
        "**bold** _x_ `tick`",
        "line\nbreak",
        "[link](javascript:x)",
    ],
)
def test_markdown_escaping(hostile):
    escaped = esc(hostile)
    assert "<" not in escaped.replace("\\<", "")
    assert "|" not in escaped.replace("\\|", "")
    assert "\n" not in escaped
    assert "](" not in escaped
    span = code(hostile)
    assert "|" not in span.replace("\\|", "")
    assert "\n" not in span


def test_environment_differences_name_the_changed_versions():
    a = environment()
    b = json.loads(json.dumps(a))
    b["packages"]["pillow"] = "12.3.0"
    assert environment_differences(b, a) == [f"pillow 12.3.0 -> {a['packages']['pillow']}"]
    assert environment_differences(a, a) == []
