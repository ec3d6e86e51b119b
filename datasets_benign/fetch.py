"""Fetch a corpus listed as URLs + digests (PD12M parquet shards, CSV, JSON) into a local folder.

``hash-harness datasets fetch pd12m --shard SHARD --limit N --out DIR`` reads the first ``N``
rows of ``SHARD`` (a path or an http(s) URL; parquet through pyarrow, or CSV / JSON / JSON
lines), downloads each row's URL with bounded concurrency and retries (urllib3), verifies the
file's digest (MD5 or sha256, told apart by length), checks that the bytes are an image Pillow
can identify, and stores it under its locally computed sha256. Nothing is resized or re-encoded.

``DIR`` then holds::

    images/ab/ab12...ef.jpg   the verified files, named by their sha256
    fetch.jsonl               journal: one line per finished row (kept or refused, and why)
    fetch.json                what was fetched (shard, columns): a rerun must match it
    manifest.csv              the kept rows, in shard order - ``--dataset DIR`` reads this
    refused.csv               every refused row with its reason

A killed fetch resumes from the journal: rows already kept (file present) or refused for a
permanent reason (HTTP 404, digest mismatch, not an image) are not fetched again; rows that
failed for a transient reason (timeout, connection reset, HTTP 5xx, truncated body) are retried.
The manifest is written from the journal in shard order, so an interrupted and resumed fetch
writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from PIL import Image, UnidentifiedImageError

from harness.core.errors import DatasetError

#: Column names tried in order; the first present is used (PD12M's current and older cards).
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "key"),
    "url": ("url",),
    "hash": ("hash", "md5_hash", "md5", "sha256"),
    "licence": ("license", "licence", "license_type"),
    "source": ("source",),
}
#: Largest file accepted (a 100-megapixel PNG is well below).
MAX_BYTES = 512 * 1024 * 1024
MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("id", "path", "sha256", "licence", "source", "category")
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "TIFF": ".tif"}


class Refused(Exception):
    """A row that cannot be kept; ``transient`` ones are retried (and again on a rerun)."""

    def __init__(self, reason: str, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.transient = reason, transient


@dataclass(frozen=True)
class Row:
    index: int
    id: str
    url: str
    digest: str
    licence: str
    category: str


@dataclass
class FetchReport:
    """What a fetch ended with: kept and refused rows in shard order."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    resumed: int = 0

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.refused:
            key = r["reason"].split(":")[0]
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _pick(available: list[str], wanted: str | None, role: str) -> str | None:
    names = (wanted,) if wanted else DEFAULT_COLUMNS[role]
    found = next((n for n in names if n in available), None)
    if wanted and found is None:
        raise DatasetError(
            f"The shard has no column {wanted!r} (for the {role}); it has: {', '.join(available)}."
        )
    return found


