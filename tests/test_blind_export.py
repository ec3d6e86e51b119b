"""Blind vendor evaluation: opaque names, a key only the evaluator keeps, vendor exclusions."""

import csv
import json
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from harness import results
from harness.cli import main
from tests.conftest import REPO, run_cli, synthetic_image

SUITE = """
name = "blind"
version = 1
algorithms = ["phash"]
transforms = ["identity", "jpeg@S3", "crop@S2", "gaussian_noise(sigma=10.0)", "resize(scale=0.25)"]
bootstrap_resamples = 0
"""
#: Distinctive names that must never reach the vendor (categories are the sub-folders).
NAMES = {
    "harbour": (160, 120),
    "lighthouse": (150, 110),
    "orchard": (140, 130),
    "glacier": (170, 90),
    "meadow": (130, 130),
    "wolf": (200, 140),
}


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "imgs"
    for k, (name, (w, h)) in enumerate(NAMES.items()):
        sub = folder / ("landscapes" if k % 2 else "wildlife")
        sub.mkdir(parents=True, exist_ok=True)
        synthetic_image(w, h, seed=k).save(sub / f"{name}.png")
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    return tmp_path, suite, folder


def _export(suite, folder, out, *extra):
    return main(
        [
            "export",
            "--blind",
            "--suite",
            str(suite),
            "--dataset",
            str(folder),
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )


def _chunks(data: bytes) -> list[bytes]:
    """The chunk types of a PNG file."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        out.append(data[at + 4 : at + 8])
        at += 12 + length
    return out


def test_blind_export_names_no_image_edit_or_category(corpus):
    tmp_path, suite, folder = corpus
    out = tmp_path / "vendor"
    assert _export(suite, folder, out) == 0
    key = json.loads((tmp_path / "vendor.key.json").read_text())
    ids = [im["id"] for im in key["images"]]
    assert len(ids) == len(NAMES)
    # 6 items an image (original + 5 edits); its original and identity copy are one file.
    assert sum(len(at) for at in key["items"].values()) == len(NAMES) * 6
    assert len(key["items"]) == len(NAMES) * 5
    assert sorted(at for at in key["items"].values() if len(at) > 1) == [
        [[i, 0], [i, 1]] for i in range(len(NAMES))
    ]
    # Every name the evaluator knows: ids, their parts, edits and their names, categories.
    secrets_ = {*ids, *NAMES, "landscapes", "wildlife", *key["columns"]}
    secrets_ |= {c.split("(")[0] for c in key["columns"]} | {"imgs", str(folder)}
    files = sorted(p for p in out.rglob("*"))
    assert {p.relative_to(out).as_posix() for p in files} == {
        "export.json",
        "manifest.csv",
        "images",
        *(f"images/{name}.png" for name in key["items"]),
    }
    texts = {"names": "\n".join(p.relative_to(out).as_posix() for p in files)}
    texts["manifest"] = (out / "manifest.csv").read_text()
    texts["export.json"] = (out / "export.json").read_text()
    for name, text in texts.items():
        leaked = sorted(s for s in secrets_ if s.lower() in text.lower())
        assert not leaked, f"{name} names {leaked}"
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert [r["item_id"] for r in rows] == sorted(key["items"])  # shuffled: in name order
    assert list(rows[0]) == ["item_id", "file"]
    for p in files:
        assert p.stat().st_mtime == files[0].stat().st_mtime  # one fixed time for all
    contents = [p.read_bytes() for p in files if p.suffix == ".png"]
    assert len(set(contents)) == len(contents)  # no two files alike: nothing marks an original
    for p in files:
        if p.suffix == ".png":
            data = p.read_bytes()
            assert set(_chunks(data)) <= {b"IHDR", b"IDAT", b"IEND"}, p
            assert not any(s.encode() in data for s in secrets_ if len(s) > 3)
    # Names depend on the secret only, not on the order of images or edits.
    image_of = [key["items"][r["item_id"]][0][0] for r in rows]
    assert image_of != sorted(image_of)
    assert stat.S_IMODE((tmp_path / "vendor.key.json").stat().st_mode) == 0o600
    vendor = json.loads(texts["export.json"])
    assert vendor["blind"] is True
    assert vendor["items"] == len(rows)


def test_blind_names_are_the_secrets_not_the_ids(corpus, capsys):
    tmp_path, suite, folder = corpus
    key = tmp_path / "keys" / "acme.json"
    assert _export(suite, folder, tmp_path / "a", "--key", str(key)) == 0
    assert _export(suite, folder, tmp_path / "b", "--key", str(key)) == 0  # key reused
    assert _export(suite, folder, tmp_path / "c") == 0  # a fresh secret
    listing = {d: sorted(p.name for p in (tmp_path / d / "images").iterdir()) for d in "abc"}
    assert listing["a"] == listing["b"]
    assert not set(listing["a"]) & set(listing["c"])
    # A non-empty folder, or a key inside the vendor folder, is refused before anything is
    # written; the message says where the key goes.
    assert _export(suite, folder, tmp_path / "a") == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert _export(suite, folder, tmp_path / "d", "--key", str(tmp_path / "d" / "k.json")) == 2
    err = capsys.readouterr().err
    assert f"inside the vendor folder {tmp_path / 'd'}, which would hand the vendor" in err
    assert f"put it outside (leave out --key for {tmp_path / 'd.key.json'})" in err
    assert not (tmp_path / "d").exists()
    # A key copied into its vendor folder afterwards (b: the last export with it) still
    # scores, with a warning that the evaluation may not have been blind.
    moved = tmp_path / "b" / "acme.json"
    moved.write_bytes(key.read_bytes())
    first = next(n for n, at in json.loads(key.read_text())["items"].items() if at[0][1] == 0)
    (tmp_path / "one.csv").write_text(f"item_id,hash\n{first},c2924c5532bddfc8\n")
    command = ["score", str(moved), "--hashes", str(tmp_path / "one.csv"), "--quiet"]
    assert main([*command, "--out", str(tmp_path / "ka")]) == 3  # the other items: failures
    assert f"the key {moved} is inside the vendor folder {tmp_path / 'b'}" in (
        capsys.readouterr().err
    )
    # The vendor folder cannot be scored without the key.
    (tmp_path / "x.csv").write_text("item_id,hash\n")
    assert main(["score", str(tmp_path / "a"), "--hashes", str(tmp_path / "x.csv")]) == 2
    assert "blind export: score it with its key file" in capsys.readouterr().err


def _vendor(out: Path, csv_path: Path, *extra: str) -> None:
    """The vendor's side: their own script, their own library, only the vendor folder."""
    subprocess.run(
        [
            sys.executable,
            str(REPO / "tests/vendor/imagehash_vendor.py"),
            str(out),
            str(csv_path),
            *extra,
        ],
        check=True,
    )


def _score(key, hashes, out, *extra):
    command = ["score", str(key), "--hashes", str(hashes), "--label", "acme", "--out", str(out)]
    return main([*command, "--threshold", "10", *extra])


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "algorithm"} for r in rows]


