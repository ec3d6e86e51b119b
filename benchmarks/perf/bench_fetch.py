"""Time per 1,000 images of the PD12M recipe, against a local stand-in for the real servers.

Run explicitly (a few minutes on two cores)::

    python benchmarks/perf/bench_fetch.py [--images 200] [--run-images 100] [--suite pd12m]

There is no internet here, so the "corpus" is photo-like JPEGs (random crops of the embedded
photographs, 1024 px wide, quality 90 - about the size of a PD12M image) served by an HTTP server
on 127.0.0.1, listed in a parquet shard with PD12M's columns. Measured:

* ``datasets fetch``: download + MD5 check + sha256 + identify, 16 at a time (the real figure
  depends on the remote servers and the network; this is the harness's own cost);
* ``hash-harness run --dataset DIR[N]`` with the suite, 2 workers, no cache, as a fresh process
  (hashing every original and edit with every algorithm, then all statistics and reports).

Both are printed per 1,000 images, with the expected time of the hashing stage on k workers
(it parallelises per image; the statistics of 10^5 images take seconds, see performance.md).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from skimage import data as skdata

from datasets_benign.fetch import fetch_dataset

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _corpus(folder: Path, n: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(0)
    photos = [Image.fromarray(getattr(skdata, p)()).convert("RGB") for p in PHOTOS]
    rows = []
    for i in range(n):
        photo = photos[i % len(photos)]
        w, h = photo.size
        cw, ch = int(w * rng.uniform(0.5, 0.9)), int(h * rng.uniform(0.5, 0.9))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        image = photo.crop((left, top, left + cw, top + ch)).resize((1024, round(1024 * ch / cw)))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=90)
        body = buf.getvalue()
        (folder / f"{i:06d}.jpg").write_bytes(body)
        rows.append(
            {
                "id": f"{i:06d}",
                "url": f"/{i:06d}.jpg",
                "caption": "stand-in",
                "width": image.width,
                "height": image.height,
                "mime_type": "image/jpeg",
                "hash": hashlib.md5(body, usedforsecurity=False).hexdigest(),
                "license": "https://creativecommons.org/publicdomain/zero/1.0/",
                "source": ["wikimedia", "nasa", "smithsonian"][i % 3],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images fetched")
    parser.add_argument("--run-images", type=int, default=100, help="of those, images run")
    parser.add_argument("--suite", default="pd12m", help="name in benchmarks/suites")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        served = root / "served"
        served.mkdir()
        rows = _corpus(served, args.images)
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(served)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for row in rows:
            row["url"] = base + str(row["url"])
        shard = root / "shard.parquet"
        pq.write_table(pa.Table.from_pylist(rows), shard)
        mb = sum(p.stat().st_size for p in served.iterdir()) / 1e6

        out = root / "pd12m"
        start = time.perf_counter()
        report = fetch_dataset(str(shard), out)
        t_fetch = time.perf_counter() - start
        if len(report.kept) != args.images:
            raise SystemExit(f"refused rows: {report.reasons()}")
        per_k = 1000 * t_fetch / args.images
        print(
            f"fetch: {args.images} images ({mb:.0f} MB) in {t_fetch:.1f} s = {per_k:.1f} s per 1,000"
        )

        suite = Path(__file__).resolve().parents[1] / "suites" / f"{args.suite}.toml"
        cmd = [sys.executable, "-m", "harness", "run", "--suite", str(suite), "--no-cache"]
        cmd += ["--dataset", f"{out}[{args.run_images}]", "--workers", "2", "--quiet"]
        start = time.perf_counter()
        subprocess.run([*cmd, "--out", str(root / "run")], check=True)
        t_run = time.perf_counter() - start
        per_k = 1000 * t_run / args.run_images
        print(
            f"run ({args.suite} suite, 2 workers): {args.run_images} images in {t_run:.1f} s "
            f"= {per_k:.0f} s per 1,000 ({per_k * 2 / 3600:.2f} core-hours per 1,000)"
        )
        for k in (2, 16, 64, 256):
            hours = 100 * per_k * 2 / k / 3600
            print(f"  100,000 images on {k} worker cores: about {hours:.1f} h of hashing")
        server.shutdown()


if __name__ == "__main__":
    main()
