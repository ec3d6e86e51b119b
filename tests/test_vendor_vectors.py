"""A vendor's vectors and weighted bit hashes, imported with `score`: the same numbers as the
equivalent external hasher in `run`, collisions checked against scipy."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from harness import results
from harness.cli import main
from tests.conftest import REPO, run_cli, synthetic_image

VENDOR = REPO / "tests" / "vendor" / "imagehash_vendor.py"
CLIENT = REPO / "tests" / "vendor" / "jsonl_hasher.py"
TRANSFORMS = '["identity", "jpeg@S3", "crop@S2", "gaussian_noise(sigma=10.0)", "hflip"]'
N_IMAGES = 8
LEVELS = 200
#: Cosine distance <= 0.95: a few of these synthetic pictures collide, most do not.
THRESHOLD = 95


def _suite(tmp_path, algorithm, threshold):
    """A suite whose one algorithm is the external twin of what the vendor computes offline."""
    path = tmp_path / "suite.toml"
    path.write_text(
        'name = "vendor-vectors"\nversion = 1\n'
        f"algorithms = [{json.dumps(algorithm)}]\n"
        f"transforms = {TRANSFORMS}\n"
        "bootstrap_resamples = 0\n"
        f"[thresholds]\nacme = [{threshold}]\n"
    )
    return path


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(N_IMAGES):
        synthetic_image(80 + 9 * i, 64 + 5 * (i % 3), seed=10 + i).save(folder / f"im{i}.png")
    return folder


def _export(suite, images, out, *extra):
    command = ["export", "--suite", str(suite), "--dataset", str(images), "--out", str(out)]
    return main([*command, "--quiet", *extra])


def _vendor(export, out, *extra):
    """The vendor's side: their own script and library, only the exported folder."""
    subprocess.run([sys.executable, str(VENDOR), str(export), str(out), *extra], check=True)


def _load(path):
    return results.to_builtins(results.load(path))


def _same_numbers(scored, run):
    """Cells, collisions and the recorded binning agree (both name the algorithm 'acme')."""
    assert scored["cells"] == run["cells"]
    assert scored["collisions"] == run["collisions"]
    keys = ("id", "n_bits", "hash_bits", "distance", "level_unit", "thresholds")
    assert {k: scored["algorithms"][0][k] for k in keys} == {
        k: run["algorithms"][0][k] for k in keys
    }


def test_vector_round_trip_equals_the_external_vector_hasher(tmp_path, images):
    external = (
        f"external(label='acme', command={[sys.executable, str(CLIENT), 'grey_vector']!r}, "
        f"measure='cosine', dims=64, levels={LEVELS})"
    )
    suite = _suite(tmp_path, external, THRESHOLD)
    vendor = tmp_path / "vendor"
    assert _export(suite, images, vendor, "--blind") == 0
    instructions = json.loads((vendor / "export.json").read_text())["return"]
    assert "JSON list of numbers" in instructions
    _vendor(vendor, tmp_path / "vectors.csv", "--vector")
    key = tmp_path / "vendor.key.json"
    command = ["score", str(key), "--hashes", str(tmp_path / "vectors.csv"), "--label", "acme"]
    options = ["--measure", "cosine", "--dims", "64", "--levels", str(LEVELS)]
    assert (
        main([*command, *options, "--threshold", str(THRESHOLD), "--out", str(tmp_path / "s")]) == 0
    )
    assert run_cli(suite, images, tmp_path / "run") == 0
    scored, run = _load(tmp_path / "s" / "results.json"), _load(tmp_path / "run" / "results.json")
    _same_numbers(scored, run)
    assert scored["algorithms"][0]["spec"] == (
        f"precomputed(dims=64,label='acme',levels={LEVELS},measure='cosine')"
    )
    assert scored["algorithms"][0]["distance"].startswith("cosine distance (1 - cos)")

    # All pairs of originals: the histogram is scipy's cosine distances of the vendor's own
    # vectors, binned to the recorded levels.
    names = json.loads(key.read_text())["items"]
    with (tmp_path / "vectors.csv").open() as fh:
        rows = {r["item_id"]: json.loads(r["hash"]) for r in csv.DictReader(fh)}
    originals = sorted((i, rows[name]) for name, at in names.items() for i, c in at if c == 0)
    vectors = np.array([v for _, v in originals], dtype=np.float32).astype(np.float64)
    d = cdist(vectors, vectors, "cosine")[np.triu_indices(N_IMAGES, 1)] / 2 * LEVELS
    assert np.abs(d - np.rint(d)).max() < 0.4999  # no pair on a bin's edge: the count is exact
    expected = np.bincount(np.rint(d).astype(int), minlength=LEVELS + 1)
    pairs = next(c for c in scored["collisions"] if c["protocol"] == "originals_all_pairs")
    assert pairs["n_pairs"] == N_IMAGES * (N_IMAGES - 1) // 2
    assert pairs["hist"] == expected.tolist()
    fpr = pairs["metrics"][0]
    assert fpr["params"] == {"threshold": THRESHOLD}
    assert fpr["k"] == int(expected[: THRESHOLD + 1].sum()) > 0


