"""External and imported hashers are named by their short suite label in every output; the
full spec stays in the fingerprint, and older results with the long id are handled."""

import json
import sys

import pytest
from PIL import Image

from harness import results
from harness.algorithms import make_algorithm
from harness.algorithms.precomputed import Precomputed
from harness.api import _algorithm_id
from harness.cli import main
from harness.store import algorithm_key
from tests.conftest import REPO, run_cli, synthetic_image

CLIENT = REPO / "tests" / "vendor" / "jsonl_hasher.py"
ACME = f"external(label='acme', command={[sys.executable, str(CLIENT), 'phash']!r}, bits=64)"
LONG = "external(bits=64,label='acme')"  # the id results used before labels


def _suite(path, *algorithms):
    path.write_text(
        'name = "labels"\nversion = 1\n'
        f"algorithms = {json.dumps(list(algorithms))}\n"
        'transforms = ["identity", "jpeg@S3", "hflip"]\n'
        "bootstrap_resamples = 0\n"
    )
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run of pHash beside its external twin labelled 'acme'."""
    tmp = tmp_path_factory.mktemp("labels")
    images = tmp / "imgs"
    images.mkdir()
    for i in range(6):
        synthetic_image(90 + 11 * i, 70, seed=40 + i).save(images / f"im{i}.png")
    suite = _suite(tmp / "suite.toml", "phash", ACME)
    assert run_cli(suite, images, tmp / "out") == 0
    return tmp, tmp / "out"


def test_the_label_is_the_id_in_every_output(run, capsys):
    tmp, out = run
    doc = json.loads((out / "results.json").read_text())
    acme = doc["algorithms"][1]
    assert [a["id"] for a in doc["algorithms"]] == ["phash", "acme"]
    assert acme["spec"] == LONG  # provenance: the full spec and the vendor's argv
    assert acme["command"][-1] == "phash"
    assert {c["algorithm"] for c in doc["cells"]} == {"phash", "acme"}
    assert {c["algorithm"] for c in doc["collisions"]} == {"phash", "acme"}
    for name in ("report.md", "report.html", "report.junit.xml", "results.csv"):
        text = (out / name).read_text()
        assert "acme" in text, name
        assert "external(" not in text.replace(ACME, ""), name  # only the suite's own text
    leaderboard = (out / "report.md").read_text().split("eaderboard", 1)[1]
    assert "| `acme` |" in leaderboard
    capsys.readouterr()

    assert main(["compare", str(out / "results.json"), "--algorithms", "acme", "phash"]) == 0
    shown = capsys.readouterr().out
    assert "acme" in shown
    assert "external(" not in shown
    command = ["threshold", "--results", str(out / "results.json"), "--algorithm", "acme"]
    assert main([*command, "--at", "10", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["algorithm"]["id"] == "acme"
    baseline = tmp / "baseline.json"
    results_file = str(out / "results.json")
    assert main(["baseline", "create", "--results", results_file, "--out", str(baseline)]) == 0
    assert "acme" in json.loads(baseline.read_text())["suite"]["thresholds"]
    checked, junit = tmp / "check.json", tmp / "check.xml"
    command = ["check", results_file, "--baseline", str(baseline), "--json", str(checked)]
    assert main([*command, "--junit", str(junit)]) == 0
    rows = json.loads(checked.read_text())["rows"]
    assert {r["family"] for r in rows} == {"phash", "acme"}
    assert "acme" in junit.read_text()
    assert "external(bits" not in checked.read_text() + junit.read_text()


def _as_before_labels(out, target):
    """The run's results as an older hash-harness wrote them: the long id everywhere."""
    doc = json.loads((out / "results.json").read_text())
    del doc["algorithms"][1]["spec"]
    text = json.dumps(doc, indent=1).replace('"acme"', json.dumps(LONG))
    target.mkdir()
    (target / "results.json").write_text(text)
    return target / "results.json"


def test_older_results_with_the_long_id_are_refused_with_the_reason(run, capsys):
    tmp, out = run
    old = _as_before_labels(out, tmp / "old")
    assert results.load(old).algorithms[1].id == LONG  # still readable and reported
    capsys.readouterr()
    assert main(["compare", str(old), str(out / "results.json")]) == 2
    err = capsys.readouterr().err
    assert f"names the hasher 'acme' by its former id {LONG!r}" in err
    assert "rerun or re-score" in err
    baseline = tmp / "old-baseline.json"
    assert main(["baseline", "create", "--results", str(old), "--out", str(baseline)]) == 0
    assert main(["check", str(out / "results.json"), "--baseline", str(baseline)]) == 2
    assert "the baseline names the hasher 'acme' by its former id" in capsys.readouterr().err
    # Two older files still compare with each other, and threshold finds the hasher by label.
    assert main(["compare", str(old), str(old), "--algorithms", LONG]) == 0
    assert _algorithm_id("acme", results.load(old)) == LONG


@pytest.mark.parametrize(
    ("algorithms", "message"),
    [
        (["phash", ACME, ACME.replace("'phash'", "'dhash'")],
         "algorithms[2]: its label 'acme' is already the name of algorithms[1]"),
        (["phash", "precomputed(label='acme')", ACME], "already the name of algorithms[1]"),
        (["phash", ACME.replace("'acme'", "'phash'")], "is the name of the algorithm 'phash'"),
        ([ACME.replace("'acme'", "'PDQ'")], "is the name of the algorithm 'pdq'"),
        ([ACME.replace("'acme'", "'gate'")], "is the name of the policy 'gate'"),
    ],
)  # fmt: skip
def test_a_suite_whose_labels_collide_is_refused_before_any_pixel(
    tmp_path, algorithms, message, monkeypatch, capsys
):
    suite = _suite(tmp_path / "suite.toml", *algorithms)
    images = tmp_path / "imgs"
    images.mkdir()
    synthetic_image(60, 40).save(images / "one.png")
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("an image was opened"))
    assert main(["validate", str(suite)]) == 2
    assert message in capsys.readouterr().err
    assert run_cli(suite, images, tmp_path / "out") == 2
    assert message in capsys.readouterr().err


def test_the_label_hides_no_parameter_from_the_fingerprint_or_the_cache_key():
    long, short = Precomputed(label="acme", bits=64), Precomputed(label="acme", bits=32)
    assert long.id == short.id == "acme"
    assert long.fingerprint() != short.fingerprint()
    assert make_algorithm(long.spec) == long

    class Cached(Precomputed):  # as if a labelled adapter's hashes could be cached
        cacheable = True

    assert algorithm_key(Cached(label="acme", bits=64)) != algorithm_key(
        Cached(label="acme", bits=32)
    )
    moved = make_algorithm(ACME.replace("'phash'", "'dhash'"))
    assert moved.id == "acme"
    assert moved.fingerprint() != make_algorithm(ACME).fingerprint()  # another command
    assert algorithm_key(moved) is None  # a vendor binary is never served from the cache
