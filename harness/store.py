"""Hash cache: SQLite in WAL mode, so finished work is never redone and a killed run resumes.

Keys
    ``files``: one row per source file as read - keyed by the sha256 of its bytes, the tile crop
    and the decode policy, never by its path or modification time - holding its decoded
    pixels' sha256, size, grey-level sd and frame count, so a fully cached image is not even
    decoded again. ``hashes``: one row per (pixel sha256, column, algorithm), where the column
    is "original" or a chain id with its version and the environment that decides edited pixels
    (Pillow, codecs, numpy, scipy) - and, for randomised chains, the suite seed and image id
    their draws depend on - and the algorithm key carries its id, version and the versions of
    the libraries that change its bits. Both also carry a fingerprint of the code that computed
    the cell (:mod:`harness.codehash`: module source for built-ins, package files for plugins),
    so an edited transform, adapter or plugin recomputes its cells even when nobody bumped its
    version. Change any of these and the old rows simply stop matching. ``thumbnails``: one
    row per (pixel sha256, column), the galleries' small JPEG of that column (raw bytes), made in
    the hashing pass so that a report never decodes an image again (a few kB each): every
    original's, and only the edited copies' that were gallery candidates when the image was
    written (:class:`harness.runner.Thumbnails`).

Integrity
    Every row carries a checksum of its key and value, verified on every read: a row that fails
    (a flipped bit, a half-written page) is a recorded *cache fault* - the cell is computed again
    and the fault reported with the run - never a number served. A file that is not a SQLite
    database, or is damaged, is moved aside to ``NAME.corrupt`` and a new cache started, with one
    line on stderr; a SQLite file of another application is refused (exit 2) with what to do.

Only the parent process writes (after each image, one transaction), workers never touch the
file; a crash or ``kill -9`` leaves every committed image intact, and the next run with the same
command picks up from there. Failures are not cached (they are cheap and may be transient).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.algorithms import HashAlgorithm
from harness.core.errors import HarnessError
from transforms import Chain

#: ``PRAGMA application_id`` of a hash-harness cache ("hhc1"); ``user_version`` is the schema.
APPLICATION_ID = 0x68686331
SCHEMA_VERSION = 3
#: Schema 2 lacks only the thumbnails table: it is added in place, keeping every hash.
UPGRADABLE = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    file_key TEXT PRIMARY KEY, sha256 TEXT NOT NULL, width INT, height INT, grey_std REAL,
    frames INT NOT NULL, used REAL NOT NULL, checksum TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hashes (
    sha256 TEXT NOT NULL, column_key TEXT NOT NULL, algorithm_key TEXT NOT NULL,
    status TEXT NOT NULL, value BLOB, reason TEXT, used REAL NOT NULL, checksum TEXT NOT NULL,
    PRIMARY KEY (sha256, column_key, algorithm_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS thumbnails (
    sha256 TEXT NOT NULL, column_key TEXT NOT NULL, value TEXT NOT NULL, used REAL NOT NULL,
    checksum TEXT NOT NULL, PRIMARY KEY (sha256, column_key)
) WITHOUT ROWID;
"""
TABLES = {"files", "hashes", "thumbnails"}


class CacheError(HarnessError):
    """The cache file cannot be used (another application's database, a newer schema)."""


def default_path() -> Path:
    root = os.environ.get("HASH_HARNESS_CACHE") or str(Path.home() / ".cache" / "hash-harness")
    return Path(root) / "hashes.sqlite"


@dataclass(frozen=True)
class FileInfo:
    sha256: str
    size: tuple[int, int]
    grey_std: float | None
    #: Frames in the file (the first is the one used).
    frames: int = 1


