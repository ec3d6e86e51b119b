"""Hash cache: SQLite in WAL mode, so finished work is never redone and a killed run resumes.

Keys
    ``files``: one row per source file as read (path, size, modification time, tile crop, URL)
    holding its decoded pixels' sha256, size and grey-level sd, so a fully cached image is not
    even decoded again. ``hashes``: one row per (pixel sha256, column, algorithm), where the
    column is "original" or a chain id with its version and the environment that decides edited
    pixels (Pillow, codecs, numpy, scipy) - and, for randomised chains, the suite seed and image
    id their draws depend on - and the algorithm key carries its id, version and the versions of
    the libraries that change its bits. Both also carry a fingerprint of the code that computed
    the cell (:mod:`harness.codehash`: module source for built-ins, package files for plugins),
    so an edited transform, adapter or plugin recomputes its cells even when nobody bumped its
    version. Change any of these and the old rows simply stop matching.

Only the parent process writes (after each image, one transaction), workers never touch the
file; a crash or ``kill -9`` leaves every committed image intact, and the next run with the same
command picks up from there. Failures are not cached (they are cheap and may be transient).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.algorithms import HashAlgorithm
from transforms import Chain

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    file_key TEXT PRIMARY KEY, sha256 TEXT NOT NULL, width INT, height INT, grey_std REAL,
    used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hashes (
    sha256 TEXT NOT NULL, column_key TEXT NOT NULL, algorithm_key TEXT NOT NULL,
    status TEXT NOT NULL, value BLOB, reason TEXT, used REAL NOT NULL,
    PRIMARY KEY (sha256, column_key, algorithm_key)
) WITHOUT ROWID;
"""


def default_path() -> Path:
    root = os.environ.get("HASH_HARNESS_CACHE") or str(Path.home() / ".cache" / "hash-harness")
    return Path(root) / "hashes.sqlite"


@dataclass(frozen=True)
class FileInfo:
    sha256: str
    size: tuple[int, int]
    grey_std: float | None


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def transform_environment() -> str:
    """Fingerprint of what decides edited pixels (not hash bits): part of every column key."""
    from harness.env import environment

    env = environment()
    keep = {k: env["packages"].get(k) for k in ("pillow", "numpy", "scipy")}
    return _digest([keep, env["codecs"]])


def column_keys(chains: Iterable[Chain], suite_seed: int, image_id: str, env: str) -> list[str]:
    from harness.codehash import steps_fingerprint

    keys = ["original"]
    for chain in chains:
        code = steps_fingerprint(tuple(type(step) for step in chain.steps))
        key = f"{chain.id}|v{chain.version}|env={env}|code={code}"
        if any(step.uses_rng for step in chain.steps):
            key += f"|seed={suite_seed}|image={image_id}"
        keys.append(key)
    return keys


def algorithm_key(algo: HashAlgorithm) -> str | None:
    """Cache key of an algorithm's hashes; None for algorithms that must never be cached."""
    if not algo.cacheable:
        return None
    fp = algo.fingerprint()
    return f"{algo.id}|v{algo.version}|{_digest(fp)}|code={algo.code_fingerprint()}"


def file_key(record: Any) -> str | None:
    """Identity of a source as read; None when it cannot be known without reading (missing)."""
    crop = list(record.crop) if record.crop else None
    # Shrinking to a max side changes the pixels read: its own component, only when set, so
    # keys of runs without it are unchanged.
    shrink = [f"max_side={record.max_side}"] if getattr(record, "max_side", None) else []
    if record.url:
        return _digest(["url", record.url, record.file_sha256, crop, *shrink])
    try:
        st = Path(record.path).stat()
    except OSError:
        return None
    path = str(Path(record.path).resolve())
    return _digest(["file", path, st.st_size, st.st_mtime_ns, crop, *shrink])


class HashStore:
    """The cache file; use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.now = time.time()

    def __enter__(self) -> HashStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def file(self, key: str | None) -> FileInfo | None:
        if key is None:
            return None
        row = self.db.execute(
            "SELECT sha256, width, height, grey_std FROM files WHERE file_key = ?", (key,)
        ).fetchone()
        return None if row is None else FileInfo(row[0], (row[1], row[2]), row[3])

    def hashes(
        self, sha256: str, columns: list[str], algorithms: list[str | None]
    ) -> dict[tuple[int, int], tuple[str, bytes | None, str | None]]:
        """Cached cells of one image: ``(column, algorithm) index -> (status, value, reason)``."""
        col_index = {k: i for i, k in enumerate(columns)}
        algo_index = {k: i for i, k in enumerate(algorithms) if k is not None}
        rows = self.db.execute(
            "SELECT column_key, algorithm_key, status, value, reason FROM hashes WHERE sha256 = ?",
            (sha256,),
        ).fetchall()
        out = {}
        for col, algo, status, value, reason in rows:
            if col in col_index and algo in algo_index:
                out[(col_index[col], algo_index[algo])] = (status, value, reason)
        return out

    def put(
        self,
        key: str | None,
        info: FileInfo,
        cells: list[tuple[str, str, str, bytes | None, str | None]],
    ) -> None:
        """Record one image in one transaction: its file info and cells (column, algorithm,
        status, value, reason)."""
        with self.db:
            if key is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                    (key, info.sha256, info.size[0], info.size[1], info.grey_std, self.now),
                )
            self.db.executemany(
                "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(info.sha256, c, a, s, v, r, self.now) for c, a, s, v, r in cells],
            )

    def info(self) -> dict[str, Any]:
        files = self.db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        hashes = self.db.execute("SELECT COUNT(*) FROM hashes").fetchone()[0]
        algos = self.db.execute(
            "SELECT algorithm_key, COUNT(*) FROM hashes GROUP BY algorithm_key ORDER BY 1"
        ).fetchall()
        oldest = self.db.execute("SELECT MIN(used) FROM hashes").fetchone()[0]
        return {
            "path": str(self.path),
            "bytes": self.path.stat().st_size if self.path.exists() else 0,
            "files": files,
            "hashes": hashes,
            "by_algorithm": {k.split("|")[0] + " " + k.split("|")[1]: n for k, n in algos},
            "oldest_use": oldest,
        }

    def prune(self, older_than_days: float | None = None) -> int:
        """Delete entries last written more than ``older_than_days`` ago (None: everything)."""
        cutoff = (
            self.now - (older_than_days or 0) * 86400
            if older_than_days is not None
            else float("inf")
        )
        with self.db:
            n = self.db.execute("DELETE FROM hashes WHERE used < ?", (cutoff,)).rowcount
            self.db.execute("DELETE FROM files WHERE used < ?", (cutoff,))
        self.db.execute("VACUUM")
        return int(n)
