"""Corpora beyond the embedded set: manifests, URL downloads (local server), tiles, Openclipart."""

import hashlib
import http.server
import io
import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from datasets_benign import open_dataset
from datasets_benign.extra import OPENCLIPART_DIRS
from harness import results
from harness.cli import main
from harness.core.errors import DatasetError
from tests.conftest import run_cli, synthetic_image

SUITE = """
algorithms = ["phash", "dhash"]
transforms = ["identity", "jpeg@S3"]
bootstrap_resamples = 0
"""


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    synthetic_image(64, 48, seed=seed).save(buf, format="PNG")
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self):  # the stdlib's method name
        if self.path == "/truncated.png":
            body = self.files["/good.png"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 500))  # promises more than it sends
            self.end_headers()
            self.wfile.write(body[:200])
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    _Handler.files = {"/good.png": _png(1), "/other.png": _png(2), "/tampered.png": _png(3)}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_url_manifest_downloads_verify_and_fail_cleanly(server, tmp_path, monkeypatch):
    monkeypatch.setenv("HASH_HARNESS_CACHE", str(tmp_path / "cache"))
    files = _Handler.files
    (tmp_path / "local.png").write_bytes(_png(4))
    manifest = tmp_path / "corpus.json"
    manifest.write_text(
        json.dumps(
            {
                "images": [
                    {
                        "url": f"{server}/good.png",
                        "sha256": _sha(files["/good.png"]),
                        "licence": "CC0",
                        "category": "photo",
                    },
                    {
                        "url": f"{server}/other.png",
                        "sha256": _sha(files["/other.png"]),
                        "licence": "CC0",
                    },
                    {
                        "id": "tampered",
                        "url": f"{server}/tampered.png",
                        "sha256": _sha(b"something else"),
                    },
                    {"id": "missing", "url": f"{server}/nope.png", "sha256": "0" * 64},
                    {
                        "id": "cut",
                        "url": f"{server}/truncated.png",
                        "sha256": _sha(files["/good.png"]),
                    },
                    {"path": "local.png", "licence": "public domain", "category": "texture"},
                ]
            }
        )
    )
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    args = ["run", "--suite", str(suite), "--dataset", str(manifest), "--out", str(out), "--quiet"]
    assert main([*args, "--max-failure-rate", "0.6"]) == 0
    result = results.to_builtins(results.load(out / "results.json"))
    reasons = {f["image"]: f["error"] for f in result["failures"]}
    assert "does not match the manifest" in reasons["tampered"]
    assert "HTTP 404" in reasons["missing"]
    assert "download failed" in reasons["cut"] or "truncated" in reasons["cut"]
    assert result["dataset"]["n_evaluated"] == 3
    cats = {i["id"]: i["category"] for i in result["dataset"]["images"]}
    assert cats["good.png"] == "photo"
    cached = list((tmp_path / "cache" / "downloads").iterdir())
    assert sorted(p.name for p in cached) == sorted(
        [_sha(files["/good.png"]), _sha(files["/other.png"])]
    )
    # A second run uses the cache: the server is no longer needed for verified files.
    _Handler.files = {}
    assert main([*args, "--max-failure-rate", "0.6"]) == 0


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"path": "../secret.png"}], "leaves the manifest's folder"),
        ([{"path": "/etc/passwd"}], "is absolute"),
        ([{"url": "file:///etc/passwd", "sha256": "0" * 64}], "only http(s) URLs"),
        ([{"url": "http://127.0.0.1/x.png"}], "needs the file's sha256"),
        ([{"path": "a.png"}, {"path": "a.png"}], "duplicate id"),
        ([{"path": "a.png", "url": "http://x/a.png"}], "exactly one of 'path' and 'url'"),
        ([{"path": "a.png", "colour": "red"}], "unknown field"),
    ],
)
def test_bad_manifests_are_refused_before_any_work(tmp_path, rows, message):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps(rows))
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_dataset(str(manifest))


def test_csv_manifest_with_file_checksums(tmp_path):
    (tmp_path / "a.png").write_bytes(_png(5))
    (tmp_path / "b.png").write_bytes(_png(6))
    good, bad = _sha((tmp_path / "a.png").read_bytes()), "f" * 64
    (tmp_path / "m.csv").write_text(
        f"path,sha256,licence,category\na.png,{good},CC0,photo\nb.png,{bad},CC0,photo\n"
    )
    data = open_dataset(str(tmp_path / "m.csv"))
    assert data.records[0].load().size == (64, 48)
    with pytest.raises(Exception, match="does not match the manifest"):
        data.records[1].load()


