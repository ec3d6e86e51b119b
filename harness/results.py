"""Results documents: schema-versioned JSON, written atomically, loaded with migrations.

In Python a result is the typed :class:`harness.result_model.Results`; this module is the one
place that turns JSON into it and back (:func:`from_json` / :func:`from_builtins` migrate older
schema versions first and validate, :func:`to_json` writes). As JSON (built by
``evaluate.evaluate``)::

    {"schema_version": 2, "harness_version": "...",
     "suite": {"name", "version", "config", "config_sha256"},
     "dataset": {"name", "manifest_sha256", "content_sha256", "n_images", "n_evaluated",
                 "images": [... "split": "calibration" | "held_out"], "excluded": [...]},
     "environment": {...}, "seed": 0,
     "algorithms": [...], "transforms": [...], "protocols": {...},
     "hygiene": {"exact_duplicates", "near_duplicates"},
     "cells": [{"algorithm", "transform", "n_bits", "positives",
                "negatives": {protocol: {"n", "hist", "summary"}}, "metrics", "misses",
                "false_matches"}],
     "collisions": [{"algorithm", "protocol", "n_pairs", "hist", "metrics", "closest_pairs"}],
     "quality": [...], "curves": [{"algorithm", "auc", "eer", "roc", "det", "tpr_at_fpr", ...}],
     "recommendations": [{"algorithm", "targets": [...], "fixed": [...]}],
     "leaderboard": {...}, "impostors": {"sidecar", "algorithms", "sha256", ...},
     "sweeps": [...], "failures": [...], "status": {...},
     "run": {"created_utc", "elapsed_s", "workers"}}

Everything except ``run`` is a deterministic function of the suite, the data and the environment.

Each image's impostor-distance histograms (per algorithm, against the calibration and against
the held-out images) are ``n_images x levels`` integer arrays: too big for JSON at scale, so
:func:`dump` writes them beside ``NAME.json`` as ``NAME.impostors.npz`` (plain NumPy arrays, no
pickles; read them with :func:`load_impostors` or ``numpy.load``), and the results document
records their digest.

Threshold statuses everywhere are ``ok``, ``unresolved``, ``unachievable`` and ``undefined``
(see :data:`harness.metrics.STATUSES`); a threshold that matches nothing is ``null``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import msgspec
import numpy as np
import numpy.typing as npt

from harness.core.errors import HarnessError, SchemaVersionError
from harness.result_model import Results

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: output folders are not locked
    fcntl = None  # type: ignore[assignment]

SCHEMA_VERSION = 3

IMPOSTOR_SUFFIX = ".impostors.npz"

#: Per algorithm ``(vs_calibration, vs_held_out)``, and for an asymmetric metric the same pairs
#: each at one distance after them (:attr:`harness.thresholds.Evidence.pairs`).
ImpostorArrays = Mapping[str, tuple[npt.NDArray[np.int32], ...]]
#: The arrays of algorithm ``k`` in the sidecar, in the order of its :data:`ImpostorArrays` entry.
_ARRAYS = ("vs_calibration", "vs_held_out", "pairs_vs_calibration", "pairs_vs_held_out")


class ImpostorTable(dict[str, Any]):
    """A result's ``impostors`` entry: the JSON summary (a plain dict to ``json``, equality and
    copies) carrying, until :func:`dump` writes them beside results.json, the arrays it
    describes in ``arrays``."""

    def __init__(self, summary: dict[str, Any], arrays: ImpostorArrays) -> None:
        super().__init__(summary)
        self.arrays = arrays


def _v1_to_v2(result: dict[str, Any]) -> dict[str, Any]:
    """v2 keeps one negatives entry per protocol and names the protocol of every FPR metric.

    v1 had only ``edited_vs_other_originals`` per cell; the sections v2 added (hygiene, quality,
    curves, recommendations) are left empty rather than invented.
    """
    for cell in result.get("cells", []):
        neg = cell.get("negatives", {})
        protocol = neg.pop("protocol", "edited_vs_other_originals")
        cell["negatives"] = {protocol: neg}
        for m in cell.get("metrics", []):
            if m.get("name") == "fpr":
                m["params"]["protocol"] = protocol
        cell.setdefault("false_matches", [])
    for key in ("quality", "curves", "recommendations"):
        result.setdefault(key, [])
    result.setdefault("hygiene", {"exact_duplicates": [], "near_duplicates": None})
    result["schema_version"] = 2
    return result


def _none_if_negative(value: Any) -> Any:
    return None if isinstance(value, int) and value < 0 else value


def _v2_to_v3(result: dict[str, Any]) -> dict[str, Any]:
    """v3: statuses instead of ``-1`` thresholds, gated copies counted as misses, the
    calibrated threshold in the leaderboard, fixed thresholds scored, per-image impostors.

    Gated copies are rebuilt from ``exclusions`` and the TPR metrics recounted with them;
    the per-image impostor histograms and the fixed-threshold bootstrap were not kept by v2
    (``impostors`` is null and ``fixed`` empty: rerun for them).
    """
    from harness.metrics import rate, threshold_choice
    from harness.summaries import leaderboard

    images = result.get("dataset", {}).get("images", [])
    category = {i["id"]: i.get("category") or "uncategorised" for i in images}
    excluded: dict[tuple[str, str], set[str]] = {}
    for e in result.get("exclusions", []):
        excluded.setdefault((e["algorithm"], e["transform"]), set()).add(e["image"])
    for cell in result.get("cells", []):
        pos = cell["positives"]
        dead_original = excluded.get((cell["algorithm"], "original"), set())
        pos["gated"] = [
            i["id"]
            for i in images
            if i.get("status", "ok") == "ok"
            and i["id"] in excluded.get((cell["algorithm"], cell["transform"]), set())
            and i["id"] not in dead_original
        ]
        for m in cell.get("metrics", []):
            if m["name"] != "tpr" or not pos["gated"]:
                continue
            cat = m["params"].get("category")
            extra = sum(1 for i in pos["gated"] if cat is None or category[i] == cat)
            m.update(rate(m["k"], m["n"] + extra).to_dict())
    for curve in result.get("curves", []):
        for key in ("roc", "det"):
            if key in curve:
                curve[key]["threshold"] = [_none_if_negative(t) for t in curve[key]["threshold"]]
        if "eer" in curve:
            curve["eer"]["threshold"] = _none_if_negative(curve["eer"]["threshold"])
        for point in curve.get("tpr_at_fpr", []) + curve.get("fpr_at_tpr", []):
            point["threshold"] = _none_if_negative(point["threshold"])
            if point.get("status") == "unreachable":
                point["status"] = "undefined"
    for rec in result.get("recommendations", []):
        for t in rec["targets"]:
            t["reason"] = t.pop("explanation", "")
            if t["threshold"] is not None and t["threshold"] < 0:
                t["threshold"] = None
                t["status"] = "unachievable"
                t["reason"] = threshold_choice([1], t["target_fpr"], "the calibration images")[
                    "reason"
                ].split(" (")[0]
            t["threshold_ci95"] = [_none_if_negative(x) for x in t["threshold_ci95"]]
        rec.setdefault("fixed", [])
    result["impostors"] = None
    if result.get("leaderboard"):
        result["leaderboard"] = leaderboard(result, result["leaderboard"]["target_fpr"])
    result["schema_version"] = 3
    return result


#: Migrations from version N to N + 1, applied one step at a time.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}

REQUIRED = ("suite", "dataset", "environment", "algorithms", "transforms", "cells", "collisions")


def to_builtins(result: Results | Mapping[str, Any]) -> dict[str, Any]:
    """The document as plain JSON values (dicts, lists, str, numbers), keys in schema order."""
    if isinstance(result, Results):
        return cast(dict[str, Any], msgspec.to_builtins(result))
    return dict(result)


def to_json(result: Results | Mapping[str, Any]) -> str:
    """Serialise deterministically (stable key order as built, no NaN, trailing newline).

    ``to_json(from_json(text)) == text`` for every document this version writes.
    """
    return json.dumps(to_builtins(result), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def from_builtins(data: dict[str, Any], *, source: str = "the document") -> Results:
    """The typed document of a parsed JSON object: older schema versions migrated first, then
    every section checked against :mod:`harness.result_model` (one-line :class:`HarnessError`
    naming the first bad field and where it is).

    An :class:`ImpostorTable` (a fresh run's, arrays not yet written) is kept as it is, so the
    arrays reach :func:`output_set`.
    """
    data = migrate(data)
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise HarnessError(f"{source} is not a results file: missing {', '.join(missing)}.")
    try:
        doc = msgspec.convert(data, Results)
    except msgspec.ValidationError as exc:
        raise HarnessError(
            f"{source} is malformed: {exc}; regenerate it with `hash-harness run`."
        ) from exc
    table = data.get("impostors")
    if isinstance(table, ImpostorTable):
        doc = msgspec.structs.replace(doc, impostors=table)
    return doc


def from_json(text: str | bytes, *, source: str = "the document") -> Results:
    """The typed document of results.json text (see :func:`from_builtins`)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{source} is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise HarnessError(f"{source} is not a results file: expected a JSON object.")
    return from_builtins(data, source=source)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class OutputError(HarnessError):
    """An output file or folder cannot be written (a file where a folder is needed, read-only,
    no space)."""


def _shown(path: Path) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _write_temp(path: Path, text: str | bytes, mode: int | None = None) -> str:
    """``text`` (UTF-8; bytes as they are) in a new temporary file beside ``path``, flushed to
    disk, with permissions ``mode`` from the start (default: the usual); returns its name."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed mid-write
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask() if mode is None else mode)  # mkstemp creates 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_text(path: str | Path, text: str | bytes, mode: int | None = None) -> Path:
    """Write ``text`` (UTF-8; bytes as they are) to a temporary file beside ``path`` and rename
    it into place.

    A crash leaves either the old file or the new one, never half of one. A path that is a
    folder, or a folder that cannot be written, raises :class:`OutputError` (one line).
    ``mode`` (e.g. ``0o600`` for a secret) applies before any byte is written.
    """
    return write_set({Path(path): text}, mode)[0]


def output_set(result: Results, path: str | Path) -> dict[Path, str | bytes]:
    """The files of a result at ``path``: its impostor arrays beside it (if it has any), then
    the JSON itself, in the order :func:`write_set` puts them in place (``path`` last)."""
    path = Path(path)
    files: dict[Path, str | bytes] = {}
    table = result.impostors
    if isinstance(table, ImpostorTable):
        ids = [i.id for i in result.dataset.images]
        split = [str(i.split) for i in result.dataset.images]
        files[impostors_path(path)] = _npz(ids, split, table.arrays)
    files[path] = to_json(result)
    return files


def dump(result: Results, path: str | Path) -> Path:
    """Write a result to ``path`` and its impostor arrays (if any) beside it, as one set."""
    return write_set(output_set(result, path))[-1]


def impostors_path(results_path: str | Path) -> Path:
    """Where the impostor arrays of ``results_path`` live: ``NAME.impostors.npz`` beside it."""
    p = Path(results_path)
    return p.with_name(p.stem + IMPOSTOR_SUFFIX)


def _impostor_fields(
    ids: list[str], split: list[str], arrays: ImpostorArrays
) -> dict[str, npt.NDArray[Any]]:
    fields: dict[str, npt.NDArray[Any]] = {
        "image_ids": np.array(ids, dtype=str),
        "split": np.array(split, dtype=str),
        "algorithms": np.array(list(arrays), dtype=str),
    }
    for k, rows in enumerate(arrays.values()):
        for name, value in zip(_ARRAYS, rows, strict=False):
            fields[f"a{k}_{name}"] = np.ascontiguousarray(value, dtype=np.int32)
    return fields


def impostor_summary(
    ids: list[str], calibration: npt.NDArray[np.bool_], arrays: ImpostorArrays
) -> ImpostorTable:
    """What results.json says about its impostor sidecar: layout and a digest of the content."""
    split = ["calibration" if c else "held_out" for c in calibration]
    digest = hashlib.sha256()
    for name, value in _impostor_fields(ids, split, arrays).items():
        digest.update(name.encode() + b"\0" + str(value.shape).encode() + value.tobytes())
    summary = {
        "sidecar": "NAME" + IMPOSTOR_SUFFIX + " beside NAME.json",
        "protocol": "originals_all_pairs",
        "algorithms": list(arrays),
        "n_images": len(ids),
        "layout": (
            "per algorithm k: a{k}_vs_calibration and a{k}_vs_held_out, int32 n_images x "
            "levels: counts of each image's pairs at each distance with the calibration / "
            "held-out originals (other groups only; rows in image_ids order, split per image)"
        )
        + (
            "; for an asymmetric metric also a{k}_pairs_vs_calibration and "
            "a{k}_pairs_vs_held_out: the same pairs, each at one distance (its earlier image's "
            "as the upload), which pair counts read"
            if any(len(rows) > 2 for rows in arrays.values())
            else ""
        ),
        "sha256": digest.hexdigest(),
    }
    return ImpostorTable(summary, arrays)


def _npz(ids: list[str], split: list[str], arrays: ImpostorArrays) -> bytes:
    """A NumPy ``.npz`` with fixed timestamps, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, value in _impostor_fields(ids, split, arrays).items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as fh:
                np.lib.format.write_array(fh, value, allow_pickle=False)
    return buffer.getvalue()


def load_impostors(
    results_path: str | Path, result: Results
) -> dict[str, tuple[npt.NDArray[np.int32], ...]]:
    """The per-image impostor arrays of a loaded result, checked against its digest."""
    summary = result.impostors or None
    if not summary:
        raise HarnessError(
            f"{results_path} keeps no per-image impostor histograms (written before schema 3): "
            "rerun `hash-harness run` (the hash cache makes it quick)."
        )
    path = impostors_path(results_path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            fields = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise HarnessError(
            f"Cannot read {path} (the impostor histograms of {results_path}): {exc}."
        ) from exc
    algos = [str(a) for a in fields.get("algorithms", [])]
    arrays = {
        a: tuple(fields[f"a{k}_{name}"] for name in _ARRAYS if f"a{k}_{name}" in fields)
        for k, a in enumerate(algos)
    }
    split = [str(s) for s in fields["split"]]
    check = impostor_summary(
        [str(i) for i in fields["image_ids"]], np.array([s == "calibration" for s in split]), arrays
    )
    if check["sha256"] != summary["sha256"]:
        raise HarnessError(f"{path} does not belong to {results_path} (digest differs): rerun.")
    return arrays


def write_set(texts: dict[Path, str | bytes], mode: int | None = None) -> list[Path]:
    """Write several files as one set: every file goes to a temporary file first, and only when
    all are on disk are they renamed into place, in the given order (put ``results.json`` last,
    so that a set is complete once it is there). If any write fails (no space, read-only), the
    temporary files are removed and no existing file was touched.
    """
    temps: dict[Path, str] = {}
    try:
        for path in texts:
            if path.is_dir():
                raise OutputError(f"{_shown(path)} is a folder; give a file name to write to.")
            path.parent.mkdir(parents=True, exist_ok=True)
        for path, text in texts.items():
            temps[path] = _write_temp(path, text, mode)
        for path, tmp in temps.items():
            os.replace(tmp, path)
    except OSError as exc:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
        target = Path(exc.filename) if exc.filename else next(iter(texts)).parent
        where = _shown(target)
        raise OutputError(
            f"Cannot write {where}: {exc.strerror or exc}; no output file was replaced."
        ) from exc
    except BaseException:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
        raise
    return list(texts)


def check_output_folder(folder: str | Path, names: tuple[str, ...]) -> Path:
    """Refuse an output folder before any work: a file in its place, a file name that is a
    folder, a folder that cannot be created or written, or less free space than the outputs
    already there take (what this run will roughly write again)."""
    folder = Path(folder)
    shown = _shown(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"--out {shown} is a file, not a folder; pass a folder for the results.")
    for name in names:
        if (folder / name).is_dir():
            raise OutputError(f"{shown}/{name} is a folder; move it away or pass another --out.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _write_temp(folder / ".write-probe", "")
        Path(probe).unlink()
    except OSError as exc:
        raise OutputError(
            f"Cannot write to the output folder {shown}: {exc.strerror or exc}; "
            "pass a writable --out."
        ) from exc
    previous = sum((folder / n).stat().st_size for n in names if (folder / n).is_file())
    free = shutil.disk_usage(folder).free
    if free < previous:
        raise OutputError(
            f"The output folder {shown} has {free:,} bytes free, less than the {previous:,} "
            "bytes of the results already there; free some space or pass another --out."
        )
    _lock_output_folder(folder)
    return folder


#: The lock file of an output folder being written (holds the writer's process id).
LOCK_FILE = ".hash-harness.lock"
#: Output folders this process has locked: folder -> the open lock file.
_LOCKS: dict[Path, int] = {}


def _lock_output_folder(folder: Path) -> None:
    """Lock ``folder`` for this process until :func:`release_output_folders`: a second command
    writing there meanwhile is refused instead of mixing its files with this one's. The lock
    is the system's (``flock``), so it ends with the process however that ends: a lock file a
    killed run left behind never blocks anyone."""
    if fcntl is None or folder.resolve() in _LOCKS:
        return
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputError(
                f"{_shown(folder)} is being written by another hash-harness command (process "
                f"{holder}); wait for it to finish or pass another --out."
            ) from None
        try:  # its last holder may have removed the file between our open and our lock
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _LOCKS[folder.resolve()] = fd


def lock_output_folder(folder: str | Path) -> Path:
    """Create ``folder`` if needed and lock it as ``run``'s and ``score``'s --out are locked
    (``export`` writes there too: two commands never mix their files in one folder)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"Cannot create the output folder {_shown(folder)}: {exc.strerror or exc}; "
            "pass a writable --out."
        ) from exc
    _lock_output_folder(folder)
    return folder


def release_output_folder(folder: Path) -> None:
    """Unlock one output folder this process locked (the lock file is removed)."""
    fd = _LOCKS.pop(folder.resolve(), None)
    if fd is not None:
        (folder / LOCK_FILE).unlink(missing_ok=True)  # while still held: no one else's lock
        os.close(fd)


def release_output_folders() -> None:
    """Unlock every output folder this process locked (the lock file is removed)."""
    for folder in list(_LOCKS):
        release_output_folder(folder)


def new_run_id() -> str:
    """A run's id, written into every file of its output set (not part of any comparison)."""
    return uuid.uuid4().hex[:16]


#: How every output file names its run: "hash-harness run id: <hex>".
RUN_ID_MARK = "hash-harness run id: "
_RUN_ID = re.compile(re.escape(RUN_ID_MARK) + r"([0-9a-f]+)")


def run_id_of_file(path: Path) -> str | None:
    """The run id a report file carries near its start or end, or None (no mark, unreadable)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            tail = fh.read()
    except OSError:
        return None
    m = _RUN_ID.search((head + b"\n" + tail).decode("utf-8", "replace"))
    return m[1] if m else None


def mixed_set(results_path: str | Path, result: Results, names: tuple[str, ...]) -> list[str]:
    """Report files beside ``results_path`` that belong to another run than ``result``: a set
    left mixed by an interrupted write or a copy by hand."""
    run_id = result.run.id if result.run and result.run.id else None
    folder = Path(results_path).parent
    problems = []
    for name in names:
        path = folder / name
        if run_id is None or not path.is_file():
            continue
        theirs = run_id_of_file(path)
        if theirs != run_id:
            problems.append(
                f"{_shown(path)} is from run {theirs or 'unknown'}, not from run {run_id} of "
                f"{_shown(Path(results_path))}: a mixed output set; regenerate it with "
                "`hash-harness report`"
            )
    return problems


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older result up to :data:`SCHEMA_VERSION`, one step at a time."""
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise SchemaVersionError(f"schema_version must be a positive int, got {version!r}.")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"This result has schema_version {version}, newer than this hash-harness reads "
            f"({SCHEMA_VERSION}): upgrade hash-harness."
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SchemaVersionError(f"No migration from schema_version {version}.")
        data = step(data)
        version += 1
        data["schema_version"] = version
    return data


def read_json_object(
    path: Path, *, what: str, error: type[HarnessError] = HarnessError
) -> dict[str, Any]:
    """The JSON object in ``path``; an unreadable, truncated or non-object file raises
    ``error`` naming ``what`` the file was meant to be."""
    shown = _shown(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"Cannot read {what} file {shown!r}: {exc.strerror}.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{shown} is not valid JSON (truncated or not a {what} file): {exc}.") from exc
    except RecursionError as exc:
        raise error(f"{shown} nests JSON too deeply to be a {what} file.") from exc
    if not isinstance(data, dict):
        raise error(f"{shown} is not a {what} file: expected a JSON object.")
    if nesting_depth(data) > MAX_DEPTH:
        raise error(f"{shown} nests JSON deeper than {MAX_DEPTH} levels: not a {what} file.")
    return data


#: Deepest nesting accepted in a JSON document (results nest about 8 levels).
MAX_DEPTH = 64


def nesting_depth(data: Any) -> int:
    """How deeply lists and objects nest in ``data`` (iterative: no recursion limit)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def load(path: str | Path) -> Results:
    """Read a results file as its typed document, refusing unreadable, truncated, newer or
    malformed documents with a one-line :class:`HarnessError`."""
    path = Path(path)
    return from_builtins(read_json_object(path, what="results"), source=_shown(path))


def load_document(
    path: str | Path,
    *,
    kind: str,
    schema_key: str,
    schema: int,
    create: str,
    error: type[HarnessError] = HarnessError,
) -> dict[str, Any]:
    """Read a JSON document of ``kind`` (baselines, golden hashes), refusing unreadable,
    truncated, foreign or newer files with a message that says what to do."""
    path = Path(path)
    data = read_json_object(path, what=kind, error=error)
    if data.get("kind") != kind:
        raise error(f"{path} is not a {kind} file; create one with `{create}`.")
    version = data.get(schema_key)
    if not isinstance(version, int) or version > schema:
        raise error(
            f"{path} has {schema_key} {version!r}; this hash-harness reads up to {schema}: "
            "upgrade hash-harness."
        )
    return data


def comparable(result: Results | Mapping[str, Any]) -> dict[str, Any]:
    """The result without ``run`` (timestamps, elapsed time, worker count), as JSON values."""
    return {k: v for k, v in to_builtins(result).items() if k != "run"}


class IncomparableError(HarnessError):
    """Two documents cannot be compared: different suite or suite version, a suite changed
    without a version bump, different images (exit 2)."""


def _identity(doc: Results | Mapping[str, Any]) -> tuple[str, int, str, str | None]:
    """Suite name and version, dataset name and content digest of a result or a baseline."""
    if isinstance(doc, Results):
        content = doc.dataset.content_sha256 or None
        return doc.suite.name, doc.suite.version, doc.dataset.name, content
    suite, dataset = doc["suite"], doc["dataset"]
    return suite["name"], suite["version"], dataset["name"], dataset.get("content_sha256")


def check_comparable(
    reference: Results | Mapping[str, Any],
    other: Results | Mapping[str, Any],
    *,
    labels: tuple[str, str],
    drift: list[str] | None = None,
) -> None:
    """Refuse to compare ``other`` with ``reference`` (a run or a baseline) when the numbers
    would not mean the same thing: another suite or suite version, a suite configuration that
    changed without a version bump (``drift``, readable lines), or other images. ``labels``
    name the two in the message. Raises :class:`IncomparableError`."""
    ref_label, label = labels
    name, version, dataset, content = _identity(other)
    ref_name, ref_version, ref_dataset, ref_content = _identity(reference)
    if (name, version) != (ref_name, ref_version):
        raise IncomparableError(
            f"{label} is suite {name!r} v{version} but {ref_label} is suite {ref_name!r} "
            f"v{ref_version}: compare runs of the same suite version only (run suite "
            f"{ref_name!r} v{ref_version}, or recreate {ref_label} from this suite)."
        )
    if drift:
        raise IncomparableError(
            f"Suite {name!r} v{version} changed without a version bump:\n"
            + "".join(f"  {line}\n" for line in drift)
            + f"Bump `version` in the suite and recreate {ref_label} (an intended change), or "
            f"restore the suite {ref_label} was made with."
        )
    if content != ref_content:
        raise IncomparableError(
            f"{label} was measured on different images than {ref_label} (dataset content "
            f"sha256 differs; dataset {dataset!r} against {ref_dataset!r}): run on the same "
            f"images or recreate {ref_label}."
        )
    _check_labels((ref_label, reference), (label, other))


def _algorithm_ids(doc: Results | Mapping[str, Any]) -> set[str]:
    if isinstance(doc, Results):
        return {a.id for a in doc.algorithms}
    return set(doc["suite"].get("thresholds", {}))  # a baseline keeps thresholds by id


def _check_labels(
    first: tuple[str, Results | Mapping[str, Any]], second: tuple[str, Results | Mapping[str, Any]]
) -> None:
    """Refuse a pair where one side names an external or imported hasher by its former long id
    (``external(bits=64,label='acme')``) and the other by its label (``acme``): their rows
    would silently fail to meet."""
    from harness.algorithms.base import former_label

    (label_a, a), (label_b, b) = first, second
    ids = {label_a: _algorithm_ids(a), label_b: _algorithm_ids(b)}
    for old, new in ((label_a, label_b), (label_b, label_a)):
        for algorithm in sorted(ids[old] - ids[new]):
            short = former_label(algorithm)
            if short is not None and short in ids[new]:
                raise IncomparableError(
                    f"{old} names the hasher {short!r} by its former id {algorithm!r}, {new} by "
                    f"its label {short!r} (hash-harness now names external and precomputed "
                    f"hashers by their label): rerun or re-score {old} with this version (or "
                    "recreate the baseline) to compare them."
                )
