"""CI guard: baselines, direction-aware checks, golden-hash drift and the pytest plugin."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from msgspec.structs import replace
from PIL import Image

from harness import golden, guard, results
from harness.cli import main
from harness.pipeline import run_suite
from harness.report import drift
from harness.suite import load_suite
from transforms import geometry

ROOT = Path(__file__).resolve().parent.parent
CI_SUITE = ROOT / "benchmarks" / "suites" / "ci.toml"
CI_BASELINE = ROOT / "benchmarks" / "baselines" / "ci.json"


def _same_environment(recorded: dict) -> bool:
    from harness.env import environment

    now = environment()
    return recorded["packages"] == now["packages"] and recorded["codecs"] == now["codecs"]


def test_project_meets_its_own_baseline(hash_harness):
    """This project's CI gate: the ci suite, re-run now, against the committed baseline."""
    report = hash_harness.assert_no_regression(CI_BASELINE)
    if _same_environment(guard.load_baseline(CI_BASELINE)["environment"]):
        assert report["counts"]["unchanged"] == len(report["rows"])  # deterministic harness


@pytest.fixture(scope="module")
def ci_run():
    return run_suite(load_suite(CI_SUITE), workers=1, quiet=True)


def test_unchanged_rerun_passes_and_other_suites_are_refused(ci_run, tmp_path, capsys):
    path = results.dump(ci_run, tmp_path / "results.json")
    junit = tmp_path / "junit.xml"
    assert main(["check", str(path), "--baseline", str(CI_BASELINE), "--junit", str(junit)]) == 0
    assert "**OK**" in capsys.readouterr().out
    suite = ET.parse(junit).getroot()  # noqa: S314 - our own output
    assert suite.get("failures") == "0"
    baseline = guard.load_baseline(CI_BASELINE)
    pooled = len({m["family"] for m in baseline["metrics"].values()})  # one pooled row each
    assert int(suite.get("tests")) == len(baseline["metrics"]) + pooled
    classnames = {case.get("classname") for case in suite.iter("testcase")}
    assert classnames == {"hash-harness.phash", "hash-harness.dhash", "hash-harness.pdq"}

    other = replace(ci_run, suite=replace(ci_run.suite, version=2))
    results.dump(other, tmp_path / "v2.json")
    assert main(["check", str(tmp_path / "v2.json"), "--baseline", str(CI_BASELINE)]) == 2
    assert "recreate the baseline" in capsys.readouterr().err
    other = replace(other, suite=replace(other.suite, name="default"))
    results.dump(other, tmp_path / "default.json")
    assert main(["check", str(tmp_path / "default.json"), "--baseline", str(CI_BASELINE)]) == 2
    assert "run suite 'ci'" in capsys.readouterr().err

    newer = {**results.to_builtins(ci_run), "schema_version": results.SCHEMA_VERSION + 1}
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    assert main(["check", str(tmp_path / "newer.json"), "--baseline", str(CI_BASELINE)]) == 2
    assert "upgrade hash-harness" in capsys.readouterr().err
    (tmp_path / "cut.json").write_text(CI_BASELINE.read_text()[:500])
    assert main(["check", str(path), "--baseline", str(tmp_path / "cut.json")]) == 2


