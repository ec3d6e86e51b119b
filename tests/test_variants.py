"""Real variant pairs (manifest ``variant_of``): own positive rows in every report, no
collisions of their own, refused before any pixel when their original is missing."""

import csv
import io
import json
import subprocess
import sys

import pytest
from PIL import Image

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
bootstrap_resamples = 0
"""
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

    capsys.readouterr()
    assert main(["compare", str(tmp_path / "run" / "results.json"), "--format", "json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    shown = {t["transform"]: t["n"] for t in compared["pairs"][0]["per_transform"]}
    assert {shown[name] for name in ROWS} == {1, N, 5}

    base = tmp_path / "base.json"
    results_path = str(tmp_path / "run" / "results.json")
    assert main(["baseline", "create", "--results", results_path, "--out", str(base)]) == 0
    keys = json.loads(base.read_text())["metrics"]
    assert "tpr | phash | variant_of:screenshot | threshold=10" in keys
    assert (
        main(["check", results_path, "--baseline", str(base), "--json", str(tmp_path / "c")]) == 0
    )
    checked = json.loads((tmp_path / "c").read_text())
    assert any("variant_of:reencode" in r["key"] for r in checked["rows"])


def test_gated_variants_are_misses_and_failures_are_recorded(manifest):
    tmp_path, suite, path = manifest
    (path.parent / "img1-shot.png").write_bytes(b"not an image")
    assert run_cli(suite, path, tmp_path / "run") == 0
    result = results.to_builtins(results.load(tmp_path / "run" / "results.json"))
    row = next(
        r
        for r in result["variants"]["rows"]
        if r["algorithm"] == "phash" and r["transform"] == "variant_of:screenshot"
    )
    assert [u["variant"] for u in row["positives"]["unpaired"]] == ["img1-shot"]
    assert next(m for m in row["metrics"] if m["name"] == "tpr")["n"] == 4
    failure = next(f for f in result["failures"] if f["image"] == "img1-shot")
    assert failure["variant_of"] == "img1"


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
