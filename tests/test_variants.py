"""Real variant pairs (manifest ``variant_of``): own positive rows in every report, no
collisions of their own, refused before any pixel when their original is missing."""

import csv
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

import harness
from datasets_benign import open_dataset
from harness import results
from harness.cli import main
from harness.core.errors import DatasetError
from tests.conftest import REPO, run_cli, synthetic_image

SUITE = """
name = "variants"
version = 1
algorithms = ["phash", "dhash"]
transforms = ["identity", "jpeg@S3"]
thresholds = {phash = [10], dhash = [10]}
target_fprs = [0.01, 0.1]
bootstrap_resamples = 0
"""
SUITE_TARGETS = (0.01, 0.1)
N = 8


def _screenshot(image: Image.Image) -> Image.Image:
    """A screenshot of the image: shown smaller on a grey page with a title bar."""
    page = Image.new("RGB", (image.width + 40, image.height + 60), (200, 200, 200))
    page.paste(image, (20, 40))
    return page.resize((page.width * 3 // 4, page.height * 3 // 4))


@pytest.fixture
def manifest(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    rows = [["id", "path", "variant_of", "kind"]]
    for i in range(N):
        image = synthetic_image(120 + 5 * i, 90, seed=i)
        image.save(folder / f"img{i}.png")
        rows.append([f"img{i}", f"img{i}.png", "", ""])
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=55)  # a platform's re-encode
        (folder / f"img{i}-platform.jpg").write_bytes(buf.getvalue())
        rows.append([f"img{i}-platform", f"img{i}-platform.jpg", f"img{i}", "reencode"])
        if i < 5:
            _screenshot(image).save(folder / f"img{i}-shot.png")
            rows.append([f"img{i}-shot", f"img{i}-shot.png", f"img{i}", "screenshot"])
    (folder / "img0-plain.png").write_bytes((folder / "img0.png").read_bytes())
    rows.append(["img0-plain", "img0-plain.png", "img0", ""])  # no kind: row "variant_of"
    path = folder / "manifest.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    return tmp_path, suite, path


ROWS = ("variant_of", "variant_of:reencode", "variant_of:screenshot")


def test_variant_pairs_are_own_rows_in_every_report(manifest, capsys):
    tmp_path, suite, path = manifest
    assert run_cli(suite, path, tmp_path / "run") == 0
    result = results.to_builtins(results.load(tmp_path / "run" / "results.json"))
    # Variants are no images of their own: not in the dataset, not in any collision count.
    assert result["dataset"]["n_images"] == N
    pairs = next(
        c
        for c in result["collisions"]
        if c["algorithm"] == "phash" and c["protocol"] == "originals_all_pairs"
    )
    assert pairs["n_pairs"] == N * (N - 1) // 2
    section = result["variants"]
    assert len(section["images"]) == N + 5 + 1
    rows = {(r["algorithm"], r["transform"]): r for r in section["rows"]}
    assert set(rows) == {(a, t) for a in ("phash", "dhash") for t in ROWS}
    for (_, name), row in rows.items():
        tpr = next(m for m in row["metrics"] if m["name"] == "tpr")
        n = {"variant_of": 1, "variant_of:reencode": N, "variant_of:screenshot": 5}[name]
        assert tpr["n"] == n
        assert tpr["ci95"][0] <= tpr["value"] <= tpr["ci95"][1]
        other = next(
            m for m in row["metrics"] if m["params"].get("protocol") == "edited_vs_other_originals"
        )
        assert other["n"] == n * (N - 1)  # each variant against every other original only
    same = rows[("phash", "variant_of")]["positives"]["pairs"]
    assert same == [{"variant": "img0-plain", "original": "img0", "distance": 0}]

    report = (tmp_path / "run" / "report.md").read_text()
    html = (tmp_path / "run" / "report.html").read_text()
    assert "## Real variants" in report
    assert 'id="variants"' in html
    for name in ROWS:
        assert f"`{name}`" in report
        assert f"<code>{name}</code>" in html
    with (tmp_path / "run" / "results.csv").open() as fh:
        tidy = [r for r in csv.DictReader(fh) if r["transform"] in ROWS]
    assert {(r["algorithm"], r["transform"]) for r in tidy if r["metric"] == "tpr"} == set(rows)
    assert all(r["k"] and r["n"] and r["lo"] and r["hi"] for r in tidy if r["metric"] == "tpr")

    # At the thresholds chosen for each target FPR, beside the given one, in every report.
    chosen = {
        (r["algorithm"], t["target_fpr"]): t["threshold"]
        for r in result["recommendations"]
        for t in r["targets"]
    }
    for (algo, _), row in rows.items():
        pos = row["positives"]
        assert sorted(c["target_fpr"] for c in row["chosen"]) == list(SUITE_TARGETS)
        for c in row["chosen"]:
            assert c["threshold"] == chosen[(algo, c["target_fpr"])]
            hits = sum(p["distance"] <= c["threshold"] for p in pos["pairs"])
            assert (c["tpr"]["k"], c["tpr"]["n"]) == (hits, len(pos["pairs"]) + len(pos["gated"]))
            assert c["tpr"]["ci95"][0] <= c["tpr"]["value"] <= c["tpr"]["ci95"][1]
    board = result["leaderboard"]
    for entry in board["rows"]:
        assert set(entry["variants"]) == set(ROWS)
        for name, tpr in entry["variants"].items():
            chosen_at = rows[(entry["algorithm"], name)]["chosen"]
            assert tpr == next(
                c["tpr"] for c in chosen_at if c["target_fpr"] == board["target_fpr"]
            )
    sections = report.split("\n## ")
    leaderboard = next(x for x in sections if x.startswith("Leaderboard"))
    thresholds = next(x for x in sections if x.startswith("Thresholds"))
    for text in (leaderboard, thresholds):
        assert all(f"`{name}` (real variants, all)" in text for name in ROWS)
    assert "never tuned on the variants" in report
    assert "never tuned on the variants" in html
    assert "TPR at the threshold chosen for FPR ≤ 0.01" in report
    assert "(real variants, all)" in html
    with (tmp_path / "run" / "results.csv").open() as fh:
        at_chosen = [r for r in csv.DictReader(fh) if r["metric"] == "chosen_tpr"]
    assert {(r["algorithm"], r["transform"]) for r in at_chosen} == set(rows)
    assert all(r["target_fpr"] and r["threshold"] and r["lo"] and r["hi"] for r in at_chosen)

    # JUnit: one case per algorithm and variant kind, with both thresholds' rates.
    junit = ET.parse(tmp_path / "run" / "report.junit.xml").getroot()  # noqa: S314 - our own output
    cases = {(c.get("classname"), c.get("name")): c for c in junit.iter("testcase")}
    for algo, name in rows:
        out = cases[(algo, name)].findtext("system-out")
        assert out.startswith("TPR ")
        assert "at the threshold chosen for FPR <= 0.01" in out
        assert cases[(algo, name)].find("failure") is None

    # The Python API: variant rows apart from the synthetic cells, as tidy tables.
    api = harness.load_results(tmp_path / "run" / "results.json")
    assert not any(r["transform"] in ROWS for r in api.cells)
    real = api.variants.records()
    assert {r["metric"] for r in real} == {"tpr", "fpr", "chosen_tpr"}
    assert {(r["algorithm"], r["transform"]) for r in real} == set(rows)
    assert {
        (r["algorithm"], r["transform"]) for r in api.thresholds if r["metric"] == "chosen_tpr"
    } == set(rows)

    capsys.readouterr()
    assert main(["compare", str(tmp_path / "run" / "results.json"), "--format", "json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    pair = compared["pairs"][0]
    assert {t["transform"] for t in pair["per_transform"]} == {"jpeg(quality=50)"}
    assert {t["transform"]: t["n"] for t in pair["per_variant"]} == dict(
        zip(ROWS, (1, N, 5), strict=True)
    )
    assert (compared["summary"][0]["transforms"], compared["summary"][0]["variants"]) == (1, 3)
    assert main(["compare", str(tmp_path / "run" / "results.json")]) == 0
    shown = capsys.readouterr().out
    assert "real variants differing" in shown
    assert "| `variant_of:screenshot` |" in shown

    base = tmp_path / "base.json"
    results_path = str(tmp_path / "run" / "results.json")
    assert main(["baseline", "create", "--results", results_path, "--out", str(base)]) == 0
    keys = json.loads(base.read_text())["metrics"]
    assert "tpr | phash | variant_of:screenshot | threshold=10" in keys
    command = ["check", results_path, "--baseline", str(base), "--json", str(tmp_path / "c")]
    assert main(command) == 0
    checked = json.loads((tmp_path / "c").read_text())
    real_keys = [r["key"] for r in checked["rows"] if "| variant_of" in r["key"]]
    assert real_keys
    assert any("variant_of:reencode" in k for k in real_keys)
    # Counted apart: the synthetic counts hold every other row, the variant counts these.
    assert sum(checked["variant_counts"].values()) == len(real_keys)
    assert sum(checked["counts"].values()) == len(checked["rows"]) - len(real_keys)
    assert "Real variants (manifest variant_of): 0 worse" in capsys.readouterr().out


def test_variants_never_inform_the_chosen_thresholds(manifest):
    """The same corpus without its variant rows: the same thresholds, cells and collisions
    (variants are scored at the chosen thresholds, never part of choosing them)."""
    tmp_path, suite, path = manifest
    plain = path.with_name("plain.csv")
    with path.open() as fh, plain.open("w", newline="") as out:
        rows = list(csv.reader(fh))
        csv.writer(out).writerows(r for r in rows if not r[2] or r[0] == "id")
    assert run_cli(suite, path, tmp_path / "with") == 0
    assert run_cli(suite, plain, tmp_path / "without") == 0
    docs = [
        results.to_builtins(results.load(tmp_path / run / "results.json"))
        for run in ("with", "without")
    ]
    with_variants, without = docs
    assert "variants" in with_variants
    assert "variants" not in without
    thresholds = [
        [(t["target_fpr"], t["threshold"]) for r in d["recommendations"] for t in r["targets"]]
        for d in docs
    ]
    assert thresholds[0] == thresholds[1]
    assert all(t is not None for _, t in thresholds[0])
    for key in ("recommendations", "cells", "collisions", "curves", "sweeps"):
        assert with_variants[key] == without[key], key
    for entry in with_variants["leaderboard"]["rows"]:
        assert entry.pop("variants")
    assert with_variants["leaderboard"] == without["leaderboard"]


def test_check_of_a_narrowed_run_compares_the_cells_it_has(manifest, capsys):
    """``run --transforms`` on a subset of the suite's edits: ``check`` against the whole
    suite's baseline judges the cells the run has (real variants included) and lists the
    others as not run (JUnit: skipped); a baseline is never made from such a run, and a run
    that adds edits the suite lacks is refused with what to do."""
    tmp_path, suite, path = manifest
    assert run_cli(suite, path, tmp_path / "full") == 0
    base = tmp_path / "base.json"
    full = str(tmp_path / "full" / "results.json")
    assert main(["baseline", "create", "--results", full, "--out", str(base)]) == 0
    baseline = json.loads(base.read_text())
    # One kept cell's baseline differs (one image matched less): it must be judged, not skipped.
    key = "tpr | phash | identity | threshold=10"
    entry = baseline["metrics"][key]
    entry["per_image"] = "0" + entry["per_image"][1:]
    entry["k"] -= 1
    base.write_text(json.dumps(baseline))

    assert run_cli(suite, path, tmp_path / "narrow", "--transforms", "identity") == 0
    narrow = str(tmp_path / "narrow" / "results.json")
    capsys.readouterr()
    out = ["--json", str(tmp_path / "c.json"), "--junit", str(tmp_path / "c.xml")]
    assert main(["check", narrow, "--baseline", str(base), *out]) == 0
    shown = capsys.readouterr().out
    assert "narrowed with --transforms" in shown
    assert "`jpeg(quality=50)`" in shown
    report = json.loads((tmp_path / "c.json").read_text())
    status = {r["key"]: r["status"] for r in report["rows"]}
    assert status[key] == "changed"
    assert status["tpr | phash | jpeg(quality=50) | threshold=10"] == "not run"
    assert status["fpr | phash | edited_vs_edited | threshold=10"] == "not run"
    assert status["fpr | phash | originals_all_pairs | threshold=10"] == "unchanged"
    assert status["tpr | phash | variant_of:screenshot | threshold=10"] == "unchanged"
    assert report["counts"]["not run"] > 0
    assert report["counts"]["missing"] == 0
    assert "new" not in set(status.values())
    junit = ET.parse(tmp_path / "c.xml").getroot()  # noqa: S314 - our own output
    skipped = [c for c in junit.iter("testcase") if c.find("skipped") is not None]
    assert len(skipped) == sum(s == "not run" for s in status.values())
    assert junit.get("skipped") == str(len(skipped))
    assert junit.get("failures") == "0"

    # The whole suite's cells are still guarded: a missing kept cell fails as before.
    baseline["metrics"]["tpr | phash | identity | threshold=99"] = entry
    base.write_text(json.dumps(baseline))
    assert main(["check", narrow, "--baseline", str(base)]) == 1

    capsys.readouterr()
    assert main(["baseline", "create", "--results", narrow, "--out", str(tmp_path / "b2")]) == 2
    assert "create the baseline from a run without it" in capsys.readouterr().err
    added = tmp_path / "added"
    assert run_cli(suite, path, added, "--transforms", "identity", "crop@S2") == 0
    assert main(["check", str(added / "results.json"), "--baseline", str(base)]) == 2
    assert "naming edits suite 'variants' does not have (crop(" in capsys.readouterr().err


def test_gated_variants_are_misses_and_failures_are_recorded(manifest, capsys):
    tmp_path, suite, path = manifest
    (path.parent / "img1-shot.png").write_bytes(b"not an image")
    # A variant that cannot be read is a failure like any other: over the suite's budget.
    assert run_cli(suite, path, tmp_path / "run") == 3
    err = capsys.readouterr().err
    assert "1 of 8 images and 14 real variants failed" in err
    assert "note:" not in err  # rates over empty samples say so in the results, not as notes
    result = results.to_builtins(results.load(tmp_path / "run" / "results.json"))
    row = next(
        r
        for r in result["variants"]["rows"]
        if r["algorithm"] == "phash" and r["transform"] == "variant_of:screenshot"
    )
    assert [u["variant"] for u in row["positives"]["unpaired"]] == ["img1-shot"]
    assert next(m for m in row["metrics"] if m["name"] == "tpr")["n"] == 4
    failure = next(f for f in result["failures"] if f["image"] == "img1-shot")
    assert (failure["variant_of"], failure["transform"]) == ("img1", "variant_of:screenshot")
    n_variants = len(result["variants"]["images"])
    assert result["status"] == {
        "images_failed": 1,
        "failure_rate": 1 / (N + n_variants),
        "max_failure_rate": 0.0,
        "ok": False,
        "variants_failed": 1,
    }
    report = (tmp_path / "run" / "report.md").read_text()
    assert "**FAILED (too many image failures)**" in report
    assert (
        f"1 failure record, 1 of them real variants (failure rate {1 / (N + n_variants):.3f}"
        in report
    )
    assert "| img1-shot | img1 | decode | `variant_of:screenshot` |" in report


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["v", "img0.png", "nowhere", ""], "variant_of 'nowhere' names no image of this manifest"),
        (["v", "img0.png", "img0-platform", ""], "names another variant"),
        (["v", "img0.png", "", "screenshot"], "'kind' describes a variant"),
        (["v", "img0.png", "img0", "a b"], "must be a short name"),
    ],
)
def test_bad_variant_rows_are_refused_before_any_pixel(manifest, row, message, capsys):
    tmp_path, suite, path = manifest
    with path.open("a", newline="") as fh:
        csv.writer(fh).writerow(row)
    (path.parent / "img0.png").write_bytes(b"corrupt: never read")
    with pytest.raises(DatasetError, match=message):
        open_dataset(str(path))
    assert run_cli(suite, path, tmp_path / "run") == 2
    assert message.split("'")[0] in capsys.readouterr().err
    assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.parametrize("blind", [True, False])
def test_variants_through_export_and_score_equal_a_run(manifest, blind):
    """The vendor path: variants are exported (under opaque names when blind) and scored in
    their own rows exactly as a run of the same hasher scores them."""
    tmp_path, suite, path = manifest
    out, key = tmp_path / "vendor", tmp_path / "vendor.key.json"
    command = ["export", "--suite", str(suite), "--dataset", str(path), "--out", str(out)]
    assert main([*command, "--quiet", *(["--blind"] if blind else [])]) == 0
    if blind:
        shown = (out / "manifest.csv").read_text() + (out / "export.json").read_text()
        assert not any(w in shown for w in ("variant", "screenshot", "reencode", "img"))
        assert len(json.loads(key.read_text())["variants"]) == N + 5 + 1
    vendor_csv = tmp_path / "acme.csv"
    script = REPO / "tests" / "vendor" / "imagehash_vendor.py"
    subprocess.run([sys.executable, str(script), str(out), str(vendor_csv)], check=True)
    scored = tmp_path / "scored"
    source = key if blind else out
    command = ["score", str(source), "--hashes", str(vendor_csv), "--threshold", "10"]
    assert main([*command, "--out", str(scored)]) == 0
    assert run_cli(suite, path, tmp_path / "run") == 0

    def phash(section):
        return [
            {k: v for k, v in r.items() if k != "algorithm"}
            for r in section["rows"]
            if r["algorithm"] in ("phash", "vendor")  # score's default label
        ]

    vendor = results.to_builtins(results.load(scored / "results.json"))["variants"]
    built_in = results.to_builtins(results.load(tmp_path / "run" / "results.json"))["variants"]
    assert phash(vendor) == phash(built_in)
    assert vendor["images"] == built_in["images"]
    assert "## Real variants" in (scored / "report.md").read_text()


def test_results_written_before_chosen_thresholds_were_recorded_still_report(manifest):
    """A results.json with variant rows but no ``chosen`` / leaderboard ``variants`` (written
    before they were recorded) loads, round-trips and renders every report."""
    tmp_path, suite, path = manifest
    assert run_cli(suite, path, tmp_path / "run") == 0
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    for row in doc["variants"]["rows"]:
        del row["chosen"]
    for row in doc["leaderboard"]["rows"]:
        del row["variants"]
    older = tmp_path / "older.json"
    older.write_text(json.dumps(doc))
    loaded = harness.load_results(older)
    assert results.to_builtins(loaded.document) == doc
    for fmt in ("md", "html", "junit"):
        assert "variant_of:screenshot" in loaded.report(fmt)
    assert {r["metric"] for r in loaded.variants} == {"tpr", "fpr"}


def test_threshold_command_scores_variants_at_its_answer(manifest, capsys):
    """``threshold`` from a run's results and from the suite's hashes: the same threshold as
    without variants, and the variants' TPR at it equal to the run's ``chosen`` rows."""
    tmp_path, suite, path = manifest
    plain = path.with_name("plain.csv")
    with path.open() as fh, plain.open("w", newline="") as out:
        csv.writer(out).writerows(r for r in csv.reader(fh) if not r[2] or r[0] == "id")
    assert run_cli(suite, path, tmp_path / "run") == 0
    run = results.to_builtins(results.load(tmp_path / "run" / "results.json"))
    expected = {
        r["transform"]: next(c["tpr"] for c in r["chosen"] if c["target_fpr"] == 0.1)
        for r in run["variants"]["rows"]
        if r["algorithm"] == "phash"
    }
    command = ["threshold", "--algorithm", "phash", "--target-fpr", "0.1", "--json", "--quiet"]
    answers = []
    for source in (
        ["--results", str(tmp_path / "run" / "results.json")],
        ["--suite", str(suite), "--dataset", str(path)],
        ["--suite", str(suite), "--dataset", str(plain)],
    ):
        capsys.readouterr()
        assert main([*command, *source]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    from_results, from_hashes, without = answers
    assert from_results["threshold"] == from_hashes["threshold"] == without["threshold"]
    assert "variants" not in without
    for answer in (from_results, from_hashes):
        got = {v["transform"]: v for v in answer["variants"]}
        assert set(got) == set(expected)
        for name, tpr in expected.items():
            assert {k: got[name][k] for k in tpr} == tpr
    capsys.readouterr()
    given = ["threshold", "--algorithm", "phash", "--at", "10", "--quiet", "--format", "text"]
    assert main([*given, "--results", str(tmp_path / "run" / "results.json")]) == 0
    shown = capsys.readouterr().out
    assert "Real variants (manifest variant_of) at this threshold" in shown
    assert "variant_of:screenshot" in shown
