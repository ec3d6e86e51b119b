"""End-to-end: the command line on real files and real processes."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from harness import results
from harness.cli import main
from tests.conftest import holding_output_lock, run_cli, synthetic_image

SMALL_SUITE = """
name = "small"
version = 1
algorithms = ["phash", "pdq"]
transforms = ["identity", "jpeg(quality=50)", "crop(keep_area=0.64)"]
"""


def _write_suite(tmp_path, text=SMALL_SUITE):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


@pytest.fixture
def bad_folder(tmp_path):
    folder = tmp_path / "images <script>"
    folder.mkdir()
    for i in range(4):
        synthetic_image(90 + 10 * i, 70, seed=i).save(folder / f"good{i}.png")
    shutil.copy(folder / "good0.png", folder / "good0_copy.png")
    (folder / "empty.jpg").write_bytes(b"")
    full = (folder / "good1.png").read_bytes()
    (folder / "truncated.png").write_bytes(full[: len(full) // 3])
    (folder / "readme.txt").write_text("not an image")
    (folder / "<script>alert(1).png").write_bytes(b"garbage")
    return folder


def test_default_run_writes_results_and_report(tmp_path):
    """The README's main command on the embedded corpus, with 2 workers."""
    out = tmp_path / "out"
    assert main(["run", "--out", str(out), "--workers", "2", "--quiet"]) == 0
    result = results.to_builtins(results.load(out / "results.json"))
    report = (out / "report.md").read_text()
    assert result["dataset"]["n_images"] == 17
    assert result["status"]["ok"]
    n_cells = len(result["algorithms"]) * len(result["transforms"])
    assert len(result["cells"]) == n_cells
    excluded = {(e["algorithm"], e["transform"]) for e in result["exclusions"]}
    assert {a for a, _ in excluded} == {"pdq"}  # e.g. clock: PDQ quality 34 < 50, not a failure
    assert any(e["image"] == "clock" and e["transform"] == "original" for e in result["exclusions"])
    for cell in result["cells"]:
        out = {
            e["image"]
            for e in result["exclusions"]
            if e["algorithm"] == cell["algorithm"]
            and e["transform"] in ("original", cell["transform"])
        }
        assert cell["positives"]["n"] == 17 - len(out)
        tpr = next(m for m in cell["metrics"] if m["name"] == "tpr")
        assert tpr["ci95"][0] <= tpr["value"] <= tpr["ci95"][1]
        if cell["transform"] == "identity":
            assert tpr["value"] == 1.0
    n_edits = len(result["transforms"]) - 1  # identity is a control, not pooled
    expected_pairs = {
        "originals_all_pairs": 17 * 16 // 2,
        "edited_vs_other_originals": n_edits * 17 * 16,
        "edited_vs_edited": n_edits * 17 * 16 // 2,
        "nearest_impostor": n_edits * 17,  # one nearest other original per edited copy
    }
    for coll in result["collisions"]:
        if coll["algorithm"] == "pdq":  # some hashes excluded by the quality gate: fewer pairs
            assert coll["n_pairs"] <= expected_pairs[coll["protocol"]]
            if coll["protocol"] == "originals_all_pairs":
                assert coll["n_pairs"] == 16 * 15 // 2
        else:
            assert coll["n_pairs"] == expected_pairs[coll["protocol"]]
        for m in coll["metrics"]:
            assert m["ci95"][0] <= m["value"] <= m["ci95"][1]
    assert {c["protocol"] for c in result["collisions"]} == set(expected_pairs)
    strata = result["collisions"][0]["by_category"]
    assert strata["photo"]["n_pairs"] == 7 * 6 // 2  # 7 photographs in the embedded corpus
    assert sum(s["n_images"] for s in strata.values()) == 17
    per_category_tpr = [m for m in result["cells"][0]["metrics"] if "category" in m["params"]]
    assert {m["params"]["category"] for m in per_category_tpr} >= {"photo", "texture"}
    for q in result["quality"]:
        # Distinct images sit near n_bits / 2 for a balanced hash (pHash, PDQ: the check).
        d = q["distances"]
        assert abs(d["mean"] - d["ideal_mean"]) < 0.06 * q["n_bits"], q["algorithm"]
    for rec in result["recommendations"]:
        for target in rec["targets"]:
            # 17 images cannot support a false-match rate of 1e-3, and the results say so.
            assert target["status"] == "unresolved"
            assert "needs at least" in target["reason"]
    split = [i["split"] for i in result["dataset"]["images"]]
    assert 0 < split.count("calibration") < 17
    assert "## Robustness" in report
    assert "## Collisions" in report
    assert "**unresolved**" in report
    assert "(17/17)" in report


