"""Blind vendor evaluation: export, hash offline, score - equal to the built-in pipeline."""

import csv
import re
import sys

import numpy as np
import pytest
from PIL import Image

from harness import results
from harness.algorithms import make_algorithm
from harness.cli import main
from tests.conftest import holding_output_lock, run_cli, synthetic_image

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
                "--max-failure-rate",
                "0.5",
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


def test_missing_vendor_hashes_become_failures_and_exit_3_as_run_does(exported, capsys):
    tmp_path, suite, folder, out = exported
    _vendor_csv(out, tmp_path / "vendor.csv", skip={"i000001-c002"})
    command = ["score", str(out), "--hashes", str(tmp_path / "vendor.csv"), "--quiet"]
    capsys.readouterr()
    # broken.png and the missing hash: 2 of 6 images failed, over the suite's budget of 0.
    assert main([*command, "--out", str(tmp_path / "s")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("hash-harness: 2 of 6 images failed (rate 0.333 > max_failure_rate 0")
    assert err.count("\n") == 1  # --quiet: no line per file, only the failure line
    failures = results.to_builtins(results.load(tmp_path / "s" / "results.json"))["failures"]
    assert any(f["error"] == "no hash for this item in the vendor file" for f in failures)
    assert "FAILED (too many image failures)" in (tmp_path / "s" / "report.md").read_text()
    assert run_cli(str(suite), str(folder), str(tmp_path / "run")) == 3  # the same budget
    assert main([*command, "--max-failure-rate", "0.4", "--out", str(tmp_path / "t")]) == 0


def test_score_help_lists_exit_3(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    out = capsys.readouterr().out
    assert "3  finished and wrote its output, but more images failed than allowed" in out
    assert "--quiet" in out


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: [*rows, ["i999999-c000", "00" * 8]], "ids that are not in the export"),
        (
            lambda rows: [*rows, [rows[1][0], "00" * 8]],
            "different rows for one id (1 of them, e.g.",
        ),
        (lambda rows: [rows[0], [rows[1][0], rows[1][1][:-2]], *rows[2:]], "different lengths"),
        (lambda rows: [rows[0], [rows[1][0], "zz" * 8], *rows[2:]], "neither hex nor 0/1"),
        (lambda rows: [["id", "value"], *rows[1:]], "columns item_id and hash"),
        (lambda rows: rows[:1], "has no hashes"),
        (lambda rows: [r for r in rows if not r[0].endswith("c000")], "hashes no original"),
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
    _vendor_csv(out, tmp_path / "hex.csv")
    command = ["score", str(out), "--max-failure-rate", "0.5", "--quiet", "--hashes"]
    # 0/1 digits only: 64 bits, or 256 in hex? Never guessed.
    assert main([*command, str(tmp_path / "bits.csv"), "--out", str(tmp_path / "s")]) == 2
    assert (
        "every hash is written with the digits 0 and 1 only, which reads as 64 bits (one digit "
        "a bit) or 256 (hex): say which with --bits 64 or --bits 256."
    ) in capsys.readouterr().err
    assert (
        main([*command, str(tmp_path / "bits.csv"), "--bits", "64", "--out", str(tmp_path / "s")])
        == 0
    )
    assert main([*command, str(tmp_path / "hex.csv"), "--out", str(tmp_path / "h")]) == 0
    load = lambda name: results.to_builtins(results.load(tmp_path / name / "results.json"))  # noqa: E731
    assert load("s")["cells"] == load("h")["cells"]
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


def _rows(path):
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def _write(path, rows, encoding="utf-8"):
    with path.open("w", newline="", encoding=encoding) as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_a_hex_hash_of_digits_0_and_1_is_hex_and_an_all_zero_file_needs_bits(exported, capsys):
    tmp_path, _, _, out = exported
    _vendor_csv(out, tmp_path / "v.csv")
    rows = _rows(tmp_path / "v.csv")
    command = ["score", str(out), "--max-failure-rate", "0.5", "--quiet", "--hashes"]
    # One hex hash that happens to use only 0 and 1 in a hex file: hex, 64 bits like the rest.
    mixed = _write(tmp_path / "mixed.csv", [*rows[:2], [rows[2][0], "0101000000000001"], *rows[3:]])
    assert main([*command, str(mixed), "--out", str(tmp_path / "m")]) == 0
    doc = results.to_builtins(results.load(tmp_path / "m" / "results.json"))
    assert doc["algorithms"][0]["spec"] == "precomputed(bits=64,label='vendor')"
    assert doc["algorithms"][0]["operating_thresholds"][0]["bits"] == 10  # as pHash's
    # A file of all-zero 64-bit hashes is 16 bits or 64: refused, then read as declared.
    zeros = _write(tmp_path / "zeros.csv", [rows[0], *[[r[0], "0" * 16] for r in rows[1:]]])
    capsys.readouterr()
    assert main([*command, str(zeros), "--out", str(tmp_path / "z")]) == 2
    assert "--bits 16 or --bits 64." in capsys.readouterr().err
    assert not (tmp_path / "z" / "results.json").exists()
    assert main([*command, str(zeros), "--bits", "64", "--out", str(tmp_path / "z")]) == 0
    doc = results.to_builtins(results.load(tmp_path / "z" / "results.json"))
    assert doc["algorithms"][0]["spec"] == "precomputed(bits=64,label='vendor')"


def test_spreadsheet_csv_bom_padding_case_and_repeated_rows_are_read(exported, capsys):
    """Excel's "CSV UTF-8" (a byte-order mark), ids and hashes padded with spaces or written in
    upper case, and a row repeated exactly score as the plain file does."""
    tmp_path, _, _, out = exported
    _vendor_csv(out, tmp_path / "v.csv")
    rows = _rows(tmp_path / "v.csv")
    messy = [rows[0], *[[f" {r[0].upper()} ", f" {r[1].upper()}  "] for r in rows[1:]], rows[3]]
    bom = _write(tmp_path / "excel.csv", messy, encoding="utf-8-sig")
    assert bom.read_bytes()[:3] == b"\xef\xbb\xbf"
    command = ["score", str(out), "--max-failure-rate", "0.5", "--quiet", "--hashes"]
    capsys.readouterr()
    assert main([*command, str(bom), "--out", str(tmp_path / "messy")]) == 0
    assert "1 row repeats an earlier row exactly (same id and hash); each id is scored once" in (
        capsys.readouterr().err
    )
    assert main([*command, str(tmp_path / "v.csv"), "--out", str(tmp_path / "plain")]) == 0
    load = lambda name: results.to_builtins(results.load(tmp_path / name / "results.json"))  # noqa: E731
    assert load("messy")["cells"] == load("plain")["cells"]
    assert load("messy")["collisions"] == load("plain")["collisions"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 20, "Cannot read"),  # binary: not UTF-8
        ("".join(chr(0x100 + (7 * k) % 0x1E00) for k in range(5000)).encode(), "needs a header"),
        (b"item_id,hash\n" + b"x" * 20_000 + b",00\n", "ids that are not in the export"),
        (b"item_id,hash\ni000001-c000," + b"0f" * 9000 + b"\n", "has 72000 bits; at most 65536"),
    ],
)
def test_garbage_and_oversized_hashes_get_a_short_one_line_refusal(
    exported, content, message, capsys
):
    tmp_path, _, _, out = exported
    (tmp_path / "bad.csv").write_bytes(content)
    assert main(["score", str(out), "--hashes", str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1, err
    assert len(err) < 400, err


def test_a_label_is_a_short_identifier(exported, capsys):
    tmp_path, _, _, out = exported
    (tmp_path / "v.csv").write_text("item_id,hash\n")
    assert main(["score", str(out), "--hashes", str(tmp_path / "v.csv"), "--label", "a" * 33]) == 2
    err = capsys.readouterr().err
    assert "must be an identifier of at most 32 characters. Got 'aaaa" in err
    assert len(err) < 250


def test_exported_pixels_are_the_edited_pixels(exported):
    _, _, _, out = exported
    with (out / "manifest.csv").open() as fh:
        item = next(r for r in csv.DictReader(fh) if r["column"].startswith("gaussian_noise"))
    exported_image = Image.open(out / item["file"]).convert("RGB")
    from transforms import parse_chain

    source = Image.open(out.parent / "imgs" / item["image_id"]).convert("RGB")
    expected = parse_chain(item["column"]).apply(source, suite_seed=0, image_id=item["image_id"])
    assert np.array_equal(np.asarray(exported_image), np.asarray(expected))


def test_export_replaces_an_earlier_export_and_refuses_other_files(exported, capsys):
    tmp_path, suite, folder, out = exported
    stale = out / "images" / "i000099" / "c007.png"  # as a larger earlier export left it
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    small = tmp_path / "small.toml"
    small.write_text(SUITE.replace('"jpeg@S3", "crop@S2", ', ""))
    command = ["export", "--dataset", str(folder), "--out", str(out), "--quiet"]
    assert main([*command, "--suite", str(small)]) == 0
    with (out / "manifest.csv").open() as fh:
        listed = {row["file"] for row in csv.DictReader(fh)}
    on_disk = {p.relative_to(out).as_posix() for p in (out / "images").rglob("*.png")}
    assert on_disk == listed  # nothing stale beside the new manifest
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "images", "manifest.csv"]
    (out / "vendor.csv").write_text("item_id,hash\n")
    capsys.readouterr()
    assert main([*command, "--suite", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "holds vendor.csv, which export did not write" in err
    assert err.count("\n") == 1
    assert (out / "vendor.csv").exists()
    assert len(list((out / "images").rglob("*.png"))) == len(listed)


@pytest.mark.skipif(sys.platform == "win32", reason="output folders are locked with flock")
@pytest.mark.parametrize("blind", [False, True])
def test_export_is_refused_while_another_command_writes_its_folder(tmp_path, blind, capsys):
    out = tmp_path / "out"
    with holding_output_lock(out):  # a run or export writing there
        command = ["export", "--suite", "ci", "--dataset", "skimage[2]", "--out", str(out)]
        assert main([*command, *(["--blind"] if blind else []), "--quiet"]) == 2
        assert "is being written by another hash-harness command" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [results.LOCK_FILE]


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


@pytest.mark.parametrize(
    ("declared", "default"),
    [
        ({"bits": 64}, 10),  # the built-in 64-bit hashes' usual threshold
        ({"bits": 256}, 31),  # PDQ's
        ({"bits": 128}, 13),  # no usual value: 10%
        ({"bits": 256, "weights": (1.0,) * 256, "measure": "weighted_hamming"}, 100),
        ({"measure": "cosine", "dims": 512}, 100),  # 10% of 1000 levels
    ],
)
def test_default_threshold_of_an_imported_hash(declared, default):
    from harness.algorithms.external import External
    from harness.offline import vendor_algorithm

    assert vendor_algorithm("acme", **declared).default_threshold().bits == default
    external = External(label="acme", command=("x",), **declared)
    assert external.default_threshold().bits == default
    assert external.operating_thresholds()[0].bits == default  # recorded with its source


def test_a_cosine_import_records_its_default_and_names_its_distance(exported):
    tmp_path, _, _, out = exported
    rng = np.random.default_rng(0)
    with (out / "manifest.csv").open() as fh:
        items = [row["item_id"] for row in csv.DictReader(fh)]
    vectors = tmp_path / "vectors.csv"
    with vectors.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["item_id", "hash"])
        writer.writerows([i, str([round(float(x), 4) for x in rng.normal(size=8)])] for i in items)
    command = ["score", str(out), "--hashes", str(vectors), "--measure", "cosine", "--quiet"]
    command += ["--max-failure-rate", "0.5"]  # the fixture's broken image
    assert main([*command, "--out", str(tmp_path / "s")]) == 0
    algo = results.to_builtins(results.load(tmp_path / "s" / "results.json"))["algorithms"][0]
    assert algo["thresholds"] == [100]
    assert algo["operating_thresholds"] == [
        {"bits": 100, "source": "no usual value for cosine: 10% of the 1000 levels"}
    ]
    report = (tmp_path / "s" / "report.md").read_text()
    assert "matches** when its distance (Hamming bits; `vendor`: cosine distance" in report
    assert "its Hamming distance is at most" not in report


@pytest.mark.parametrize(
    ("options", "transform", "message"),
    [
        ([], lambda h: h[1:], r"has 15 hex digits, an odd number \(two digits a byte\): a leading"),
        (["--bits", "64"], lambda h: h[2:], r"says 64 \(14 hex digits: leading zeros"),
        (["--measure", "l2"], None, "--measure l2 needs --max-distance D"),
        (["--measure", "l1", "--max-distance", "1e-30"], None, "max_distance 1e-30 is below 1e-06"),
        (["--levels", "50"], None, "--levels is for distances binned to levels"),
        (["--threshold", "10", "10"], None, "--threshold 10 10 repeats a value"),
    ],
)
def test_imported_hash_options_and_short_hex_get_a_precise_refusal(
    exported, options, transform, message, capsys
):
    tmp_path, _, _, out = exported
    first = []

    def change(value):  # only the first hash loses its leading digits
        first.append(value)
        return transform(value) if transform and len(first) == 1 else value

    _vendor_csv(out, tmp_path / "v.csv", transform=change)
    command = ["score", str(out), "--hashes", str(tmp_path / "v.csv"), "--out", str(tmp_path / "s")]
    assert main([*command, *options]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert err.count("\n") == 1
    assert not (tmp_path / "s" / "results.json").exists()


def test_header_names_and_measure_are_read_regardless_of_case(exported, capsys):
    tmp_path, _, _, out = exported
    _vendor_csv(out, tmp_path / "v.csv")
    text = (tmp_path / "v.csv").read_text().split("\n", 1)[1]
    (tmp_path / "u.csv").write_text("Item_ID, Hash \n" + text)
    command = ["score", str(out), "--hashes", str(tmp_path / "u.csv"), "--quiet"]
    command += ["--max-failure-rate", "0.5"]  # the fixture's broken image
    assert main([*command, "--measure", "HAMMING", "--out", str(tmp_path / "s")]) == 0
    (tmp_path / "d.csv").write_text("item_id,Hash,HASH\n")
    assert main(["score", str(out), "--hashes", str(tmp_path / "d.csv")]) == 2
    assert "names a column twice" in capsys.readouterr().err