def test_weighted_bits_round_trip_equals_the_external_weighted_hasher(tmp_path, images):
    weights = [2.0] * 16 + [1.0] * 32 + [0.25] * 16  # low frequencies count most
    (tmp_path / "weights.json").write_text(json.dumps(weights))
    external = (
        f"external(label='acme', command={[sys.executable, str(CLIENT), 'phash']!r}, bits=64, "
        f"measure='weighted_hamming', weights={weights!r}, levels=64)"
    )
    suite = _suite(tmp_path, external, 8)
    export = tmp_path / "export"
    assert _export(suite, images, export) == 0
    _vendor(export, tmp_path / "phash.csv")
    command = ["score", str(export), "--hashes", str(tmp_path / "phash.csv"), "--label", "acme"]
    options = ["--measure", "weighted_hamming", "--weights", str(tmp_path / "weights.json")]
    options += ["--levels", "64", "--threshold", "8"]
    assert main([*command, *options, "--out", str(tmp_path / "s")]) == 0
    assert run_cli(suite, images, tmp_path / "run") == 0
    scored, run = _load(tmp_path / "s" / "results.json"), _load(tmp_path / "run" / "results.json")
    _same_numbers(scored, run)
    assert scored["algorithms"][0]["level_unit"] == "levels"
    # Unweighted Hamming of the same file counts other distances.
    assert main([*command, "--threshold", "8", "--out", str(tmp_path / "h")]) == 0
    plain = _load(tmp_path / "h" / "results.json")
    assert plain["cells"] != scored["cells"]


