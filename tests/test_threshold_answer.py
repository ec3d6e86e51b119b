"""The threshold answer through the real command line: one rule everywhere, statuses instead of
placeholders, a given threshold scored like a suite's ``[thresholds]`` entry, reuse of a run."""

import json

import numpy as np
import pytest

from harness import results
from harness.cli import main

TARGETS = (1e-3, 1e-6)  # the default suite's target_fprs


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default suite on the embedded corpus (the README's first command)."""
    out = tmp_path_factory.mktemp("default-run")
    assert main(["run", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out


def _threshold_json(capsys, *args):
    assert main(["threshold", "--quiet", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _placeholders(value, path=""):
    """Every threshold, interval bound or distance in a document that is the -1 placeholder."""
    keys = ("threshold", "threshold_ci95", "distance", "distances", "ci95", "bootstrap_ci95")
    if isinstance(value, dict):
        for k, v in value.items():
            if k in keys and (v == -1 or (isinstance(v, list) and -1 in v)):
                yield f"{path}.{k}"
            yield from _placeholders(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _placeholders(v, f"{path}[{i}]")


def test_one_threshold_rule_everywhere(default_run, capsys):
    result = results.to_builtins(results.load(default_run / "results.json"))
    report = (default_run / "report.md").read_text()
    assert not list(_placeholders(result))
    chosen = {
        (rec["algorithm"], t["target_fpr"]): t["threshold"]
        for rec in result["recommendations"]
        for t in rec["targets"]
    }
    board = {r["algorithm"]: r["threshold"] for r in result["leaderboard"]["rows"]}
    assert result["leaderboard"]["target_fpr"] == TARGETS[0]
    for algo, threshold in board.items():
        assert threshold == chosen[(algo, TARGETS[0])]
    for algo in ("pdq", "average_hash"):
        doc = _threshold_json(capsys, "--algorithm", algo, "--target-fpr", "1e-3")
        assert doc["threshold"] == board[algo] == chosen[(algo, 1e-3)]
        assert doc["hashes_computed"] == 0  # everything came from the run's cache
        assert not list(_placeholders(doc))
        # The Markdown report shows the same number in the leaderboard and Thresholds section.
        row = next(line for line in report.splitlines() if line.startswith(f"| `{algo}` | 0.001"))
        assert f"| {doc['threshold']} [" in row


def test_given_threshold_is_scored_like_the_suites_thresholds_entry(default_run, capsys):
    """`threshold --at 31` = the run's numbers for its `[thresholds] pdq = [31]` entry."""
    result = results.to_builtins(results.load(default_run / "results.json"))
    doc = _threshold_json(capsys, "--algorithm", "pdq", "--at", "31")
    assert doc["mode"] == "fixed"
    assert doc["threshold"] == 31
    cells = {c["transform"]: c for c in result["cells"] if c["algorithm"] == "pdq"}
    for row in doc["tpr"]:
        metric = next(
            m
            for m in cells[row["transform"]]["metrics"]
            if m["name"] == "tpr" and m["params"] == {"threshold": 31}
        )
        assert (row["k"], row["n"], row["ci95"]) == (metric["k"], metric["n"], metric["ci95"])
    collisions = next(
        c
        for c in result["collisions"]
        if c["algorithm"] == "pdq" and c["protocol"] == "originals_all_pairs"
    )
    fpr = next(m for m in collisions["metrics"] if m["params"] == {"threshold": 31})
    assert (doc["fpr"]["k"], doc["fpr"]["n"], doc["fpr"]["ci95"]) == (
        fpr["k"],
        fpr["n"],
        fpr["ci95"],
    )
    fixed = next(r for r in result["recommendations"] if r["algorithm"] == "pdq")["fixed"][0]
    for key in ("fpr", "tpr_pooled", "tpr", "status", "images"):
        assert doc[key] == fixed[key], key
    assert doc["fpr"]["bootstrap_ci95"][0] is not None
    # The quality gate's discarded copy (clock, resize 0.25) counts as a miss, not as absent.
    gated = next(t for t in doc["tpr"] if t["gated"])
    assert gated["n"] == cells[gated["transform"]]["positives"]["n"] + gated["gated"]


def test_answers_from_a_runs_results_file(default_run, capsys):
    path = str(default_run / "results.json")
    from_file = _threshold_json(capsys, "--results", path, "--algorithm", "pdq", "--at", "31")
    hashed = _threshold_json(capsys, "--algorithm", "pdq", "--at", "31")
    assert from_file["hashes_computed"] == 0
    for key in ("fpr", "tpr_pooled", "tpr", "threshold", "status", "reason"):
        assert from_file[key] == hashed[key], key
    for target in ("1e-3", "1e-6", "0.02"):  # a new target is answered from the file too
        a = _threshold_json(
            capsys, "--results", path, "--algorithm", "phash", "--target-fpr", target
        )
        b = _threshold_json(capsys, "--algorithm", "phash", "--target-fpr", target)
        for key in ("threshold", "threshold_ci95", "status", "reason", "calibration", "held_out"):
            assert a[key] == b[key], (target, key)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--calibration-fraction", "0.3"], "calibration fraction 0.5, not 0.3"),
        (["--protocol", "edited_vs_other_originals"], "originals_all_pairs only"),
        (["--algorithm", "pdq_dihedral"], "has no algorithm"),
    ],
)
def test_results_refuse_a_changed_question(default_run, capsys, extra, message):
    args = ["threshold", "--results", str(default_run / "results.json"), "--target-fpr", "1e-3"]
    if "--algorithm" not in extra:
        extra = ["--algorithm", "pdq", *extra]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_results_refuse_a_missing_or_foreign_sidecar(default_run, tmp_path, capsys):
    copy = tmp_path / "results.json"
    copy.write_text((default_run / "results.json").read_text())
    args = ["threshold", "--results", str(copy), "--algorithm", "pdq", "--at", "31"]
    assert main(args) == 2
    assert "Cannot read" in capsys.readouterr().err
    sidecar = results.impostors_path(copy)
    arrays = dict(np.load(results.impostors_path(default_run / "results.json")))
    arrays["a0_vs_calibration"] = arrays["a0_vs_calibration"] + 1
    np.savez(sidecar, **arrays)
    assert main(args) == 2
    assert "digest differs" in capsys.readouterr().err


def test_impostor_histograms_are_per_image_and_add_up(default_run):
    result = results.to_builtins(results.load(default_run / "results.json"))
    sidecar = np.load(results.impostors_path(default_run / "results.json"))
    ids = [i["id"] for i in result["dataset"]["images"]]
    assert sidecar["image_ids"].tolist() == ids
    assert sidecar["split"].tolist() == [i["split"] for i in result["dataset"]["images"]]
    for k, algo in enumerate(sidecar["algorithms"].tolist()):
        vs_cal, vs_ho = sidecar[f"a{k}_vs_calibration"], sidecar[f"a{k}_vs_held_out"]
        meta = next(a for a in result["algorithms"] if a["id"] == algo)
        assert vs_cal.shape == vs_ho.shape == (len(ids), meta["n_bits"] + 1)
        coll = next(
            c
            for c in result["collisions"]
            if c["algorithm"] == algo and c["protocol"] == "originals_all_pairs"
        )
        assert ((vs_cal.sum(axis=0) + vs_ho.sum(axis=0)) // 2).tolist() == coll["hist"]


def test_unresolved_target_states_the_images_needed(capsys):
    assert main(["threshold", "--quiet", "--algorithm", "pdq", "--target-fpr", "1e-9"]) == 0
    text = capsys.readouterr().out
    assert "Status: unresolved - " in text  # plain text by default
    assert "resolving it needs about 154,922 images (3,000,000,000 negative pairs per part" in text


def test_database_sizes_in_float_notation_without_uploads(capsys):
    doc = _threshold_json(
        capsys, "--algorithm", "phash", "--at", "10", "--database-size", "1e6", "2.5e7"
    )
    sizes = [op["database_size"] for op in doc["operational"]]
    assert sizes == [1e6, 2.5e7]
    assert [a["database_size"] for a in doc["flagged_share"]["at"]] == [1e6, 2.5e7]
    # 17 images cannot vouch for a database of 2.5e7: the share is unresolved, not a number.
    assert doc["operational"][1]["kind"] == "unresolved"
    assert doc["operational"][1]["verdict"].startswith("unresolved")
    assert "flagged_uploads_per_day" not in doc["operational"][0]


def test_target_and_given_threshold_are_alternatives(capsys):
    for extra in ([], ["--target-fpr", "1e-3", "--at", "31"]):
        with pytest.raises(SystemExit) as info:
            main(["threshold", "--algorithm", "pdq", *extra])
        assert info.value.code == 2
    assert "--at" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("algorithm", "question"),
    [("pdq<=31 | phash<=10", ("--at", "310")), ("pdq & phash", ("--target-fpr", "1e-2"))],
)
def test_an_algorithm_the_suite_does_not_list_is_hashed_for_the_answer(
    tmp_path, capsys, algorithm, question
):
    """The default suite has no policy: the answer is the one a suite listing it gives."""
    from harness import data

    alone = _threshold_json(capsys, "--algorithm", algorithm, *question)
    listed = tmp_path / "listed.toml"
    default = data.suites()["default"].read_text()
    listed.write_text(default.replace("algorithms = [", f'algorithms = ["{algorithm}", ', 1))
    with_suite = _threshold_json(
        capsys, "--suite", str(listed), "--algorithm", algorithm, *question
    )
    for doc in (alone, with_suite):
        del doc["hashes_computed"], doc["source"]
    assert alone == with_suite
    assert alone["algorithm"]["id"] == algorithm


def test_the_account_rule_is_answered_or_said_to_be_unresolved(default_run, capsys):
    """--account-uploads/--account-matches are never dropped: a probability where the share is
    known, the reason where it is not; counts take either notation (1e6)."""
    args = ["--algorithm", "average_hash", "--at", "30", "--results"]
    args += [str(default_run / "results.json"), "--database-size", "10", "1e6"]
    args += ["--account-uploads", "100", "--account-matches", "2", "--uploads-per-day", "1e6"]
    measured, unresolved = _threshold_json(capsys, *args)["operational"]
    for op in (measured, unresolved):
        assert op["account_rule"] == {"uploads": 100, "matches": 2}
        assert op["uploads_per_day"] == 1_000_000
    assert measured["kind"] == "measured"
    assert 0 <= measured["p_account_flagged"]["value"] <= 1
    assert unresolved["kind"] == "unresolved"
    assert unresolved["p_account_flagged"] is None
    assert (
        "nor how often an innocent account reaches 2 matches in 100 uploads"
        in (unresolved["verdict"])
    )
    assert main(["threshold", "--quiet", *args]) == 0
    text = capsys.readouterr().out
    assert "In production at D = 10:" in text
    assert "Probability an innocent account reaches the k-of-N rule" in text
    assert "In production at D = 1e+06: unresolved" in text
    assert "2 matches in 100 uploads" in text


@pytest.mark.parametrize("value", ["2.5", "0", "many"])
def test_counts_must_be_whole_numbers(value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["threshold", "--algorithm", "pdq", "--at", "31", "--uploads-per-day", value])
    assert info.value.code == 2
    assert "must be a whole number >= 1 such as 1e6" in capsys.readouterr().err


def test_hashing_failures_are_counted_and_over_the_budget_exit_3(tmp_path, capsys):
    from tests.conftest import synthetic_image

    for i in range(4):
        synthetic_image(90 + 7 * i, 70, seed=i).save(tmp_path / f"img{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    command = ["threshold", "--algorithm", "phash", "--at", "10", "--dataset", str(tmp_path)]
    assert main([*command, "--quiet", "--no-cache"]) == 3  # default suite: no failure allowed
    out, err = capsys.readouterr()
    assert "scored on all 4 images" in out  # the answer is printed all the same
    line = next(x for x in err.splitlines() if "failed" in x)
    assert "1 hash of 1 of 5 images failed (rate 0.200 > max_failure_rate 0.0)" in line
    assert "1 x not an image Pillow can identify" in line


@pytest.mark.parametrize(
    ("command", "where"),
    [
        (
            ["threshold", "--algorithm", "precomputed(bits=64,label='acme')", "--at", "5"],
            "threshold",
        ),
        (["threshold", "--algorithm", "dihedral(precomputed(bits=64))", "--at", "5"], "threshold"),
        (["validate", "SUITE"], "run"),
        (["run", "--suite", "SUITE", "--out", "OUT"], "run"),
    ],
)
def test_precomputed_hashes_are_refused_where_images_are_hashed(tmp_path, capsys, command, where):
    suite = tmp_path / "pre.toml"
    suite.write_text(
        'name = "pre"\nversion = 1\nalgorithms = ["phash", "precomputed(bits=64)"]\n'
        'transforms = ["identity"]\n'
    )
    command = [str(suite) if c == "SUITE" else str(tmp_path / "o") if c == "OUT" else c
               for c in command]  # fmt: skip
    assert main([*command, "--quiet"] if command[0] != "validate" else command) == 2
    err = capsys.readouterr().err
    assert f"cannot hash images in `{where}`" in err
    assert "hash-harness score EXPORT --hashes FILE" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_threshold_help_lists_exit_3(capsys):
    with pytest.raises(SystemExit):
        main(["threshold", "--help"])
    assert "  3  finished and printed its answer, but more images failed" in capsys.readouterr().out