def test_blind_round_trip_equals_a_normal_run(corpus):
    tmp_path, suite, folder = corpus
    assert _export(suite, folder, tmp_path / "vendor") == 0
    _vendor(tmp_path / "vendor", tmp_path / "acme.csv")
    assert _score(tmp_path / "vendor.key.json", tmp_path / "acme.csv", tmp_path / "scored") == 0
    assert run_cli(suite, folder, tmp_path / "run") == 0
    scored = results.to_builtins(results.load(tmp_path / "scored" / "results.json"))
    built_in = results.to_builtins(results.load(tmp_path / "run" / "results.json"))
    assert _strip(scored["cells"]) == _strip(built_in["cells"])
    assert _strip(scored["collisions"]) == _strip(built_in["collisions"])
    assert scored["exclusions"] == []
    # Runs of one suite on the same images sharing no algorithm: compared side by side, the
    # algorithms named in any case (the vendor is imagehash's pHash: nothing differs).
    both = [str(tmp_path / d / "results.json") for d in ("run", "scored")]
    out = tmp_path / "compare.json"
    assert main(["compare", *both, "--format", "json", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["pairing"] == "every algorithm with every other"
    assert [(p["a"], p["b"]) for p in report["pairs"]] == [("run:phash", "scored:acme")]
    assert {t["only_a"] + t["only_b"] for t in report["pairs"][0]["per_transform"]} == {0}
    named = ["--algorithms", "PHash", "ACME", "--format", "json", "--out", str(out)]
    assert main(["compare", *both, *named]) == 0
    assert json.loads(out.read_text())["pairs"] == report["pairs"]
    assert scored["failures"] == []
    assert "acme" in (tmp_path / "scored" / "report.md").read_text()


def test_vendor_exclusions_are_escapes(corpus):
    tmp_path, suite, folder = corpus
    assert _export(suite, folder, tmp_path / "vendor") == 0
    # The vendor's system declines images under 40 px: every resize(scale=0.25) copy.
    _vendor(tmp_path / "vendor", tmp_path / "acme.csv", "--min-side", "40")
    key = tmp_path / "vendor.key.json"
    assert _score(key, tmp_path / "acme.csv", tmp_path / "scored") == 0
    assert run_cli(suite, folder, tmp_path / "run") == 0
    scored = results.to_builtins(results.load(tmp_path / "scored" / "results.json"))
    built_in = results.to_builtins(results.load(tmp_path / "run" / "results.json"))
    cell = next(c for c in scored["cells"] if c["transform"].startswith("resize"))
    tpr = next(m for m in cell["metrics"] if m["name"] == "tpr")
    assert (tpr["k"], tpr["n"]) == (0, len(NAMES))  # escapes: misses, not a smaller sample
    assert sorted(cell["positives"]["gated"]) == sorted(
        im["id"] for im in scored["dataset"]["images"]
    )
    assert len(scored["exclusions"]) == len(NAMES)
    assert all("shorter side below 40" in e["reason"] for e in scored["exclusions"])
    others = [c for c in scored["cells"] if not c["transform"].startswith("resize")]
    same = [c for c in built_in["cells"] if not c["transform"].startswith("resize")]
    assert _strip(others) == _strip(same)
    report = (tmp_path / "scored" / "report.md").read_text()
    # Counted as what they are (misses inside n); listed in results.json.
    assert f"{len(NAMES)} edited copies of included images gated, counted as misses" in report
    # A quality column: items below --min-quality are exclusions too.
    assert _score(key, tmp_path / "acme.csv", tmp_path / "q", "--min-quality", "1000") == 2
    assert _score(key, tmp_path / "acme.csv", tmp_path / "q", "--min-quality", "0") == 0
    gated = results.to_builtins(results.load(tmp_path / "q" / "results.json"))["exclusions"]
    assert len(gated) == len(NAMES)  # quality 0 drops nothing more than the declined files


def test_a_private_file_is_never_readable_by_others_even_before_its_rename(tmp_path, monkeypatch):
    """The key is written 0600 from its first byte: no window with the usual permissions."""
    import os

    seen = []
    replace = os.replace

    def checking_replace(src, dst):
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", checking_replace)
    mask = os.umask(0o022)
    try:
        results.atomic_write_text(tmp_path / "secret.json", "{}\n", mode=0o600)
        results.atomic_write_text(tmp_path / "public.json", "{}\n")
    finally:
        os.umask(mask)
    assert seen == [0o600, 0o644]  # the usual permissions otherwise
    assert stat.S_IMODE((tmp_path / "secret.json").stat().st_mode) == 0o600