@pytest.fixture
def vector_export(tmp_path, images):
    suite = tmp_path / "suite.toml"
    suite.write_text(
        f'algorithms = ["phash"]\ntransforms = {TRANSFORMS}\nbootstrap_resamples = 0\n'
    )
    export = tmp_path / "export"
    assert _export(suite, images, export) == 0
    _vendor(export, tmp_path / "vectors.csv", "--vector")
    with (tmp_path / "vectors.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return tmp_path, export, rows


def _write(path, rows):
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _second(rows, value):
    """The vendor's rows with the second row's hash replaced."""
    return [rows[0], {**rows[1], "hash": value}, *rows[2:]]


@pytest.mark.parametrize(
    ("change", "options", "message"),
    [
        (lambda r: _second(r, json.dumps([0.5] * 63)), ["--dims", "64"],
         "has 63 numbers but --dims says 64."),
        (lambda r: _second(r, json.dumps([0.5] * 63)), [],
         "hashes have different lengths: i000000-c001 has 63 numbers, i000000-c000 64"),
        (lambda r: _second(r, "[" + "0.5, " * 63 + "NaN]"), [],
         "has a value that is not a finite float32 (number 64: nan)."),
        (lambda r: _second(r, "[" + "0.5, " * 63 + "1e39]"), [],
         "has a value that is not a finite float32 (number 64: 1e+39)."),
        (lambda r: _second(r, "ffee" * 16), [],
         "the hash of i000000-c001 is not a JSON list of numbers, which a vector hash must be"),
        (lambda r: _second(r, "[0.5, 0.5,"), [], "is not valid JSON"),
        (lambda r: _second(r, '["a", 1]'), [], "is not a list of numbers."),
    ],
)  # fmt: skip
def test_bad_vector_rows_are_refused_in_one_line(vector_export, change, options, message, capsys):
    tmp_path, export, rows = vector_export
    bad = _write(tmp_path / "bad.csv", change(rows))
    command = ["score", str(export), "--hashes", str(bad), "--measure", "cosine", *options]
    assert main([*command, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "\n" not in err
    assert not (tmp_path / "s" / "results.json").exists()


def test_vectors_scored_as_bits_are_refused(vector_export, capsys):
    tmp_path, export, _ = vector_export
    hashes = str(tmp_path / "vectors.csv")
    assert main(["score", str(export), "--hashes", hashes, "--out", str(tmp_path / "s")]) == 2
    assert "is a list of numbers: score vectors with --measure l1, l2 or cosine" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--measure", "cosine", "--bits", "64"], "--bits is for bit hashes"),
        (["--weights", "w.json"], "--weights FILE (a weight per bit) goes with --measure"),
        (["--measure", "weighted_hamming"], "goes with --measure weighted_hamming"),
        (["--measure", "l2", "--dims", "8"], "--measure l2 needs --max-distance D"),
        (["--measure", "cosine", "--max-distance", "3"], "max_distance is for l1 and l2"),
        (["--dims", "8"], "dims is for vector measures"),
        (["--measure", "manhattan"], "'measure' parameter of precomputed"),
        (["--label", "phash"], "is the name of the algorithm 'phash'"),
        # the weights' file is read only once every other option is known good
        (["--measure", "weighted_hamming", "--weights", "w.json", "--dims", "4"], "dims is for"),
        (["--measure", "weighted_hamming", "--weights", "w.json"], "Cannot read the weights"),
    ],
)
def test_inconsistent_options_are_refused_before_anything_is_read(
    tmp_path, options, message, capsys
):
    missing = tmp_path / "nothing-here"  # neither the export nor the hashes exist
    command = ["score", str(missing), "--hashes", str(missing / "h.csv"), *options]
    assert main([*command, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "nothing-here" not in err


def test_weights_must_fit_the_hashes(vector_export, capsys):
    tmp_path, export, _ = vector_export
    hashes = tmp_path / "bits.csv"
    _vendor(export, hashes)
    (tmp_path / "w.json").write_text(json.dumps([1.0] * 32))
    command = ["score", str(export), "--hashes", str(hashes), "--measure", "weighted_hamming"]
    assert main([*command, "--weights", str(tmp_path / "w.json")]) == 2
    assert "has 64 bits but --weights (32 weights) says 32." in capsys.readouterr().err


def test_vendor_exclusions_and_quality_work_with_vectors(vector_export):
    tmp_path, export, rows = vector_export
    rows = [
        {**r, "quality": "5.0" if r["item_id"] == "i000002-c002" else r["quality"]} for r in rows
    ]
    rows = [{**r, "hash": "", "excluded": "too small"} if r["item_id"] == "i000001-c003" else r
            for r in rows]  # fmt: skip
    hashes = _write(tmp_path / "declined.csv", rows)
    command = ["score", str(export), "--hashes", str(hashes), "--measure", "cosine"]
    assert main([*command, "--min-quality", "6", "--out", str(tmp_path / "s")]) == 0
    scored = _load(tmp_path / "s" / "results.json")
    reasons = {(e["image"], e["transform"]): e["reason"] for e in scored["exclusions"]}
    assert reasons == {
        ("im1.png", "crop(keep_area=0.9)"): "vendor: excluded by the vendor: too small",
        ("im2.png", "jpeg(quality=50)"): "vendor: quality 5 below --min-quality 6",
    }
    crop = next(c for c in scored["cells"] if c["transform"] == "crop(keep_area=0.9)")
    assert crop["positives"]["gated"] == ["im1.png"]  # an escape: a miss in the TPR
    assert crop["metrics"][0]["n"] == N_IMAGES
