"""Results documents: schema-versioned JSON, written atomically, loaded with migrations.

A result is a plain JSON object (see ``evaluate.evaluate`` for how it is built)::

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
     "recommendations": [{"algorithm", "targets": [...]}],
     "sweeps": [...], "failures": [...], "status": {...},
     "run": {"created_utc", "elapsed_s", "workers"}}

Everything except ``run`` is a deterministic function of the suite, the data and the environment.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from harness.errors import HarnessError, SchemaVersionError

SCHEMA_VERSION = 2


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


#: Migrations from version N to N + 1, applied one step at a time.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}

REQUIRED = ("suite", "dataset", "environment", "algorithms", "transforms", "cells", "collisions")


def to_json(result: dict[str, Any]) -> str:
    """Serialise deterministically (stable key order as built, no NaN, trailing newline)."""
    return json.dumps(result, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str | bytes) -> Path:
    """Write ``text`` (UTF-8; bytes as they are) to a temporary file beside ``path`` and
    rename it into place.

    A crash leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed mid-write
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def dump(result: dict[str, Any], path: str | Path) -> Path:
    """Write a result to ``path`` atomically."""
    return atomic_write_text(path, to_json(result))


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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"Cannot read {what} file {str(path)!r}: {exc.strerror}.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not valid JSON (truncated or not a {what} file): {exc}.") from exc
    if not isinstance(data, dict):
        raise error(f"{path} is not a {what} file: expected a JSON object.")
    return data


def load(path: str | Path) -> dict[str, Any]:
    """Read a results file, refusing unreadable, truncated, newer or malformed documents."""
    path = Path(path)
    data = read_json_object(path, what="results")
    data = migrate(data)
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise HarnessError(f"{path} is not a results file: missing {', '.join(missing)}.")
    problem = _shape_problem(data)
    if problem:
        raise HarnessError(
            f"{path} is malformed: {problem}; regenerate it with `hash-harness run`."
        )
    return data


#: Expected shape of the parts every reader relies on: section -> (type, {item key: type}).
_SHAPE: dict[str, tuple[type, dict[str, type | tuple[type, ...]]]] = {
    "suite": (dict, {}),
    "dataset": (dict, {}),
    "environment": (dict, {}),
    "algorithms": (list, {"id": str, "thresholds": list, "n_bits": int}),
    "transforms": (list, {"id": str, "steps": list}),
    "cells": (list, {"algorithm": str, "transform": str, "metrics": list, "positives": dict}),
    "collisions": (list, {"algorithm": str, "protocol": str, "hist": list, "metrics": list}),
}


def _shape_problem(data: dict[str, Any]) -> str | None:
    """The first place where ``data`` does not have the shape readers rely on, or None."""
    for section, (kind, items) in _SHAPE.items():
        value = data.get(section)
        if not isinstance(value, kind):
            return f"{section!r} must be a {kind.__name__}, not {type(value).__name__}"
        if kind is list:
            for i, item in enumerate(cast(list[Any], value)):
                if not isinstance(item, dict):
                    return f"{section}[{i}] must be an object"
                for key, want in items.items():
                    if not isinstance(item.get(key), want):
                        return f"{section}[{i}].{key} is missing or of the wrong type"
    suite, dataset = data["suite"], data["dataset"]
    if not isinstance(suite.get("name"), str) or not isinstance(suite.get("version"), int):
        return "suite.name and suite.version must be a string and an int"
    if not isinstance(dataset.get("images"), list):
        return "dataset.images must be a list"
    return None


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


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """The result without ``run`` (timestamps, elapsed time, worker count)."""
    return {k: v for k, v in result.items() if k != "run"}