def test_a_harsher_transform_is_caught_and_named(monkeypatch, tmp_path, capsys):
    """A preprocessing change that keeps every id but crops far more: check exits 1 and names
    the crop cells; nothing else is called worse."""
    real = geometry.Crop.output_size
    monkeypatch.setattr(
        geometry.Crop, "output_size", lambda self, size: real(geometry.Crop(0.3, self.anchor), size)
    )
    harsher = run_suite(load_suite(CI_SUITE), workers=1, quiet=True)  # in-process: sees the patch
    path = results.dump(harsher, tmp_path / "harsher.json")
    junit = tmp_path / "junit.xml"
    code = main(["check", str(path), "--baseline", str(CI_BASELINE), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1
    assert "**REGRESSION**" in out
    assert "| **worse** | `tpr \\| phash \\| crop(keep_area=0.9) \\| threshold=10`" in out
    report = guard.check(harsher, guard.load_baseline(CI_BASELINE))
    worse = {r["key"].split(" | ")[2] for r in report["rows"] if r["status"] == "worse"}
    # the crop rows, and the pooled test of the per-category rows the crop moved
    assert "crop(keep_area=0.9)" in worse
    assert worse - {"crop(keep_area=0.9)"} <= {"pooled: 49 rows with n < 10"}
    failures = ET.parse(junit).getroot().findall(".//failure")  # noqa: S314 - our own output
    assert failures
    assert all("worse" in f.get("message") for f in failures)


def _row(name, base, cur, per_image=None):
    """A check row of one algorithm's family: counts, or per-image outcome strings."""
    from harness.metrics import rate

    def entry(k, n, outcomes=None):
        r = rate(k, n)
        out = {"name": name, "family": "a", "k": k, "n": n, "value": r.value, "ci95": r.ci95}
        if outcomes is not None:
            out["per_image"] = outcomes
        return out

    b, c = per_image or (None, None)
    return {"key": "row", "family": "a", "baseline": entry(*base, b), "current": entry(*cur, c)}


@pytest.mark.parametrize(
    ("name", "base", "cur", "outcomes", "status"),
    [
        ("tpr", (18, 20), (18, 20), ("1" * 18 + "00", "1" * 18 + "00"), "unchanged"),
        # the same count, other images: moved, not worse
        ("tpr", (18, 20), (18, 20), ("1" * 18 + "00", "00" + "1" * 18), "changed"),
        ("tpr", (18, 20), (17, 20), ("1" * 18 + "00", "0" + "1" * 17 + "00"), "changed"),
        ("tpr", (18, 20), (12, 20), ("1" * 18 + "00", "0" * 6 + "1" * 12 + "00"), "worse"),
        ("tpr", (12, 20), (18, 20), ("0" * 6 + "1" * 12 + "00", "1" * 18 + "00"), "better"),
        ("fpr", (1, 1000), (30, 1000), None, "worse"),  # false matches up
        ("fpr", (30, 1000), (1, 1000), None, "better"),
        ("fpr", (0, 100000), (9, 100000), None, "changed"),  # significant, within tolerance
    ],
)
def test_classification_is_direction_aware_and_multiplicity_aware(
    name, base, cur, outcomes, status
):
    row = _row(name, base, cur, outcomes)
    row["test"] = guard._row_test(row["baseline"], row["current"])
    rejected = {
        side: guard.holm_tarone(
            {"row": (row["test"][f"p_{side}"], row["test"][f"min_p_{side}"])}, 0.05
        )[0]
        for side in ("worse", "better")
    }
    row["significant"] = next((s for s in ("worse", "better") if rejected[s]), None)
    assert guard._classify(row, tolerance=0.01)[0] == status


def test_missing_metrics_are_a_regression(ci_run):
    baseline = guard.create_baseline(ci_run)
    trimmed = replace(ci_run, cells=[c for c in ci_run.cells if c.algorithm != "pdq"])
    report = guard.check(trimmed, baseline)
    assert report["regression"]
    assert report["counts"]["missing"] > 0
    assert report["counts"]["worse"] == 0


def test_golden_check_names_what_moved_when_resampling_changes(monkeypatch, capsys, tmp_path):
    recorded = golden.create(["phash", "dhash", "pdq"])
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(recorded))
    assert main(["golden", "check", "--golden", str(path)]) == 0
    capsys.readouterr()

    real = Image.Image.resize

    def bilinear_instead_of_lanczos(self, size, resample=None, *args, **kwargs):
        if resample == Image.Resampling.LANCZOS:
            resample = Image.Resampling.BILINEAR
        return real(self, size, resample, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", bilinear_instead_of_lanczos)
    assert main(["golden", "check", "--golden", str(path)]) == 1
    out = capsys.readouterr().out
    report = golden.check(recorded)
    moved = {c["algorithm"]: c for c in report["changes"]}
    assert set(moved) == {"phash", "dhash"}  # imagehash resizes with Lanczos; PDQ does not
    assert report["unchanged"] == ["pdq"]
    assert moved["phash"]["moved"]["synthetic_tall_1x3"] > 0
    assert "| `phash` |" in out
    assert "every recorded version is the same" in out


def test_golden_check_explains_a_version_change():
    recorded = golden.create(["phash"])
    recorded["environment"]["packages"]["pillow"] = "12.3.0"
    first = next(iter(recorded["hashes"]["phash"]["values"]))
    value = recorded["hashes"]["phash"]["values"][first]
    recorded["hashes"]["phash"]["values"][first] = f"{int(value, 16) ^ 0b111:016x}"
    report = golden.check(recorded)
    assert report["drift"]
    assert "pillow 12.3.0 -> " in report["cause"]
    assert report["changes"][0]["moved"] == {first: 3}


def test_committed_golden_hashes_hold(update_golden):
    """The one golden file covers every default algorithm and still holds here."""
    if update_golden:
        results.atomic_write_text(golden.DEFAULT_PATH, results.to_json(golden.create()))
    recorded = golden.load(golden.DEFAULT_PATH)
    assert set(golden.default_algorithms()) <= set(recorded["hashes"])
    if not _same_environment(recorded["environment"]):
        pytest.skip(
            "golden hashes were recorded with other library versions (use -c constraints.txt)"
        )
    report = golden.check(recorded)
    assert not report["drift"], drift.render(report)


def _workflow_steps() -> dict[str, dict]:
    yaml = pytest.importorskip("yaml")
    text = (ROOT / "docs" / "ci.md").read_text()
    block = text.split("## GitHub Actions example", 1)[1].split("```yaml\n", 1)[1]
    workflow = yaml.safe_load(block.split("```", 1)[0])
    return {s.get("name", s.get("uses")): s for s in workflow["jobs"]["guard"]["steps"]}


def test_documented_workflow_reports_to_log_and_summary(ci_run, tmp_path):
    """Run the workflow's own check and golden steps with bash, as the runner would: the
    verdict reaches the log and the step summary, and the exit status survives the pipe."""
    import os
    import subprocess
    import sys

    steps = _workflow_steps()
    assert steps["actions/setup-python@v5"]["with"]["cache"] == "pip"
    assert steps["Check exact hashes"]["if"] == "always()"
    assert "--no-cache" in steps["Run the guard suite"]["run"]
    (tmp_path / "benchmarks" / "baselines").mkdir(parents=True)
    (tmp_path / "benchmarks" / "baselines" / "ci.json").write_text(CI_BASELINE.read_text())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def step(name: str, summary: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", steps[name]["run"]],
            cwd=tmp_path,
            env={**env, "GITHUB_STEP_SUMMARY": str(summary)},
            capture_output=True,
            text=True,
            check=False,
        )

    results.dump(ci_run, tmp_path / "results" / "results.json")
    ok = step("Check rates against the baseline", tmp_path / "ok.md")
    assert ok.returncode == 0, ok.stderr
    assert "**OK**" in ok.stdout
    assert "**OK**" in (tmp_path / "ok.md").read_text()
    broken = replace(ci_run, cells=[c for c in ci_run.cells if c.algorithm != "pdq"])
    results.dump(broken, tmp_path / "results" / "results.json")
    bad = step("Check rates against the baseline", tmp_path / "bad.md")
    assert bad.returncode == 1  # pipefail: tee does not hide the failure
    assert "**REGRESSION**" in bad.stdout
    assert "**REGRESSION**" in (tmp_path / "bad.md").read_text()
    assert (tmp_path / "results" / "check.xml").exists()
    gold = step("Check exact hashes", tmp_path / "gold.md")
    assert "hash-harness golden check" in gold.stdout
    assert gold.stdout in (tmp_path / "gold.md").read_text()


def test_gated_copies_are_misses_in_per_image_outcomes():
    """A copy the quality gate discarded is a miss of the true-match row, like in its rate."""
    assert guard._outcomes([3, None, None, 9], 5, [True] * 4, [False, True, False, False]) == (
        "10-0"
    )
    assert "tpr_hashed" in guard.HIGHER_IS_BETTER
