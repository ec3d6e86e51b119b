"""The pipeline: thumbnails and cost made in the hashing pass, a fully cached run decodes nothing,
the report layer reads the document only."""

import ast
import sqlite3
from pathlib import Path

import pytest

from datasets_benign import ImageRecord
from harness import results
from harness.columns import Columns
from harness.pipeline import NOT_MEASURED, run_suite
from harness.report.markdown import render_markdown
from harness.store import HashStore
from harness.suite import parse_suite
from tests.conftest import synthetic_image

SUITE = {
    "algorithms": ["phash", "pdq"],
    "transforms": ["identity", "jpeg(quality=50)", "jpeg(quality=80)", "crop@S2", "rotate@S3"],
    "bootstrap_resamples": 0,
}
REPORT = Path(__file__).resolve().parents[2] / "harness" / "report"


@pytest.fixture
def folder(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(8):
        synthetic_image(90 + 5 * i, 70, seed=i).save(imgs / f"img{i:02d}.png")
    return imgs


def _thumbnails(gallery):
    return [t for e in [*gallery.escapes, *gallery.collisions] for t in e.thumbnails.values()]


def test_a_fully_cached_run_decodes_nothing_and_keeps_gallery_and_results(
    folder, tmp_path, monkeypatch
):
    suite = parse_suite(SUITE)
    with HashStore(tmp_path / "c.sqlite") as store:
        first = run_suite(suite, dataset=str(folder), store=store)
    cost = {r.algorithm: r for r in first.run.cost.algorithms}
    assert cost["phash"].status == "measured"
    assert cost["phash"].n > 0
    assert 0 < cost["phash"].median_ms <= cost["phash"].p95_ms
    assert cost["pdq"].hashes_per_cpu_s > 0
    assert _thumbnails(first.gallery), "the run picked something to show"
    assert all(t.startswith("data:image/jpeg;base64,") for t in _thumbnails(first.gallery))

    def refuse(self):
        raise AssertionError(f"{self.id} decoded although every value is cached")

    monkeypatch.setattr(ImageRecord, "load", refuse)
    with HashStore(tmp_path / "c.sqlite") as store:
        cached = run_suite(suite, dataset=str(folder), store=store)
    assert results.comparable(cached) == results.comparable(first)
    assert all(e.thumbnails["edited"] for e in cached.gallery.escapes)
    assert {r.status for r in cached.run.cost.algorithms} == {NOT_MEASURED}
    md = render_markdown(cached)
    assert "CPU ms/image" in md
    assert NOT_MEASURED in md
    assert f"{cost['phash'].median_ms:.3g}" in render_markdown(first)


def test_thumbnails_match_an_uncached_run_and_a_damaged_one_is_made_again(folder, tmp_path):
    suite = parse_suite(SUITE)
    plain = run_suite(suite, dataset=str(folder))
    cache = tmp_path / "c.sqlite"
    with HashStore(cache) as store:
        run_suite(suite, dataset=str(folder), store=store)
    db = sqlite3.connect(cache)
    with db:
        n = db.execute("UPDATE thumbnails SET value = value || 'x'").rowcount
    db.close()
    assert n > 0
    with HashStore(cache, say=lambda line: None) as store:
        again = run_suite(suite, dataset=str(folder), store=store)
        faults = list(store.faults)
    assert again.gallery == plain.gallery
    assert faults
    assert all(f["kind"] == "checksum mismatch" for f in faults)
    # The rows were made again from the pixels and now verify.
    with HashStore(cache) as store:
        run_suite(suite, dataset=str(folder), store=store)
        assert store.faults == []


def test_a_schema_2_cache_is_upgraded_in_place_keeping_its_hashes(folder, tmp_path):
    cache = tmp_path / "c.sqlite"
    with HashStore(cache) as store:
        run_suite(parse_suite(SUITE), dataset=str(folder), store=store)
    db = sqlite3.connect(cache)
    with db:
        db.execute("DROP TABLE thumbnails")
        db.execute("PRAGMA user_version = 2")
    hashes = db.execute("SELECT COUNT(*) FROM hashes").fetchone()[0]
    db.close()
    lines = []
    with HashStore(cache, say=lines.append) as store:
        result = run_suite(parse_suite(SUITE), dataset=str(folder), store=store)
        assert store.info()["hashes"] == hashes
    assert lines == []  # nothing dropped, nothing to say
    assert result.run.cost.algorithms[0].status == NOT_MEASURED
    assert _thumbnails(result.gallery)


def test_edit_families_hold_what_the_plots_group_by(folder):
    result = run_suite(parse_suite(SUITE), dataset=str(folder))
    families = {f.family: f for f in result.edit_families}
    assert set(families) == {"jpeg", "crop", "rotate"}
    jpeg = families["jpeg"]
    assert jpeg.strength == [["jpeg quality", 50.0], ["jpeg quality", 80.0]]
    hists = [c.positives.hist for c in result.cells if c.algorithm == "pdq"]
    pooled = [sum(col) for col in zip(hists[1], hists[2], strict=True)]  # identity left out
    assert jpeg.positives["pdq"] == pooled


def test_no_report_module_imports_the_catalogue_or_decodes():
    """The report layer reads the results document only (data flows one way)."""
    banned = ("transforms", "PIL", "datasets_benign", "harness.summaries", "harness.hashing")
    for path in sorted(REPORT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(banned), f"{path.name} imports {name}"


def test_columns_name_the_original_and_each_chain():
    layout = Columns(("identity", "jpeg(quality=50)"))
    assert len(layout) == 3
    assert layout.name(Columns.ORIGINAL) == "original"
    assert layout.name(layout.chain(1)) == "jpeg(quality=50)"
    assert layout.chain_of(layout.chain(1)) == 1
    assert layout.index() == {"original": 0, "identity": 1, "jpeg(quality=50)": 2}