def test_tiles_never_pair_with_their_own_photograph(tmp_path):
    data = open_dataset("skimage_tiles")
    assert len(data.records) > 100
    assert all(r.group and r.crop for r in data.records)
    sub = open_dataset("skimage_tiles[24]")
    assert [r.id for r in sub.records] == [r.id for r in open_dataset("skimage_tiles[24]").records]
    suite = tmp_path / "s.toml"
    suite.write_text('algorithms = ["phash"]\ntransforms = ["identity"]\nbootstrap_resamples = 0\n')
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--dataset",
                "skimage_tiles[24]",
                "--out",
                str(tmp_path / "o"),
                "--quiet",
            ]
        )
        == 0
    )
    result = results.to_builtins(results.load(tmp_path / "o" / "results.json"))
    groups = [i["group"] for i in result["dataset"]["images"]]
    same = sum(groups[i] == groups[j] for i in range(24) for j in range(i + 1, 24))
    coll = next(c for c in result["collisions"] if c["protocol"] == "originals_all_pairs")
    assert coll["n_pairs"] == 24 * 23 // 2 - same
    assert same > 0


def test_degenerate_images_are_flagged(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for s in range(3):
        synthetic_image(80, 60, seed=s).save(folder / f"ok{s}.png")
    synthetic_image(12, 9, seed=7).save(folder / "tiny.png")
    synthetic_image(80, 60, seed=0).convert("L").point(lambda v: 100).convert("RGB").save(
        folder / "flat.png"
    )
    suite = tmp_path / "s.toml"
    suite.write_text('algorithms = ["phash"]\ntransforms = ["identity"]\nbootstrap_resamples = 0\n')
    assert run_cli(str(suite), str(folder), str(tmp_path / "o")) == 0
    flagged = {
        d["image"]: d["reason"]
        for d in results.to_builtins(results.load(tmp_path / "o" / "results.json"))["hygiene"][
            "degenerate"
        ]
    }
    assert set(flagged) == {"tiny.png", "flat.png"}
    assert flagged["tiny.png"].startswith("tiny")
    assert "Degenerate images flagged" in (tmp_path / "o" / "report.md").read_text()


def test_datasets_command(capsys):
    assert main(["datasets", "list"]) == 0
    assert "skimage: 17 images" in capsys.readouterr().out
    assert main(["datasets", "verify", "skimage"]) == 0
    out = capsys.readouterr().out
    assert "decoded: 17; failed: 0" in out
    assert "exact duplicate groups: 0" in out
    assert main(["datasets", "info", "skimage_tiles[10]"]) == 0
    assert main(["datasets", "info"]) == 2


def test_openclipart_run_counts_collisions_and_near_duplicates(tmp_path):
    if not any(d.is_dir() for d in OPENCLIPART_DIRS):
        pytest.skip("openclipart-png is not installed (apt-get install openclipart-png)")
    suite = tmp_path / "s.toml"
    suite.write_text(
        'algorithms = ["average_hash", "dhash", "phash", "pdq"]\n'
        'transforms = ["identity", "jpeg@S3"]\n'
        'bootstrap_resamples = 0\n[near_duplicates]\nalgorithm = "pdq"\nmax_distance = 10\n'
    )
    out = tmp_path / "o"
    code = main(
        [
            "run",
            "--suite",
            str(suite),
            "--dataset",
            "openclipart[120]",
            "--out",
            str(out),
            "--quiet",
            "--max-failure-rate",
            "0.2",
        ]
    )
    assert code == 0
    result = results.to_builtins(results.load(out / "results.json"))
    assert {i["licence"] for i in result["dataset"]["images"]} == {"public domain"}
    # Categories are the package's top-level folders; its symbolic links are listed as excluded.
    categories = {i["category"] for i in result["dataset"]["images"]}
    assert len(categories) > 5
    assert categories <= {p.name for p in OPENCLIPART_DIRS[0].iterdir()} | {"unsorted"}
    links = [e for e in result["dataset"]["excluded"] if "symbolic link" in e["reason"]]
    assert len(links) > 1000
    assert result["dataset"]["max_side"] == 4096
    coll = {
        c["algorithm"]: c for c in result["collisions"] if c["protocol"] == "originals_all_pairs"
    }
    # Flat clip art collides: the average hash matches unrelated drawings that PDQ keeps apart.
    assert coll["average_hash"]["metrics"][0]["k"] > coll["pdq"]["metrics"][0]["k"]
    assert isinstance(result["hygiene"]["near_duplicates"]["groups"], list)
    assert Path(out / "report.html").exists()
