"""Blind vendor evaluation: export, hash offline, score - equal to the built-in pipeline."""

import csv

import numpy as np
import pytest
from PIL import Image

from harness import results
from harness.algorithms import make_algorithm
from harness.cli import main
from tests.conftest import run_cli, synthetic_image

SUITE = """
name = "offline"
version = 1
algorithms = ["phash"]
transforms = ["identity", "jpeg@S3", "crop@S2", "gaussian_noise(sigma=10.0)"]
bootstrap_resamples = 0
"""


@pytest.fixture
def exported(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(5):
        synthetic_image(90 + 7 * i, 70, seed=i).save(folder / f"img{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    out = tmp_path / "export"
    assert (
        main(
            [
                "export",
                "--suite",
                str(suite),
                "--dataset",
                str(folder),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    return tmp_path, suite, folder, out


def _vendor_csv(export_dir, path, algo="phash", skip=(), transform=None):
    """What a vendor does: hash every exported file with its own code and write item_id,hash."""
    hasher = make_algorithm(algo)
    with (export_dir / "manifest.csv").open() as fh:
        items = list(csv.DictReader(fh))
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["item_id", "hash"])
        for item in items:
            if item["item_id"] in skip:
                continue
            image = Image.open(export_dir / item["file"]).convert("RGB")
            value = hasher.hash(image).tobytes().hex()
            writer.writerow([item["item_id"], transform(value) if transform else value])
    return items


def test_scoring_vendor_hashes_equals_the_built_in_run(exported):
    tmp_path, suite, folder, out = exported
    items = _vendor_csv(out, tmp_path / "vendor.csv")
    assert len(items) == 5 * 5  # 5 decodable images x (original + 4 edits); broken.png is a failure
    assert (
        main(
            [
                "score",
                str(out),
                "--hashes",
                str(tmp_path / "vendor.csv"),
                "--label",
                "acme",
                "--threshold",
                "10",
                "--out",
                str(tmp_path / "scored"),
            ]
        )
        == 0
    )
    assert run_cli(str(suite), str(folder), str(tmp_path / "run"), "--max-failure-rate", "0.5") == 0
    scored = results.to_builtins(results.load(tmp_path / "scored" / "results.json"))
    built_in = results.to_builtins(results.load(tmp_path / "run" / "results.json"))
    assert scored["algorithms"][0]["id"] == "acme"  # the label; the spec is kept beside it
    assert scored["algorithms"][0]["spec"] == "precomputed(bits=64,label='acme')"
    strip = lambda cells: [{k: v for k, v in c.items() if k != "algorithm"} for c in cells]  # noqa: E731
    assert strip(scored["cells"]) == strip(built_in["cells"])
    assert strip(scored["collisions"]) == strip(built_in["collisions"])
    assert {f["image"] for f in scored["failures"]} == {"broken.png"}
    assert "acme" in (tmp_path / "scored" / "report.md").read_text()


def test_missing_vendor_hashes_become_failures(exported):
    tmp_path, _, _, out = exported
    _vendor_csv(out, tmp_path / "vendor.csv", skip={"i000001-c002"})
    assert (
        main(
            [
                "score",
                str(out),
                "--hashes",
                str(tmp_path / "vendor.csv"),
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    failures = results.to_builtins(results.load(tmp_path / "s" / "results.json"))["failures"]
    assert any(f["error"] == "no hash for this item in the vendor file" for f in failures)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: [*rows, ["i999999-c000", "00" * 8]], "ids that are not in the export"),
        (lambda rows: [*rows, rows[1]], "several hashes for 1 ids"),
        (lambda rows: [rows[0], [rows[1][0], rows[1][1][:-2]], *rows[2:]], "different lengths"),
        (lambda rows: [rows[0], [rows[1][0], "zz" * 8], *rows[2:]], "neither hex nor 0/1"),
        (lambda rows: [["id", "value"], *rows[1:]], "columns item_id and hash"),
        (lambda rows: rows[:1], "has no hashes"),
    ],
)
def test_bad_vendor_files_are_refused_with_a_reason(exported, mutate, message, capsys):
    tmp_path, _, _, out = exported
    good = tmp_path / "vendor.csv"
    _vendor_csv(out, good)
    rows = list(csv.reader(good.open()))
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as fh:
        csv.writer(fh).writerows(mutate(rows))
    assert main(["score", str(out), "--hashes", str(bad), "--out", str(tmp_path / "s")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s" / "results.json").exists()


def test_bit_strings_and_declared_length(exported, capsys):
    tmp_path, _, _, out = exported
    to_bits = lambda h: "".join(f"{b:08b}" for b in bytes.fromhex(h))  # noqa: E731
    _vendor_csv(out, tmp_path / "bits.csv", transform=to_bits)
    assert (
        main(
            [
                "score",
                str(out),
                "--hashes",
                str(tmp_path / "bits.csv"),
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "score",
                str(out),
                "--hashes",
                str(tmp_path / "bits.csv"),
                "--bits",
                "32",
                "--out",
                str(tmp_path / "t"),
            ]
        )
        == 2
    )
    assert "--bits says 32" in capsys.readouterr().err


def test_exported_pixels_are_the_edited_pixels(exported):
    _, _, _, out = exported
    with (out / "manifest.csv").open() as fh:
        item = next(r for r in csv.DictReader(fh) if r["column"].startswith("gaussian_noise"))
    exported_image = Image.open(out / item["file"]).convert("RGB")
    from transforms import parse_chain

    source = Image.open(out.parent / "imgs" / item["image_id"]).convert("RGB")
    expected = parse_chain(item["column"]).apply(source, suite_seed=0, image_id=item["image_id"])
    assert np.array_equal(np.asarray(exported_image), np.asarray(expected))


def test_export_applies_the_suites_max_side_and_group_by(tmp_path):
    """A suite that shrinks originals and groups images by folder scores the same through
    export and score as through run: same pixels, same pairs, same dataset record."""
    folder = tmp_path / "imgs"
    for k in range(6):
        sub = folder / f"shoot{k % 2}"  # two shoots: pictures of one shoot are never impostors
        sub.mkdir(parents=True, exist_ok=True)
        synthetic_image(150 + 13 * k, 110, seed=20 + k).save(sub / f"p{k}.png")
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE + 'max_side = 64\ngroup_by = "folder"\n')
    out = tmp_path / "export"
    command = ["export", "--suite", str(suite), "--dataset", str(folder), "--out", str(out)]
    assert main([*command, "--quiet"]) == 0
    with (out / "manifest.csv").open() as fh:
        first = next(csv.DictReader(fh))
    assert max(Image.open(out / first["file"]).size) == 64  # the suite's preprocessing
    _vendor_csv(out, tmp_path / "vendor.csv")
    hashes = ["--hashes", str(tmp_path / "vendor.csv"), "--threshold", "10"]
    assert main(["score", str(out), *hashes, "--out", str(tmp_path / "scored")]) == 0
    assert run_cli(str(suite), str(folder), str(tmp_path / "run")) == 0  # phash: <= 10 bits
    scored = results.to_builtins(results.load(tmp_path / "scored" / "results.json"))
    built_in = results.to_builtins(results.load(tmp_path / "run" / "results.json"))
    strip = lambda cells: [{k: v for k, v in c.items() if k != "algorithm"} for c in cells]  # noqa: E731
    assert strip(scored["cells"]) == strip(built_in["cells"])
    assert strip(scored["collisions"]) == strip(built_in["collisions"])
    pairs = next(c for c in scored["collisions"] if c["protocol"] == "originals_all_pairs")
    assert pairs["n_pairs"] == 3 * 3  # across the two shoots only
    for key in ("max_side", "decode", "content_sha256", "images"):
        assert scored["dataset"][key] == built_in["dataset"][key], key