def checksum(*fields: Any) -> str:
    """Checksum of a row's key and value, stored with the row and verified on every read."""
    h = hashlib.blake2b(digest_size=12)
    for f in fields:
        h.update(f.hex().encode() if isinstance(f, bytes) else repr(f).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def _jpeg(data_uri: str) -> bytes:
    """The JPEG bytes of a base64 data URI."""
    import base64

    return base64.b64decode(data_uri.partition(",")[2])


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
    """Identity of a source as read: its content (sha256 of the file's bytes), tile crop, decode
    policy and ``max_side``; None when the file cannot be read (it becomes a recorded failure).

    A download is known by the sha256 its manifest states, which the download verifies.
    A local file is hashed every time: a path, size and modification time can stay the same
    while the pixels change, so they never decide alone.
    """
    crop = list(record.crop) if record.crop else None
    # Shrinking to a max side changes the pixels read (a component only when set).
    shrink = [f"max_side={record.max_side}"] if getattr(record, "max_side", None) else []
    policy = getattr(record, "decode", "viewer")
    if record.url:
        return _digest(["url", record.file_sha256 or record.url, crop, f"decode={policy}", *shrink])
    from datasets_benign.decode import file_sha256

    try:
        content = file_sha256(record.path)
    except OSError:
        return None
    return _digest(["file", content, crop, f"decode={policy}", *shrink])


class HashStore:
    """The cache file; use as a context manager or call :meth:`close`.

    ``faults`` lists what went wrong while reading it (rows failing their checksum, a damaged
    file); each fault's cell was computed again, and the run reports them.
    """

    def __init__(self, path: str | Path, *, say: Any = None) -> None:
        self.path = Path(path)
        self.faults: list[dict[str, str]] = []
        self._bad_rows: set[tuple[str, ...]] = set()
        self.say = say or (lambda line: print(f"hash-harness: {line}", file=sys.stderr))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"Cannot create the cache folder {self.path.parent}: {exc.strerror}; pass --cache "
                "with another file, or --no-cache."
            ) from exc
        self.now = time.time()
        marker = self._marker()
        if marker.exists() and self.path.exists():  # a run found it damaged and said so
            self._move_aside("found damaged by an earlier run")
        marker.unlink(missing_ok=True)
        try:
            self.db: sqlite3.Connection | None = self._open()
        except sqlite3.OperationalError as exc:  # locked, unreadable, no space: not damage
            raise CacheError(
                f"Cannot open the cache at {self.path}: {exc}; pass --cache with another file, "
                "or --no-cache."
            ) from exc
        except sqlite3.DatabaseError as exc:
            self._move_aside(str(exc))
            self.db = self._open()

    def _marker(self) -> Path:
        return self.path.with_name(self.path.name + ".damaged")

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            with db:
                db.execute("BEGIN IMMEDIATE")  # one process creates or upgrades the schema
                self._prepare(db)
        except BaseException:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        app = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app == APPLICATION_ID and version == SCHEMA_VERSION:
            return
        if app == APPLICATION_ID and version > SCHEMA_VERSION:
            raise CacheError(
                f"The cache at {self.path} was written by a newer hash-harness (schema {version}); "
                "upgrade, or pass --cache with another file (or --no-cache)."
            )
        if app not in (0, APPLICATION_ID) or not tables <= TABLES:
            raise CacheError(
                f"{self.path} is not a hash-harness cache (it is another application's SQLite "
                "database); pass --cache with another file, or --no-cache."
            )
        # Schema 2 only lacks the thumbnails table (created below); its checksummed rows stay.
        upgrade = app == APPLICATION_ID and version == UPGRADABLE
        if tables and not upgrade:  # an older hash-harness cache: rows carry no checksum
            self.say(f"cache at {self.path} predates checksummed rows; starting it afresh")
            db.execute("DROP TABLE IF EXISTS files")
            db.execute("DROP TABLE IF EXISTS hashes")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _move_aside(self, reason: str) -> None:
        aside = self.path.with_name(self.path.name + ".corrupt")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        self.faults.append({"kind": "corrupt file", "detail": reason})
        self.say(
            f"cache at {self.path} is corrupt ({reason}); moved aside to {aside}, "
            "starting a new one"
        )

    def _damaged(self, exc: sqlite3.DatabaseError) -> None:
        """The file failed while in use: stop using it for this run (every cell it would have
        served is computed instead) and say so once. A damaged file is moved aside by the next
        run; one that is full or unwritable is left alone."""
        if self.db is not None:
            self.db.close()
        self.db = None
        if isinstance(exc, sqlite3.OperationalError):
            self.faults.append({"kind": "unusable", "detail": str(exc)})
            self.say(f"cannot use the cache at {self.path} ({exc}); continuing without it")
            return
        self.faults.append({"kind": "corrupt file", "detail": str(exc)})
        self.say(
            f"cache at {self.path} is corrupt ({exc}); continuing without it - the next run "
            "moves it aside"
        )
        self._marker().touch()

    def __enter__(self) -> HashStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def _fault(self, key: tuple[str, ...], what: str) -> None:
        """Record a row that failed its checksum, once however often it is read."""
        if key not in self._bad_rows:
            self._bad_rows.add(key)
            self.faults.append({"kind": "checksum mismatch", "detail": what})

    def file(self, key: str | None) -> FileInfo | None:
        if key is None or self.db is None:
            return None
        found = self._read(
            "SELECT sha256, width, height, grey_std, frames, checksum FROM files "
            "WHERE file_key = ?",
            (key,),
        )
        if not found:
            return None
        row = found[0]
        if row[5] != checksum(key, *row[:5]):
            self._fault((key,), f"file row {key}")
            return None
        return FileInfo(row[0], (row[1], row[2]), row[3], row[4])

    def hashes(
        self, sha256: str, columns: list[str], algorithms: list[str | None]
    ) -> dict[tuple[int, int], tuple[str, bytes | None, str | None]]:
        """Cached cells of one image: ``(column, algorithm) index -> (status, value, reason)``.

        A row that fails its checksum is left out (so the cell is computed again) and recorded
        in :attr:`faults`.
        """
        if self.db is None:
            return {}
        col_index = {k: i for i, k in enumerate(columns)}
        algo_index = {k: i for i, k in enumerate(algorithms) if k is not None}
        rows = self._read(
            "SELECT column_key, algorithm_key, status, value, reason, checksum FROM hashes "
            "WHERE sha256 = ?",
            (sha256,),
        )
        out = {}
        for col, algo, status, value, reason, check in rows:
            if col in col_index and algo in algo_index:
                if check != checksum(sha256, col, algo, status, value, reason):
                    shown = f"{algo.split('|')[0]} of {sha256[:12]} ({col.split('|')[0]})"
                    self._fault((sha256, col, algo), shown)
                    continue
                out[(col_index[col], algo_index[algo])] = (status, value, reason)
        return out

    def _read(self, sql: str, args: tuple[str, ...]) -> list[Any]:
        """Rows of one query; none when the database turns out damaged (recorded, moved aside)."""
        if self.db is None:
            return []
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)
            return []

    def thumbnails(self, sha256: str, columns: list[str]) -> dict[int, bytes]:
        """Cached thumbnails of one image: column index -> JPEG bytes. A row that fails its
        checksum is left out (made again by the next run that needs it) and recorded."""
        if self.db is None:
            return {}
        col_index = {k: i for i, k in enumerate(columns)}
        rows = self._read(
            "SELECT column_key, CAST(value AS BLOB), checksum FROM thumbnails WHERE sha256 = ?",
            (sha256,),
        )
        out = {}
        for col, value, check in rows:
            if value.startswith(b"data:"):  # rows of earlier releases hold a base64 data URI
                value = value.decode()
            if col in col_index:
                if check != checksum(sha256, col, value):
                    self._fault((sha256, col), f"thumbnail of {sha256[:12]} ({col.split('|')[0]})")
                    # An edited copy's is not always made again (only gallery candidates are):
                    # the damaged row goes, so it is not met again on every run.
                    self._drop_thumbnail(sha256, col)
                    continue
                out[col_index[col]] = value if isinstance(value, bytes) else _jpeg(value)
        return out

    def _drop_thumbnail(self, sha256: str, column: str) -> None:
        if self.db is None:
            return
        try:
            with self.db:
                self.db.execute(
                    "DELETE FROM thumbnails WHERE sha256 = ? AND column_key = ?", (sha256, column)
                )
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)

    def put(
        self,
        key: str | None,
        info: FileInfo,
        cells: list[tuple[str, str, str, bytes | None, str | None]],
        thumbnails: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Record one image in one transaction: its file info, cells (column, algorithm,
        status, value, reason) and thumbnails (column, JPEG bytes)."""
        if self.db is None:
            return
        file_row = (info.sha256, info.size[0], info.size[1], info.grey_std, info.frames)
        try:
            with self.db:
                if key is not None:
                    self.db.execute(
                        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (key, *file_row, self.now, checksum(key, *file_row)),
                    )
                self.db.executemany(
                    "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (info.sha256, c, a, s, v, r, self.now, checksum(info.sha256, c, a, s, v, r))
                        for c, a, s, v, r in cells
                    ],
                )
                self.db.executemany(
                    "INSERT OR REPLACE INTO thumbnails VALUES (?, ?, ?, ?, ?)",
                    [
                        (info.sha256, c, v, self.now, checksum(info.sha256, c, v))
                        for c, v in thumbnails
                    ],
                )
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)

    def info(self) -> dict[str, Any]:
        if self.db is None:
            raise CacheError(f"The cache at {self.path} is closed.")
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
        if self.db is None:
            raise CacheError(f"The cache at {self.path} is closed.")
        cutoff = (
            self.now - (older_than_days or 0) * 86400
            if older_than_days is not None
            else float("inf")
        )
        with self.db:
            n = self.db.execute("DELETE FROM hashes WHERE used < ?", (cutoff,)).rowcount
            self.db.execute("DELETE FROM files WHERE used < ?", (cutoff,))
            self.db.execute("DELETE FROM thumbnails WHERE used < ?", (cutoff,))
        self.db.execute("VACUUM")
        return int(n)
