"""`hash-harness datasets fetch` against a local HTTP server on 127.0.0.1 (no internet).

The server serves fixture images and a PD12M-style parquet shard made here, with one row for
each way a download goes wrong: a wrong hash, a 404, a reply slower than the timeout, a body cut
short, a non-image, plus a redirect and a first-try 503 that are fetched fine.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from datasets_benign import open_dataset
from datasets_benign.fetch import fetch_dataset, read_shard
from harness.cli import main
from harness.core.errors import DatasetError
from tests.conftest import REPO, synthetic_image

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("urllib3")

N_GOOD = 24
SLOW_S = 4.0
TIMEOUT_S = 1.0


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    synthetic_image(64 + seed % 7, 48, seed=seed).save(buf, format="PNG")
    return buf.getvalue()


class _Server:
    """Routes: /img/<k>.png fixtures, and one route per failure."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.files = {f"/img/{k}.png": _png(k) for k in range(N_GOOD + 2)}
        self.files["/notimage.png"] = b"<html>this is not an image</html>\n"
        self.delay_s = delay_s
        self.flaky_calls = 0
        self.shard = b""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *a: None  # clients that time out break the pipe
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _send(self, h: BaseHTTPRequestHandler, body: bytes, length: int | None = None) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path
        if path == "/shard.parquet":
            return self._send(h, self.shard)
        if path == "/slow.png":
            time.sleep(SLOW_S)
            return self._send(h, self.files["/img/0.png"])
        if path == "/truncated.png":
            body = self.files[f"/img/{N_GOOD}.png"]
            return self._send(h, body[: len(body) // 2], length=len(body))
        if path == "/redirect.png":
            h.send_response(302)
            h.send_header("Location", f"/img/{N_GOOD + 1}.png")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        if path == "/flaky.png":
            self.flaky_calls += 1
            if self.flaky_calls == 1:
                h.send_error(503)
                return None
            return self._send(h, self.files["/img/1.png"])
        if path in self.files:
            time.sleep(self.delay_s)
            return self._send(h, self.files[path])
        h.send_error(404)
        return None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _rows(server: _Server) -> list[dict[str, object]]:
    """PD12M's current columns; the good rows first, then one row per failure."""
    f = server.files
    rows = [
        {
            "id": f"good{k:02d}",
            "url": f"{server.base}/img/{k}.png",
            "hash": _md5(f[f"/img/{k}.png"]),
        }
        for k in range(N_GOOD)
    ]
    other = f"/img/{N_GOOD + 1}.png"
    rows += [
        {"id": "redirect", "url": f"{server.base}/redirect.png", "hash": _md5(f[other])},
        {"id": "flaky", "url": f"{server.base}/flaky.png", "hash": _md5(f["/img/1.png"])},
        {"id": "wrong_hash", "url": f"{server.base}/img/2.png", "hash": _md5(b"other bytes")},
        {"id": "missing", "url": f"{server.base}/gone.png", "hash": _md5(b"")},
        {"id": "slow", "url": f"{server.base}/slow.png", "hash": _md5(f["/img/0.png"])},
        {
            "id": "truncated",
            "url": f"{server.base}/truncated.png",
            "hash": _md5(f[f"/img/{N_GOOD}.png"]),
        },
        {"id": "not_image", "url": f"{server.base}/notimage.png", "hash": _md5(f["/notimage.png"])},
    ]
    sources = ["wikimedia", "nasa", "smithsonian"]
    for i, row in enumerate(rows):
        row.update(
            caption=f"picture {i}",
            width=64,
            height=48,
            mime_type="image/png",
            license="https://creativecommons.org/publicdomain/zero/1.0/",
            source=sources[i % 3],
        )
    return rows


GOOD = {f"good{k:02d}" for k in range(N_GOOD)} | {"redirect", "flaky"}
REFUSED = {
    "wrong_hash": "md5 mismatch",
    "missing": "HTTP 404",
    "slow": "timed out",
    "truncated": "truncated body",
    "not_image": "not an image",
}


@pytest.fixture
def server():
    s = _Server()
    s.shard = _parquet(_rows(s))
    yield s
    s.close()


def _parquet(rows: list[dict[str, object]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


FAST = {"retries": 1, "timeout_s": TIMEOUT_S, "backoff_s": 0.05, "concurrency": 4}


def test_fetch_keeps_exactly_the_good_rows_and_names_each_refusal(server, tmp_path):
    out = tmp_path / "pd12m"
    report = fetch_dataset(f"{server.base}/shard.parquet", out, **FAST)
    assert {e["id"] for e in report.kept} == GOOD
    reasons = {e["id"]: e["reason"] for e in report.refused}
    assert set(reasons) == set(REFUSED)
    for image_id, start in REFUSED.items():
        assert reasons[image_id].startswith(start), reasons[image_id]
    assert "after 2 attempts" in reasons["slow"]  # transient: retried before refusing
    assert server.flaky_calls == 2  # a 503 is retried, and the second try is kept

    # refused.csv names each reason; the manifest lists the kept rows in shard order.
    with (out / "refused.csv").open() as fh:
        assert {r["id"]: r["reason"] for r in csv.DictReader(fh)} == reasons
    with (out / "manifest.csv").open() as fh:
        manifest = list(csv.DictReader(fh))
    assert [r["id"] for r in manifest] == [e["id"] for e in report.kept]
    by_id = {r["id"]: r for r in manifest}
    assert by_id["good01"]["licence"] == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert by_id["good01"]["category"] == "nasa"  # PD12M's `source` is the stratum
    assert by_id["good01"]["source"] == f"{server.base}/img/1.png"
    data = server.files["/img/3.png"]
    assert by_id["good03"]["sha256"] == hashlib.sha256(data).hexdigest()  # the local identity
    assert (out / by_id["good03"]["path"]).read_bytes() == data

    # The folder is a dataset: read through its manifest, sidecars never evaluated as images.
    dataset = open_dataset(str(out))
    assert {r.id for r in dataset.records} == GOOD
    assert {r.category for r in dataset.records} == {"wikimedia", "nasa", "smithsonian"}
    assert dataset.oversize == "exclude"  # a fetched web corpus declares the policy
    assert dataset.records[0].load().size[1] == 48  # file sha256 verified on load
    subset = open_dataset(f"{out}[5]")
    assert len(subset.records) == 5
    assert [r.id for r in subset.records] == [r.id for r in open_dataset(f"{out}[5]").records]


def test_older_pd12m_columns_and_generic_csv_manifests(server, tmp_path):
    """PD12M's older card (md5_hash, license_type, no source) and a plain CSV with sha256."""
    f = server.files
    older = tmp_path / "older.parquet"
    rows = [
        {
            "id": k,
            "url": f"{server.base}/img/{k}.png",
            "md5_hash": _md5(f[f"/img/{k}.png"]),
            "license_type": "cc0",
            "s3_key": f"k{k}",
        }
        for k in range(3)
    ]
    pq.write_table(pa.Table.from_pylist(rows), older)
    report = fetch_dataset(str(older), tmp_path / "a", default_category="pd12m", **FAST)
    assert [(e["id"], e["licence"], e["category"]) for e in report.kept] == [
        ("0", "cc0", "pd12m"),
        ("1", "cc0", "pd12m"),
        ("2", "cc0", "pd12m"),
    ]
    listing = tmp_path / "list.csv"
    listing.write_text(
        "name,link,digest\n"
        + "".join(
            f"n{k},{server.base}/img/{k}.png,{hashlib.sha256(f[f'/img/{k}.png']).hexdigest()}\n"
            for k in range(2)
        )
    )
    columns = {"id": "name", "url": "link", "hash": "digest"}
    report = fetch_dataset(str(listing), tmp_path / "b", columns=columns, **FAST)
    assert [e["id"] for e in report.kept] == ["n0", "n1"]
    with pytest.raises(DatasetError, match="no column 'nope'"):
        read_shard(listing, columns={"url": "nope"})
    with pytest.raises(DatasetError, match="no hash column"):
        read_shard(listing, columns={"url": "link"})


def _cli(out: Path, base: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness",
        "datasets",
        "fetch",
        "pd12m",
        "--shard",
        f"{base}/shard.parquet",
        "--out",
        str(out),
        "--retries",
        "1",
        "--timeout",
        str(TIMEOUT_S),
        *extra,
    ]


@pytest.mark.slow
def test_killed_fetch_resumes_to_the_same_manifest(tmp_path):
    """kill -9 mid-fetch, rerun: the manifest is byte-identical to an uninterrupted fetch."""
    server = _Server(delay_s=0.15)  # slow enough that the kill lands mid-fetch
    server.shard = _parquet(_rows(server))
    try:
        whole = tmp_path / "whole"
        fetch_dataset(f"{server.base}/shard.parquet", whole, **FAST)
        server.flaky_calls = 0
        out = tmp_path / "killed"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            _cli(out, server.base, "--concurrency", "2"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        journal = out / "fetch.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and len(journal.read_text().splitlines()) >= 6:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the fetch finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert not (out / "manifest.csv").exists()
        settled = len(journal.read_text().splitlines())
        rerun = subprocess.run(
            _cli(out, server.base), env=env, capture_output=True, text=True, timeout=300
        )
        assert rerun.returncode == 0, rerun.stderr
        assert "settled by an earlier run" in rerun.stdout
        assert "rows fetched" in rerun.stderr
        assert "ETA" in rerun.stderr
        entries = [json.loads(line) for line in journal.read_text().splitlines()]
        assert len({e["row"] for e in entries}) == len(_rows(server))
        assert len(entries) < len(_rows(server)) + settled  # earlier rows were not fetched again

        def sha(path: Path) -> str:
            return hashlib.sha256(path.read_bytes()).hexdigest()

        assert sha(out / "manifest.csv") == sha(whole / "manifest.csv")
        assert sha(out / "refused.csv") == sha(whole / "refused.csv")
    finally:
        server.close()


def test_fetch_refuses_bad_arguments_before_any_download(tmp_path, capsys):
    assert main(["datasets", "fetch", "laion", "--shard", "x", "--out", str(tmp_path)]) == 2
    assert "takes 'pd12m'" in capsys.readouterr().err
    assert main(["datasets", "fetch", "pd12m", "--out", str(tmp_path)]) == 2
    missing = str(tmp_path / "none.parquet")
    assert main(["datasets", "fetch", "pd12m", "--shard", missing, "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_folder_holds_one_fetch(server, tmp_path):
    out = tmp_path / "d"
    listing = tmp_path / "list.csv"
    listing.write_text(f"url,hash\n{server.base}/img/0.png,{_md5(server.files['/img/0.png'])}\n")
    fetch_dataset(str(listing), out, **FAST)
    with pytest.raises(DatasetError, match="holds a fetch of"):
        fetch_dataset(f"{server.base}/shard.parquet", out, **FAST)