def _table_rows(path: Path, limit: int | None) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """Column names and rows of a parquet / CSV / JSON / JSON-lines file, read lazily."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError as exc:
                raise DatasetError(
                    "Reading parquet needs pyarrow: pip install 'hash-harness[fetch]'."
                ) from exc
            parquet = pq.ParquetFile(path)
            names = list(parquet.schema_arrow.names)

            def batches() -> Iterator[dict[str, Any]]:
                for batch in parquet.iter_batches(batch_size=min(limit or 10_000, 10_000)):
                    yield from batch.to_pylist()

            return names, batches()
        text = path.read_text(encoding="utf-8")
        if suffix == ".csv":
            reader = csv.DictReader(io.StringIO(text))
            return list(reader.fieldnames or []), iter(reader)
        rows: Any
        if suffix in (".jsonl", ".ndjson"):
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif suffix == ".json":
            data = json.loads(text)
            rows = data.get("images") if isinstance(data, dict) else data
        else:
            raise DatasetError(f"{path.name}: expected a .parquet, .csv, .json or .jsonl shard.")
    except DatasetError:
        raise
    except Exception as exc:  # pyarrow, csv and json each raise their own types on bad files
        raise DatasetError(f"Cannot read shard {path.name}: {type(exc).__name__}: {exc}.") from exc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f'{path.name}: expected a list of objects or {{"images": [...]}}.')
    return sorted({k for r in rows for k in r}), iter(rows)


def read_shard(
    path: Path,
    limit: int | None = None,
    columns: dict[str, str | None] | None = None,
    default_category: str = "unknown",
) -> list[Row]:
    """The first ``limit`` rows of a shard, with the columns resolved (before any download).

    Raises
    ------
    DatasetError
        When the shard cannot be read or has no url or hash column.
    """
    columns = columns or {}
    names, rows = _table_rows(path, limit)
    col = {role: _pick(names, columns.get(role), role) for role in DEFAULT_COLUMNS}
    for role in ("url", "hash"):
        if col[role] is None:
            raise DatasetError(
                f"The shard has no {role} column (tried {', '.join(DEFAULT_COLUMNS[role])}); "
                f"it has: {', '.join(names)}. Name it with --{role}-column."
            )
    out: list[Row] = []
    for index, raw in enumerate(rows):
        if limit is not None and index >= limit:
            break

        def value(role: str, raw: dict[str, Any] = raw) -> str:
            name = col[role]
            v = raw.get(name) if name else None
            return "" if v is None else str(v).strip()

        digest = value("hash").lower()
        image_id = value("id") or digest or f"row-{index}"
        out.append(
            Row(
                index=index,
                id=image_id,
                url=value("url"),
                digest=digest,
                licence=value("licence") or "unknown",
                category=value("source") or default_category,
            )
        )
    return out


def _digest_kind(digest: str) -> str:
    if len(digest) == 32 and all(c in "0123456789abcdef" for c in digest):
        return "md5"
    if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
        return "sha256"
    raise Refused(f"bad digest: {digest[:70]!r} is neither an MD5 nor a sha256 hex digest")


class Fetcher:
    """Downloads with one urllib3 pool shared by ``concurrency`` threads.

    Parameters
    ----------
    out : Path
        The dataset folder.
    concurrency : int
        Downloads in flight at once.
    retries : int
        Extra attempts for a transient failure, with exponential back-off from ``backoff_s``.
    timeout_s : float
        Connect and read timeout of one attempt (a reply slower than this is a transient failure).
    """

    def __init__(
        self,
        out: Path,
        *,
        concurrency: int = 16,
        retries: int = 3,
        timeout_s: float = 30.0,
        backoff_s: float = 0.5,
    ) -> None:
        import urllib3

        self.out, self.retries, self.backoff_s = out, retries, backoff_s
        self.concurrency = concurrency
        self.http = urllib3.PoolManager(
            num_pools=64,
            maxsize=concurrency,
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            # Redirects are followed by urllib3; every other retry is ours, so that a body cut
            # short mid-read is retried like a refused connection.
            retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5),
            headers={"User-Agent": "hash-harness dataset fetch"},
        )

    def download(self, url: str, target: io.BufferedWriter) -> dict[str, str]:
        """Stream ``url`` into ``target``; return the md5 / sha256 of the bytes written."""
        import urllib3

        if urlparse(url).scheme not in ("http", "https"):
            raise Refused(f"bad url: only http(s) can be fetched, got {url[:60]!r}")
        try:
            response = self.http.request("GET", url, preload_content=False)
        except urllib3.exceptions.MaxRetryError as exc:
            cause = exc.reason or exc
            if isinstance(cause, urllib3.exceptions.ResponseError):
                raise Refused(f"redirect loop: {cause}") from exc
            if isinstance(cause, urllib3.exceptions.TimeoutError):
                raise Refused("timed out: no reply within the timeout", transient=True) from exc
            raise Refused(f"connection failed: {cause}", transient=True) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise Refused(f"connection failed: {exc}", transient=True) from exc
        try:
            if response.status != 200:
                transient = response.status == 429 or response.status >= 500
                raise Refused(f"HTTP {response.status} {response.reason}", transient=transient)
            md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
            size = 0
            for chunk in response.stream(1 << 16):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise Refused(f"too large: more than {MAX_BYTES} bytes")
                md5.update(chunk)
                sha.update(chunk)
                target.write(chunk)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise Refused("timed out: the reply stalled past the timeout", transient=True) from exc
        except urllib3.exceptions.ProtocolError as exc:
            raise Refused(f"truncated body: {exc.args[0]}", transient=True) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise Refused(f"download failed: {exc}", transient=True) from exc
        finally:
            response.release_conn()
        return {"md5": md5.hexdigest(), "sha256": sha.hexdigest(), "bytes": str(size)}

    def fetch_row(self, row: Row) -> dict[str, Any]:
        """Download, verify and store one row; raises :class:`Refused` with the reason."""
        if not row.url:
            raise Refused("no url")
        kind = _digest_kind(row.digest)
        partial = self.out / ".partial"
        attempt = 0
        while True:
            fd, tmp = tempfile.mkstemp(dir=partial, prefix=f"{row.index}-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    digests = self.download(row.url, fh)
                if digests[kind] != row.digest:
                    raise Refused(
                        f"{kind} mismatch: file has {digests[kind]}, shard says {row.digest}"
                    )
                fmt, size = _identify(Path(tmp))
                sha = digests["sha256"]
                rel = PurePosixPath(
                    "images", sha[:2], sha + _EXTENSIONS.get(fmt, f".{fmt.lower()}")
                )
                (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, self.out / rel)
                return {
                    "path": rel.as_posix(),
                    "sha256": sha,
                    "md5": digests["md5"],
                    "bytes": int(digests["bytes"]),
                    "format": fmt,
                    "width": size[0] if size else None,
                    "height": size[1] if size else None,
                }
            except Refused as exc:
                if not exc.transient or attempt >= self.retries:
                    if exc.transient and attempt:
                        exc.reason += f" (after {attempt + 1} attempts)"
                    raise
                time.sleep(self.backoff_s * 2**attempt)
                attempt += 1
            finally:
                Path(tmp).unlink(missing_ok=True)

    def get_shard(self, location: str) -> Path:
        """A local shard: the path itself, or the URL downloaded once into ``out/shards``."""
        if urlparse(location).scheme not in ("http", "https"):
            path = Path(location)
            if not path.is_file():
                raise DatasetError(f"Shard {location!r} does not exist.")
            return path
        name = PurePosixPath(urlparse(location).path).name or "shard"
        target = self.out / "shards" / name
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{name}.part")
        try:
            with tmp.open("wb") as fh:
                self.download(location, fh)
        except Refused as exc:
            tmp.unlink(missing_ok=True)
            raise DatasetError(f"Cannot download the shard {location}: {exc.reason}.") from exc
        os.replace(tmp, target)
        return target


def _identify(path: Path) -> tuple[str, tuple[int, int] | None]:
    """Format and size from the file's header (and a structural check); not a full decode."""

    try:
        with Image.open(path) as im:
            fmt, size = im.format or "unknown", im.size
            im.verify()
        return fmt, size
    except Image.DecompressionBombError:
        # A real but huge image: kept; the run decides (max_side, or excluded with a reason).
        return _header_format(path), None
    except UnidentifiedImageError as exc:
        raise Refused("not an image: Pillow cannot identify the bytes") from exc
    except Exception as exc:  # a corrupt file raises whatever its plugin raises
        raise Refused(f"not an image: {type(exc).__name__}: {exc}") from exc


