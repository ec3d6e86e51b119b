"""Never a silent wrong number: cache integrity, decode policies, output sets, hostile names."""

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from harness import results
from harness.core.errors import HarnessError
from harness.escaping import visible, xml_attr, xml_text
from harness.pipeline import hash_suite, run_suite
from harness.store import HashStore
from harness.suite import load_suite, parse_suite
from tests.conftest import reference_dir, synthetic_image

SUITE = {
    "algorithms": ["phash", "pdq"],
    "transforms": ["identity", "jpeg@S3", "crop@S2"],
    "bootstrap_resamples": 0,
}


@pytest.fixture
def folder(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(8):
        synthetic_image(90 + 5 * i, 70, seed=i).save(imgs / f"img{i:02d}.png")
    return imgs


def _comparable(result):
    return results.to_json(results.comparable(result))


# -- cache integrity --------------------------------------------------------------------------


def test_flipped_cache_bits_and_a_swapped_file_give_the_uncached_answer(folder, tmp_path):
    suite = parse_suite(SUITE)
    cache = tmp_path / "c.sqlite"
    with HashStore(cache) as store:
        run_suite(suite, dataset=str(folder), store=store)
    # Flip one bit in every PDQ value of the cache, behind its back.
    db = sqlite3.connect(cache)
    rows = db.execute(
        "SELECT sha256, column_key, algorithm_key, value FROM hashes "
        "WHERE algorithm_key LIKE 'pdq%' AND value IS NOT NULL"
    ).fetchall()
    assert rows
    with db:
        for sha, col, algo, value in rows:
            flipped = bytes([value[0] ^ 0x01]) + value[1:]
            db.execute(
                "UPDATE hashes SET value = ? WHERE sha256 = ? AND column_key = ? "
                "AND algorithm_key = ?",
                (flipped, sha, col, algo),
            )
    db.close()
    # Replace a file by another image of the same byte size with the old mtime restored.
    victim = folder / "img03.png"
    stat = victim.stat()
    synthetic_image(60, 40, seed=42).save(victim)  # another picture, a smaller file
    data = victim.read_bytes()
    assert len(data) < stat.st_size
    victim.write_bytes(data + b"\0" * (stat.st_size - len(data)))  # padded: PNG ignores the tail
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert victim.stat().st_size == stat.st_size
    assert victim.stat().st_mtime_ns == stat.st_mtime_ns

    with HashStore(cache, say=lambda line: None) as store:
        cached = results.to_builtins(run_suite(suite, dataset=str(folder), store=store))
    plain = results.to_builtins(run_suite(suite, dataset=str(folder)))
    assert _comparable(cached) == _comparable(plain)
    swapped = next(i for i in cached["dataset"]["images"] if i["id"] == "img03.png")
    assert swapped["status"] == "ok"
    assert (swapped["width"], swapped["height"]) == (60, 40)  # the new picture, not the cached one
    faults = cached["run"]["cache"]["faults"]
    # Every flipped row that was read is reported once: all but the 4 columns of the swapped
    # image, whose new content has a new key.
    assert len(faults) == len(rows) - 4
    assert all(f["kind"] == "checksum mismatch" for f in faults)
    assert any("pdq" in f["detail"] for f in faults)


def test_cli_reports_cache_faults_on_stderr(folder, tmp_path, capsys):
    suite_file = tmp_path / "s.toml"
    suite_file.write_text(
        'algorithms = ["phash"]\ntransforms = ["jpeg@S3"]\nbootstrap_resamples = 0\n'
    )
    cache = tmp_path / "c.sqlite"
    base = ["run", "--suite", str(suite_file), "--dataset", str(folder), "--cache", str(cache)]
    from harness.cli import main

    assert main([*base, "--out", str(tmp_path / "a"), "--quiet"]) == 0
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE hashes SET value = zeroblob(8) WHERE status = 'ok'")
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "cache fault(s)" in err
    assert "computed again" in err
    a = results.to_builtins(results.load(tmp_path / "a" / "results.json"))
    b = results.to_builtins(results.load(tmp_path / "b" / "results.json"))
    assert _comparable(a) == _comparable(b)


def test_corrupt_and_foreign_cache_files(tmp_path):
    said = []
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database\n" * 100)
    with HashStore(garbage, say=said.append) as store:
        assert store.info()["hashes"] == 0
    assert (tmp_path / "garbage.sqlite.corrupt").exists()
    assert "is corrupt" in said[0]
    assert "moved aside" in said[0]

    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    from harness.store import CacheError

    with pytest.raises(CacheError, match="not a hash-harness cache"):
        HashStore(foreign)
    assert foreign.exists()  # someone else's data is never moved or changed


# -- decode policies --------------------------------------------------------------------------


def _pytx_expected():
    folder = reference_dir("pdq", "pytx")
    with (folder / "expected.csv").open() as fh:
        return folder, {row["file"]: row["pdq_hex"] for row in csv.DictReader(fh)}


def _pdq_through_the_loader(tmp_path, policy):
    folder, expected = _pytx_expected()
    data = tmp_path / "pytx"
    data.mkdir()
    for name in expected:
        os.symlink(folder / name, data / name)
    suite = parse_suite(
        {
            "algorithms": ["pdq(quality_gate=0)"],
            "transforms": ["identity"],
            "dataset": str(data),
            "decode": policy,
            "bootstrap_resamples": 0,
        }
    )
    dataset, corpus, _ = hash_suite(suite, None, workers=1, quiet=True)
    assert dataset.decode == policy
    got = {}
    for i, image_id in enumerate(corpus.image_ids):
        assert corpus.ok[0][0, i], image_id
        got[image_id] = corpus.packed[0][0, i].tobytes().hex()
    return expected, got


def test_threatexchange_pdq_vectors_through_the_dataset_loader(tmp_path):
    """`reference` decoding through suite -> dataset loader -> runner: 4/4 exact."""
    expected, got = _pdq_through_the_loader(tmp_path, "reference")
    assert got == expected


def test_viewer_policy_differs_from_the_reference_on_transparent_and_16_bit(tmp_path):
    expected, got = _pdq_through_the_loader(tmp_path, "viewer")
    off = {
        name: int(
            np.unpackbits(
                np.frombuffer(bytes.fromhex(got[name]), np.uint8)
                ^ np.frombuffer(bytes.fromhex(want), np.uint8)
            ).sum()
        )
        for name, want in expected.items()
    }
    assert off["rgb.jpeg"] == off["sample-b.jpg"] == 0
    assert off["LA.png"] > 31  # the two policies really differ
    assert off["I16.png"] > 31


def test_decode_policy_is_recorded_and_part_of_the_cache_key(tmp_path):
    img = tmp_path / "imgs"
    img.mkdir()
    rgba = np.zeros((60, 80, 4), np.uint8)
    rgba[10:50, 10:70] = (0, 0, 0, 255)  # black line art on a transparent background
    Image.fromarray(rgba, "RGBA").save(img / "art.png")
    synthetic_image(80, 60, seed=1).save(img / "photo.png")
    cache = tmp_path / "c.sqlite"
    out = {}
    for policy in ("viewer", "reference", "viewer"):
        suite = parse_suite({**SUITE, "algorithms": ["phash"], "decode": policy})
        with HashStore(cache) as store:
            out.setdefault(policy, []).append(
                results.to_builtins(run_suite(suite, dataset=str(img), store=store))
            )
    for policy in ("viewer", "reference"):
        assert out[policy][0]["dataset"]["decode"] == policy
        assert out[policy][0]["suite"]["config"]["decode"] == policy
    art = {p: next(i for i in out[p][0]["dataset"]["images"] if i["id"] == "art.png") for p in out}
    assert art["viewer"]["sha256"] != art["reference"]["sha256"]
    assert _comparable(out["viewer"][0]) == _comparable(out["viewer"][1])


def test_the_api_run_takes_a_decode_policy(tmp_path):
    import harness

    img = tmp_path / "imgs"
    img.mkdir()
    Image.fromarray(np.zeros((60, 80, 4), np.uint8), "RGBA").save(img / "clear.png")
    synthetic_image(80, 60, seed=1).save(img / "photo.png")
    suite = parse_suite({**SUITE, "algorithms": ["phash"]})
    run = harness.run(suite, dataset=str(img), decode="reference", workers=1, cache=False)
    assert run.document.dataset.decode == "reference"
    assert run.document.suite.config["decode"] == "reference"
    default = harness.run(suite, dataset=str(img), workers=1, cache=False)
    assert default.document.dataset.decode == "viewer"
    with pytest.raises(HarnessError, match="decode"):
        harness.run(suite, dataset=str(img), decode="raw", workers=1, cache=False)
    saved = run.save(tmp_path / "out" / "results.json")
    assert sorted(p.name for p in saved.parent.iterdir()) == [
        "results.impostors.npz",
        "results.json",
    ]
    reloaded = results.load(saved)
    assert set(results.load_impostors(saved, reloaded)) == {"phash"}


def test_multi_frame_files_say_which_frame(tmp_path):
    img = tmp_path / "imgs"
    img.mkdir()
    frames = [synthetic_image(64, 48, seed=s) for s in range(3)]
    frames[0].save(img / "anim.gif", save_all=True, append_images=frames[1:])
    synthetic_image(64, 48, seed=9).save(img / "still.png")
    result = results.to_builtins(
        run_suite(parse_suite({**SUITE, "algorithms": ["phash"]}), dataset=str(img))
    )
    entry = {i["id"]: i for i in result["dataset"]["images"]}
    assert entry["anim.gif"]["frame"] == "1 of 3"
    assert "frame" not in entry["still.png"]


# -- hostile inputs on the command line -------------------------------------------------------


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def _one_clean_line(proc):
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("hash-harness:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def small_suite(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(
        'name = "small"\nalgorithms = ["phash"]\ntransforms = ["identity", "jpeg@S3"]\n'
        "bootstrap_resamples = 0\n"
    )
    return path


def _junit_parses(out):
    ET.parse(out / "report.junit.xml")  # noqa: S314 - our own output


def test_a_folder_and_files_with_non_utf8_names(tmp_path, small_suite):
    root = os.fsencode(tmp_path) + b"/caf\xe9-imgs"
    os.mkdir(root)
    for i, name in enumerate([b"ok.png", b"na\xefve-\xff.png", b"bad-\x1b[31m.png"]):
        synthetic_image(80, 60, seed=i).save(os.fsdecode(root + b"/" + name))
    with open(root + b"/broken-\xfe.png", "wb") as fh:
        fh.write(b"not an image")
    out = tmp_path / "out"
    proc = _cli(
        "run",
        "--suite",
        str(small_suite),
        "--dataset",
        os.fsdecode(root),
        "--out",
        str(out),
        "--no-cache",
        "--max-failure-rate",
        "0.5",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = results.to_builtins(results.load(out / "results.json"))
    ids = {i["id"] for i in result["dataset"]["images"]}
    assert ids == {"ok.png", "na\\xefve-\\xff.png", "bad-\x1b[31m.png", "broken-\\xfe.png"}
    assert result["dataset"]["name"].endswith("caf\\xe9-imgs")
    assert [f["image"] for f in result["failures"]] == ["broken-\\xfe.png"]
    _junit_parses(out)
    assert "\x1b" not in (out / "report.md").read_text()
    for action in ("info", "verify"):
        proc = _cli("datasets", action, os.fsdecode(root))
        assert proc.returncode in (0, 3), proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "\x1b" not in proc.stdout


def test_hidden_and_non_regular_files_are_listed_as_skipped(tmp_path):
    from datasets_benign import open_dataset

    synthetic_image(40, 30).save(tmp_path / "a.png")
    synthetic_image(40, 30).save(tmp_path / ".hidden.png")
    os.mkfifo(tmp_path / "pipe")
    data = open_dataset(str(tmp_path))
    assert [r.id for r in data.records] == ["a.png"]
    reasons = {e["id"]: e["reason"] for e in data.excluded}
    assert reasons[".hidden.png"].startswith("hidden")
    assert reasons["pipe"] == "not a regular file (FIFO)"


@contextmanager
def _tmpfs(path, options):
    path.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def test_output_problems_are_refused_before_any_work(tmp_path, small_suite, folder):
    base = ["run", "--suite", str(small_suite), "--dataset", str(folder), "--no-cache", "--quiet"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    line = _one_clean_line(_cli(*base, "--out", str(a_file)))
    assert "is a file, not a folder" in line
    for name in ("results.json", "results.impostors.npz"):
        (tmp_path / name / name).mkdir(parents=True)
        line = _one_clean_line(_cli(*base, "--out", str(tmp_path / name)))
        assert f"{name} is a folder" in line
    if os.geteuid() == 0:
        with _tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
            proc = _cli(*base, "--out", str(ro / "out"))
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        proc = _cli(*base, "--out", str(ro / "out"))
    assert proc.returncode == 2
    assert "Cannot write to the output folder" in _one_clean_line(proc)


def test_a_full_disk_leaves_the_previous_set_whole(tmp_path, small_suite, folder):
    base = ["run", "--suite", str(small_suite), "--dataset", str(folder), "--no-cache", "--quiet"]
    with _tmpfs(tmp_path / "full", "size=4m") as full:
        out = full / "out"
        assert _cli(*base, "--out", str(out)).returncode == 0
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        assert {"results.json", "results.impostors.npz", "results.csv"} <= set(before)
        more = tmp_path / "bigger.toml"
        more.write_text(small_suite.read_text().replace('"jpeg@S3"]', '"jpeg@S1-S5"]'))
        # Leave room for the previous set (so the check before work passes) but not for the
        # new, larger one: the write itself runs out of space.
        previous = sum(map(len, before.values()))
        (full / "filler").write_bytes(b"\0" * (shutil.disk_usage(full).free - previous - 8192))
        proc = _cli(*base[:2], str(more), *base[3:], "--out", str(out))
        assert proc.returncode == 2, proc.stderr
        line = _one_clean_line(proc)
        assert "no output file was replaced" in line or "bytes free" in line
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        _junit_parses(out)


def test_corrupt_cache_file_on_the_command_line(tmp_path, small_suite, folder):
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"\x00garbage" * 1000)
    out = tmp_path / "out"
    proc = _cli(
        "run",
        "--suite",
        str(small_suite),
        "--dataset",
        str(folder),
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--quiet",
    )
    assert proc.returncode == 0
    assert "moved aside to" in _one_clean_line(proc)
    _junit_parses(out)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t (x)")
    proc = _cli(
        "run",
        "--suite",
        str(small_suite),
        "--dataset",
        str(folder),
        "--cache",
        str(foreign),
        "--out",
        str(out),
        "--quiet",
    )
    assert proc.returncode == 2
    assert "not a hash-harness cache" in _one_clean_line(proc)


def test_control_characters_in_a_suite_name_and_file_names(tmp_path, folder):
    suite = tmp_path / "ctl.toml"
    suite.write_text(
        'name = "evil\\u0001\\u001b[2J\\u0007<x>&\\"|`"\nalgorithms = ["phash"]\n'
        'transforms = ["identity"]\nbootstrap_resamples = 0\n'
    )
    (folder / "bad\x01\x1b[31m<&>.png").write_bytes(b"garbage")
    out = tmp_path / "out"
    proc = _cli(
        "run",
        "--suite",
        str(suite),
        "--dataset",
        str(folder),
        "--out",
        str(out),
        "--no-cache",
        "--max-failure-rate",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stderr
    assert "\x07" not in proc.stderr
    tree = ET.parse(out / "report.junit.xml")  # noqa: S314 - our own output
    assert "\\x01" in tree.getroot().get("name")
    for name in ("report.md", "report.html"):
        text = (out / name).read_text()
        assert "\x01" not in text
        assert "\x1b" not in text
        assert "<x>" not in text
    first = results.to_builtins(results.load(out / "results.json"))
    runs = [str(out / "results.json"), str(out / "results.json")]
    proc = _cli("compare", *runs, "--format", "md")
    assert "\x1b" not in proc.stdout
    assert "\\x1b" in proc.stdout.replace("\\\\", "\\")
    assert first["suite"]["name"].startswith("evil\x01")  # the data itself is kept as given


def test_report_detects_a_mixed_output_set(tmp_path, small_suite, folder):
    base = ["run", "--suite", str(small_suite), "--dataset", str(folder), "--no-cache", "--quiet"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert _cli(*base, "--out", str(a)).returncode == 0
    assert _cli(*base, "--out", str(b)).returncode == 0
    run_a = results.to_builtins(results.load(a / "results.json"))["run"]["id"]
    for name in ("report.md", "report.html", "report.junit.xml"):
        assert results.run_id_of_file(a / name) == run_a
    proc = _cli("report", str(a / "results.json"))
    assert "mixed" not in proc.stderr
    (b / "report.junit.xml").replace(a / "report.junit.xml")  # an old junit beside new results
    proc = _cli("report", str(a / "results.json"))
    assert proc.returncode == 0
    assert "report.junit.xml is from run" in proc.stderr
    assert "mixed output set" in proc.stderr


# -- suites and documents refused in one line -------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('name = "x"\nalgorithms = ["phash"]\n'.encode("utf-16"), "is not UTF-8 text"),
        (bytes(range(256)) * 4, "is not UTF-8 text"),
        (b"a = " + b"[" * 200_000, "too deeply"),
        (b'algorithms = ["phash"]\ntransforms = ["resize(long_side=65535)"]\n', "in [1, 9459]"),
    ],
)
def test_bad_suites_are_refused_in_one_line(tmp_path, content, message, folder, capsys):
    from harness.cli import main

    suite = tmp_path / "bad.toml"
    suite.write_bytes(content)
    out = tmp_path / "out"
    code = main(["run", "--suite", str(suite), "--dataset", str(folder), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("hash-harness:") == 1  # a suite error lists its problems below it
    assert message in err
    assert not (out / "results.json").exists()


def test_over_deep_json_documents_are_refused(tmp_path):
    from harness.core.errors import HarnessError

    for depth in (100, 200_000):
        path = tmp_path / f"deep{depth}.json"
        path.write_text('{"a": ' + "[" * depth + "]" * depth + "}")
        with pytest.raises(HarnessError, match="deep"):
            results.load(path)
    proc = _cli("report", str(tmp_path / "deep200000.json"))
    assert proc.returncode == 2
    assert "too deeply" in _one_clean_line(proc)


# -- property tests ---------------------------------------------------------------------------

_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)


@given(_ANY_TEXT)
def test_escaped_text_is_always_valid_xml_and_visible(text):
    doc = f"<r a={xml_attr(text)}>{xml_text(text)}</r>"
    root = ET.fromstring(doc.encode("utf-8"))  # noqa: S314 - generated here
    assert root.text in (None, visible(text)) or root.text == visible(text)
    shown = visible(text)
    shown.encode("utf-8")  # always encodable, whatever bytes the name held
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_suite_texts_are_a_suite_or_one_suite_error(tmp_path, raw):
    from harness.core.errors import HarnessError

    path = tmp_path / "fuzz.toml"
    path.write_bytes(raw)
    try:
        load_suite(path)
    except HarnessError as exc:
        str(exc).encode("utf-8")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(min_size=1, max_size=30).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_any_file_name_becomes_a_displayable_id(tmp_path, name):
    from datasets_benign import open_dataset

    folder = tmp_path / "names"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    if name in (b".", b".."):
        return
    (Path(os.fsdecode(os.fsencode(folder) + b"/" + name))).write_bytes(b"x")
    data = open_dataset(str(folder))
    ids = [r.id for r in data.records] + [e["id"] for e in data.excluded]
    assert len(ids) == 1
    ids[0].encode("utf-8")
    assert Path(data.records[0].path).exists() if data.records else name.startswith(b".")