def test_results_do_not_depend_on_worker_count(tmp_path):
    suite = _write_suite(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", "--suite", str(suite), "--out", str(a), "--workers", "1", "--quiet"]) == 0
    assert main(["run", "--suite", str(suite), "--out", str(b), "--workers", "2", "--quiet"]) == 0
    ra, rb = results.load(a / "results.json"), results.load(b / "results.json")
    assert results.to_json(results.comparable(ra)) == results.to_json(results.comparable(rb))
    # Reports are the same apart from the run id every file of a set carries.
    assert _without_run_id(a / "report.md") == _without_run_id(b / "report.md")
    sidecar = "results.impostors.npz"  # per-image impostor histograms: the same bytes too
    assert (a / sidecar).read_bytes() == (b / sidecar).read_bytes()


def test_bad_files_become_failures_and_the_rest_is_evaluated(tmp_path, bad_folder):
    suite = _write_suite(tmp_path)
    out = tmp_path / "out"
    code = run_cli(str(suite), str(bad_folder), str(out))
    assert code == 3  # finished, results written, but images failed
    result = results.to_builtins(results.load(out / "results.json"))
    failed = {f["image"]: f for f in result["failures"]}
    assert set(failed) == {"empty.jpg", "truncated.png", "readme.txt", "<script>alert(1).png"}
    assert all(f["stage"] == "decode" and f["error"] for f in failed.values())
    assert "empty file" in failed["empty.jpg"]["error"]
    assert result["dataset"]["n_evaluated"] == 4  # 4 good images; the copy is a duplicate
    assert {"id": "good0_copy.png", "reason": "exact pixel duplicate of good0.png"} in result[
        "dataset"
    ]["excluded"]
    cell = result["cells"][0]
    assert cell["positives"]["n"] == 4
    assert result["collisions"][0]["n_pairs"] == 6
    report = (out / "report.md").read_text()
    assert "<script>" not in report
    assert "\\<script\\>" in report
    # Raising the allowance turns the same run into a success.
    assert run_cli(str(suite), str(bad_folder), str(out), "--max-failure-rate", "0.5") == 0


def test_invalid_suite_is_refused_before_any_work(tmp_path, capsys):
    suite = _write_suite(tmp_path, 'algorithms = ["phahs"]\ntransforms = ["jpeg(quality=0)"]\n')
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'phash'" in err
    assert "The 'quality' parameter of jpeg must be an int in [1, 100]. Got 0 instead." in err
    assert not out.exists()
    assert main(["validate", str(suite)]) == 2


def test_validate_list_and_report(tmp_path, capsys):
    assert main(["validate", str(_write_suite(tmp_path))]) == 0
    assert "valid suite 'small'" in capsys.readouterr().out
    for what in ("transforms", "presets", "ladders", "algorithms", "datasets"):
        assert main(["list", what]) == 0
    assert main(["list", "transforms", "--markdown"]) == 0
    listed = capsys.readouterr().out
    assert "jpeg(quality=75, subsampling='4:2:0', progressive=False)" in listed
    assert "    - quality: an int in [1, 100]" in listed
    assert "| `jpeg` ladder `jpeg@S1-S5` | `quality=75`; an int in [1, 100]" in listed
    assert "| `preset:whatsapp_like` |" in listed
    assert "| `crop_corner` (crop.keep_area; anchor='top_left') |" in listed
    assert "pdq (alias pdqhash): 256 bits" in listed
    assert "skimage: 17 images" in listed
    assert main(["report", str(tmp_path / "missing.json")]) == 2


def test_results_loader_refuses_bad_files(tmp_path):
    truncated = tmp_path / "t.json"
    truncated.write_text('{"schema_version": 1, "suite"')
    newer = tmp_path / "n.json"
    newer.write_text(json.dumps({"schema_version": 99}))
    wrong = tmp_path / "w.json"
    wrong.write_text("[1, 2]")
    from harness.core.errors import HarnessError, SchemaVersionError

    with pytest.raises(HarnessError, match="not valid JSON"):
        results.load(truncated)
    with pytest.raises(SchemaVersionError, match="upgrade hash-harness"):
        results.load(newer)
    with pytest.raises(HarnessError, match="expected a JSON object"):
        results.load(wrong)


def test_module_entry_point_runs_in_a_real_process():
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "list", "algorithms"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "phash" in proc.stdout


def test_near_duplicates_are_grouped_listed_and_never_counted(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        synthetic_image(120, 90, seed=i).save(folder / f"img{i}.png")
    # Same picture, slightly brighter: different pixels (not an exact duplicate), same content.
    near = synthetic_image(120, 90, seed=0).point(lambda v: min(255, v + 3))
    near.save(folder / "img0_brighter.png")
    suite = _write_suite(
        tmp_path,
        SMALL_SUITE + '\n[near_duplicates]\nalgorithm = "pdq"\nmax_distance = 32\n',
    )
    out = tmp_path / "out"
    args = ["run", "--suite", str(suite), "--dataset", str(folder), "--out", str(out), "--quiet"]
    assert main(args) == 0
    result = results.to_builtins(results.load(out / "results.json"))
    near_dupes = result["hygiene"]["near_duplicates"]
    assert near_dupes["groups"] == [["img0.png", "img0_brighter.png"]]
    assert [(p["a"], p["b"]) for p in near_dupes["pairs"]] == [("img0.png", "img0_brighter.png")]
    originals = [c for c in result["collisions"] if c["protocol"] == "originals_all_pairs"]
    assert all(c["n_pairs"] == 5 * 4 // 2 - 1 for c in originals)
    assert "img0\\_brighter.png" in (out / "report.md").read_text()


def test_threshold_command(tmp_path, capsys):
    suite = _write_suite(tmp_path)
    args = ["threshold", "--suite", str(suite), "--algorithm", "phash", "--quiet"]
    assert main([*args, "--target-fpr", "0.05", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["algorithm"]["id"] == "phash"
    assert doc["status"] == "unresolved"  # 17 images: about 36 pairs per part, 60 needed
    assert doc["required"]["images"] > 17
    assert doc["calibration"]["images"] + doc["held_out"]["images"] == 17
    assert [t["transform"] for t in doc["held_out"]["tpr"]] == [
        "jpeg(quality=50)",
        "crop(keep_area=0.64)",
    ]
    ops = [
        "--target-fpr", "0.1", "--database-size", "1000", "--uploads-per-day", "50",
        "--account-uploads", "20", "--account-matches", "2",
    ]  # fmt: skip
    assert main([*args, *ops]) == 0
    text = capsys.readouterr().out
    assert "\nShare of innocent uploads flagged\n" in text  # plain text by default
    assert "\nIn production at D = 1e+03: " in text
    assert "Expected false matches per day" in text
    assert main([*args, *ops, "--format", "md"]) == 0
    assert "## Share of innocent uploads flagged" in capsys.readouterr().out


def test_threshold_piped_is_plain_text(tmp_path):
    """Through a real pipe (`threshold ... | cat`): no Markdown escapes, names as typed."""
    suite = _write_suite(tmp_path, SMALL_SUITE.replace('"small"', '"small (v1)"'))
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "threshold", "--suite", str(suite), "--quiet",
         "--dataset", "skimage[12]", "--algorithm", "PDQ", "--target-fpr", "0.05"],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "HASH_HARNESS_CACHE": str(tmp_path / "cache.sqlite")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "\\" not in proc.stdout
    assert "**" not in proc.stdout
    assert "`" not in proc.stdout
    assert "Threshold for pdq at false-match rate 0.05" in proc.stdout
    assert "Suite small (v1) v1 on skimage[12]" in proc.stdout
    assert "crop(keep_area=0.64)  " in proc.stdout  # a table lined up in columns


def test_names_are_case_insensitive_with_suggestions(capsys):
    from harness.algorithms import make_algorithm

    assert make_algorithm("PDQ").id == "pdq"
    assert make_algorithm("pHash(hash_size=8)").id == make_algorithm("phash").id
    assert main(["threshold", "--algorithm", "PQD", "--target-fpr", "0.01"]) == 2
    assert "Did you mean 'pdq'" in capsys.readouterr().err
    from transforms.catalogue import expand

    assert [c.id for c in expand("JPEG@S1")] == [c.id for c in expand("jpeg@S1")]


def test_list_without_argument_lists_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for what in ("transforms", "presets", "ladders", "algorithms", "datasets"):
        assert f"== {what} ==" in out
    assert "pdq (alias pdqhash): 256 bits" in out
    assert "skimage: 17 images" in out


def test_every_help_has_a_description_and_exit_codes(capsys):
    from harness.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for name in [None, *commands]:
        with pytest.raises(SystemExit) as done:
            main([name, "--help"] if name else ["--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        rest = text.partition("\n\n")[2]
        assert rest.split("\n")[0].strip(), f"{name}: no description"
        assert "exit status:" in text, name
        assert "  2  invalid input" in text, name
    run_help = commands["run"].format_help()
    assert "results.csv" in run_help
    assert "report.html" in run_help


def test_library_warnings_are_one_line_notes(capsys):
    import warnings

    from harness.cli import _note

    with warnings.catch_warnings():
        assert main(["list", "presets"]) == 0
        assert warnings.showwarning is _note  # installed by the command line
        capsys.readouterr()
        warnings.simplefilter("always")
        warnings.warn("Glyph 8804 missing from font\nsecond line", UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err == "hash-harness: note: Glyph 8804 missing from font\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--algorithm", "pdqq", "--target-fpr", "0.01"], "Did you mean 'pdq'"),
        (["--algorithm", "pdq", "--target-fpr", "0.01", "--uploads-per-day", "5"],
         "--uploads-per-day needs --database-size"),
        (["--algorithm", "pdq", "--at", "257"], "(--at) must be a distance in [0, 256]"),
        (["--algorithm", "pdq", "--at", "31", "--results", "r.json", "--suite", "s.toml"],
         "drop --suite"),
        (
            ["--algorithm", "pdq", "--target-fpr", "0.01", "--account-uploads", "5",
             "--account-matches", "2"],
            "--account-uploads needs --database-size",
        ),
    ],
)  # fmt: skip
def test_threshold_refuses_bad_arguments_before_any_work(extra, message, capsys):
    assert main(["threshold", *extra]) == 2
    assert message in capsys.readouterr().err


def test_threshold_target_must_be_a_rate(capsys):
    with pytest.raises(SystemExit) as info:
        main(["threshold", "--algorithm", "pdq", "--target-fpr", "0"])
    assert info.value.code == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err


def _without_run_id(path):
    return re.sub(r"hash-harness run id: [0-9a-f]+", "", path.read_text())


@pytest.mark.skipif(sys.platform == "win32", reason="output folders are locked with flock")
def test_a_second_run_into_the_same_out_is_refused_and_a_killed_runs_lock_is_not(tmp_path, capsys):
    suite, out = _write_suite(tmp_path), tmp_path / "out"
    with holding_output_lock(out) as holder:  # another command writing there
        assert run_cli(suite, "skimage[3]", out) == 2
        err = capsys.readouterr().err
        assert f"is being written by another hash-harness command (process {holder.pid})" in err
        assert "wait for it to finish or pass another --out" in err
        assert err.count("\n") == 1
        assert not (out / "results.json").exists()
    assert (out / results.LOCK_FILE).exists()
    assert run_cli(suite, "skimage[3]", out) == 0
    assert (out / "results.json").exists()
    assert not (out / results.LOCK_FILE).exists()  # released when the command ended


def test_a_subset_larger_than_its_dataset_says_it_used_them_all(tmp_path, capsys):
    assert run_cli(_write_suite(tmp_path), "skimage[100]", tmp_path / "out") == 0
    assert "note: skimage[100] asks for 100 images but skimage has 17: all 17 are used." in (
        capsys.readouterr().err
    )
    assert results.load(tmp_path / "out" / "results.json").dataset.n_images == 17


def test_help_names_every_output_dataset_form_and_the_cache_variable(capsys, monkeypatch):
    monkeypatch.setenv("HASH_HARNESS_CACHE", "/somewhere/cache")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needed in (
        "results.impostors.npz",
        "manifest (.csv/.json)",
        "NAME[N]",
        "0 (the default) = one per core",
        "hashes.sqlite in the folder $HASH_HARNESS_CACHE (set: /somewhere/cache)",
    ):
        assert needed in text