def _header_format(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(12)
    if head.startswith(b"\x89PNG"):
        return "PNG"
    if head.startswith(b"\xff\xd8"):
        return "JPEG"
    if head[8:12] == b"WEBP":
        return "WEBP"
    return "unknown"


def _journal(path: Path) -> dict[int, dict[str, Any]]:
    """Finished rows from an earlier (possibly killed) fetch; a torn last line is ignored."""
    done: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line a kill cut short
        done[int(entry["row"])] = entry
    return done


def _reusable(entry: dict[str, Any] | None, row: Row, out: Path) -> bool:
    """Whether a journal entry settles ``row``: same row, and a kept file still in place or a
    permanent refusal."""
    if entry is None or entry.get("id") != row.id or entry.get("url") != row.url:
        return False
    if entry["status"] == "kept":
        file = out / entry["path"]
        return file.is_file() and file.stat().st_size == entry["bytes"]
    return not entry.get("transient", False)


def _check_same_fetch(out: Path, params: dict[str, Any]) -> None:
    path = out / "fetch.json"
    if path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        if before != params:
            raise DatasetError(
                f"{out} holds a fetch of {before.get('shard')!r} with other columns or shard; "
                "pass a new --out folder (or delete this one) to fetch something else."
            )
    else:
        path.write_text(json.dumps(params, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Written beside and renamed: a kill never leaves half a manifest."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def fetch_dataset(
    shard: str,
    out: str | Path,
    *,
    limit: int | None = None,
    columns: dict[str, str | None] | None = None,
    default_category: str = "unknown",
    concurrency: int = 16,
    retries: int = 3,
    timeout_s: float = 30.0,
    backoff_s: float = 0.5,
    on_row: Callable[[bool], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> FetchReport:
    """Fetch the first ``limit`` rows of ``shard`` into ``out`` (see the module docstring).

    ``on_start(n_rows)`` is called once the shard is read; ``on_row(resumed)`` after each row,
    with ``resumed`` True for rows settled by an earlier run.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fetcher = Fetcher(
        out, concurrency=concurrency, retries=retries, timeout_s=timeout_s, backoff_s=backoff_s
    )
    rows = read_shard(fetcher.get_shard(shard), limit, columns, default_category)
    params = {
        "shard": shard,
        "columns": {k: v for k, v in sorted((columns or {}).items()) if v},
        "default_category": default_category,
    }
    _check_same_fetch(out, params)
    partial = out / ".partial"
    partial.mkdir(exist_ok=True)
    for stale in partial.iterdir():  # files a killed run was writing
        stale.unlink()
    journal_path = out / "fetch.jsonl"
    earlier = _journal(journal_path)
    results: dict[int, dict[str, Any]] = {}
    todo: list[Row] = []
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            results[row.index] = _entry(
                row, Refused(f"duplicate id: {row.id!r} is on an earlier row")
            )
            continue
        seen.add(row.id)
        if _reusable(earlier.get(row.index), row, out):
            results[row.index] = earlier[row.index]
        else:
            todo.append(row)
    report = FetchReport(resumed=len(results))
    if on_start is not None:
        on_start(len(rows))
    if on_row is not None:
        for _ in range(len(results)):
            on_row(True)
    with journal_path.open("a", encoding="utf-8") as journal, warnings.catch_warnings():
        # Huge images are kept (see _identify); set here, not in the threads, as warning
        # filters are process-wide.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for row, entry in _run(fetcher, todo):
            results[row.index] = entry
            # One flushed line per row: a kill loses at most the rows still in flight.
            journal.write(json.dumps(entry, sort_keys=True) + "\n")
            journal.flush()
            if on_row is not None:
                on_row(False)
    for index in sorted(results):
        entry = results[index]
        (report.kept if entry["status"] == "kept" else report.refused).append(entry)
    _write_csv(out / MANIFEST, MANIFEST_FIELDS, report.kept)
    _write_csv(out / "refused.csv", ("row", "id", "url", "reason"), report.refused)
    return report


def _entry(row: Row, outcome: dict[str, Any] | Refused) -> dict[str, Any]:
    base = {
        "row": row.index,
        "id": row.id,
        "url": row.url,
        "digest": row.digest,
        "licence": row.licence,
        "category": row.category,
        # The record's provenance: where the file came from.
        "source": row.url,
    }
    if isinstance(outcome, Refused):
        return {
            **base,
            "status": "refused",
            "reason": outcome.reason,
            "transient": outcome.transient,
        }
    return {**base, "status": "kept", **outcome}


def _run(fetcher: Fetcher, todo: list[Row]) -> Iterator[tuple[Row, dict[str, Any]]]:
    """Rows as they finish, with at most a few times ``concurrency`` submitted at once."""

    def one(row: Row) -> dict[str, Any]:
        try:
            return _entry(row, fetcher.fetch_row(row))
        except Refused as exc:
            return _entry(row, exc)

    queue = iter(todo)
    window = 4 * fetcher.concurrency
    with ThreadPoolExecutor(max_workers=fetcher.concurrency) as pool:
        pending: dict[Future[dict[str, Any]], Row] = {}
        try:
            while True:
                for row in queue:
                    pending[pool.submit(one, row)] = row
                    if len(pending) >= window:
                        break
                if not pending:
                    return
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield pending.pop(future), future.result()
        finally:
            for future in pending:
                future.cancel()
