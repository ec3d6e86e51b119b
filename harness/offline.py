"""Vendor evaluation: export every image and edit, score the hashes a vendor returns.

``export`` writes each original and each edited copy of a suite as a lossless PNG with a
manifest; the vendor hashes the files on their own machines and returns ``item_id,hash`` rows
(optionally with ``quality`` and ``excluded`` columns); ``score`` validates those rows and
evaluates them with exactly the pipeline built-in algorithms go through (same pairs, protocols,
statistics and report). Neither side runs the other's code.

Layout of an export folder::

    export.json      suite configuration, dataset identity, per-image sha256/size/licence
    manifest.csv     item_id, image_id, column, file      (column = "original" or a chain id)
    images/i000003/c002.png

A **blind** export (``blind=True``) hands the vendor nothing that names an image or an edit::

    export.json      kind, schema, item count, what to return - no suite, dataset or ids
    manifest.csv     item_id, file                        (sorted by item_id)
    images/3f9c...e1.png

Item names are an HMAC-SHA256 of ``image id, edit`` under a random secret, so they are opaque
and in no order that follows the images or the edits; the same secret gives the same names
again. The secret and the mapping back (item -> image, edit) live only in the evaluator's
**key file**, kept outside the vendor folder; ``score`` reads the key instead of the folder.
Files are written in item order with one fixed modification time, so neither their timestamps
nor their on-disk order follow the images; PNGs carry pixels only (see
:func:`transforms.codec.png_bytes`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import json
import math
import os
import secrets
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from datasets_benign import Dataset, ImageRecord, open_dataset
from datasets_benign.decode import pixel_sha256
from harness.algorithms.precomputed import Precomputed
from harness.errors import HarnessError
from harness.results import atomic_write_text, read_json_object
from harness.runner import HashedCorpus, Progress
from harness.suite import Suite, parse_suite
from transforms.codec import png_bytes

EXPORT_KIND = "hash-harness export"
KEY_KIND = "hash-harness export key"
#: 2: blind exports (a key file beside the vendor folder); unblinded exports are unchanged.
EXPORT_SCHEMA = 2
#: Hex digits of a blind item name (80 bits: no two items of any real export share one).
NAME_DIGITS = 20
#: Modification time of every file of a blind export (2001-09-09), so timestamps carry no order.
FIXED_MTIME = 1_000_000_000
#: What the vendor returns, told in the vendor-facing export.json.
RETURN_FORMAT = (
    "a CSV with the columns item_id,hash (hex or 0/1); optional columns: quality (a number, "
    "higher is better) and excluded (non-empty when your system declines to hash the file, "
    "with the reason)"
)


class VendorHashesError(HarnessError):
    """The vendor's hash file cannot be scored as it is (the message says what to fix)."""


def _item_id(image_index: int, column: int) -> str:
    return f"i{image_index:06d}-c{column:03d}"


def blind_name(secret: str, image_id: str, column: str) -> str:
    """The opaque item name of ``image_id`` under ``column``: an HMAC under the evaluator's
    secret, so nobody without the key can tell which image or edit a file is."""
    message = json.dumps([image_id, column]).encode()
    return hmac.new(bytes.fromhex(secret), message, hashlib.sha256).hexdigest()[:NAME_DIGITS]


def default_key_path(out: str | Path) -> Path:
    """Where the key goes unless told: beside the vendor folder, never inside it."""
    out = Path(out)
    return out.parent / f"{out.resolve().name}.key.json"


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _edits(
    suite: Suite, data: Dataset, columns: list[str], progress: Progress
) -> Iterator[tuple[int, dict[str, Any], int, Image.Image | None, dict[str, Any] | None]]:
    """Per image: ``(index, image entry, -1, None, failure)`` when it cannot be decoded, else
    one ``(index, entry, column, pixels or None, failure or None)`` per column."""
    for i, record in enumerate(data.records):
        entry: dict[str, Any] = {**record.to_dict(), "sha256": None, "size": None}
        try:
            original = record.load()
        except Exception as exc:  # the image's failure, recorded, never the export's
            yield i, entry, -1, None, {"image": record.id, "stage": "decode", "error": str(exc)}
            progress.step()
            continue
        entry.update(sha256=pixel_sha256(original), size=list(original.size))
        for c, column in enumerate(columns):
            try:
                edited = (
                    original
                    if c == 0
                    else suite.transforms[c - 1].apply(
                        original, suite_seed=suite.seed, image_id=record.id
                    )
                )
            except Exception as exc:
                failure = {
                    "image": record.id,
                    "stage": "transform",
                    "transform": column,
                    "error": str(exc),
                }
                yield i, entry, c, None, failure
                continue
            yield i, entry, c, edited, None
        progress.step()


def export(
    suite: Suite,
    out: str | Path,
    *,
    dataset: str | None = None,
    quiet: bool = False,
    blind: bool = False,
    key: str | Path | None = None,
) -> dict[str, Any]:
    """Write every original and edit of ``suite`` as PNG plus the manifest.

    Returns the evaluator's record of the export (export.json, or for ``blind`` the key file's
    content). ``key`` is the key file of a blind export (default :func:`default_key_path`); an
    existing key's secret is reused, so exporting again gives the same names.
    """
    out = Path(out)
    if blind:
        return _export_blind(suite, out, dataset, quiet, Path(key or default_key_path(out)))
    data = open_dataset(dataset or suite.dataset, decode=suite.decode)
    columns = ["original", *[c.id for c in suite.transforms]]
    progress = Progress(len(data.records), quiet, label="images exported")
    rows, images, failures = [], [], []
    for i, entry, c, edited, failure in _edits(suite, data, columns, progress):
        if c <= 0:
            images.append(entry)
        if failure is not None:
            failures.append(failure)
        if edited is None:
            continue
        rel = Path("images") / f"i{i:06d}" / f"c{c:03d}.png"
        (out / rel.parent).mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(png_bytes(edited))
        rows.append(
            {
                "item_id": _item_id(i, c),
                "image_id": entry["id"],
                "column": columns[c],
                "file": str(rel),
            }
        )
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["item_id", "image_id", "column", "file"])
        writer.writeheader()
        writer.writerows(rows)
    doc = {
        "kind": EXPORT_KIND,
        "export_schema": 1,
        **_evaluator_record(suite, data, columns, images, failures),
        "items": len(rows),
    }
    atomic_write_text(out / "export.json", json.dumps(doc, indent=1) + "\n")
    return doc


def _evaluator_record(
    suite: Suite,
    data: Dataset,
    columns: list[str],
    images: list[dict[str, Any]],
    failures: list[dict[str, Any]],
) -> dict[str, Any]:
    """What scoring needs besides the hashes (never shown to the vendor of a blind export)."""
    return {
        "suite": {"name": suite.name, "version": suite.version, "config": dict(suite.config)},
        "dataset": {
            "name": data.name,
            "manifest_sha256": data.manifest_sha256,
            "excluded": data.excluded,
        },
        "columns": columns,
        "images": images,
        "failures": failures,
    }


def _secret(key: Path) -> str:
    """The secret of an existing key file (same names on a re-export), else a fresh one."""
    if not key.exists():
        return secrets.token_hex(32)
    doc = read_json_object(key, what=KEY_KIND, error=VendorHashesError)
    secret = doc.get("secret")
    if doc.get("kind") != KEY_KIND or not isinstance(secret, str) or len(secret) != 64:
        raise VendorHashesError(
            f"{key} exists and is not a blind-export key; choose another --key."
        )
    return secret


def _export_blind(
    suite: Suite, out: Path, dataset: str | None, quiet: bool, key: Path
) -> dict[str, Any]:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise VendorHashesError(
            f"{out} is not an empty folder; a blind export starts empty so that nothing but "
            "its own files reaches the vendor."
        )
    if _inside(key, out):
        warnings.warn(
            f"the key file {key} is inside the vendor folder {out}: move it out before the "
            "folder is handed over, or the export is not blind",
            stacklevel=3,
        )
    secret = _secret(key)
    data = open_dataset(dataset or suite.dataset, decode=suite.decode)
    columns = ["original", *[c.id for c in suite.transforms]]
    progress = Progress(len(data.records), quiet, label="images exported")
    items: dict[str, list[int]] = {}
    images: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    # Written under their final names into a staging folder, then moved into images/ in name
    # order: the files' on-disk order and timestamps follow the opaque names, not the images.
    staging = out / ".staging"
    staging.mkdir(parents=True)
    for i, entry, c, edited, failure in _edits(suite, data, columns, progress):
        if c <= 0:
            images.append(entry)
        if failure is not None:
            failures.append(failure)
        if edited is None:
            continue
        name = blind_name(secret, entry["id"], columns[c])
        if name in items:  # 80 bits: never in practice, but never silently either
            raise VendorHashesError(f"two items share the blind name {name}; export again.")
        items[name] = [i, c]
        (staging / f"{name}.png").write_bytes(png_bytes(edited))
    (out / "images").mkdir()
    for name in sorted(items):
        target = out / "images" / f"{name}.png"
        shutil.copyfile(staging / f"{name}.png", target)  # a new file, allocated in name order
        os.utime(target, (FIXED_MTIME, FIXED_MTIME))
    shutil.rmtree(staging)
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["item_id", "file"])
        writer.writerows([name, f"images/{name}.png"] for name in sorted(items))
    vendor = {
        "kind": EXPORT_KIND,
        "export_schema": EXPORT_SCHEMA,
        "blind": True,
        "items": len(items),
        "return": RETURN_FORMAT,
    }
    atomic_write_text(out / "export.json", json.dumps(vendor, indent=1) + "\n")
    for path in (out / "manifest.csv", out / "export.json", out / "images", out):
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    doc = {
        "kind": KEY_KIND,
        "export_schema": EXPORT_SCHEMA,
        "note": "the evaluator's key of a blind export: never give this file to the vendor",
        "vendor_folder": str(out.resolve()),
        "secret": secret,
        **_evaluator_record(suite, data, columns, images, failures),
        "items": dict(sorted(items.items())),
    }
    key.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(key, json.dumps(doc, indent=1) + "\n")
    key.chmod(0o600)
    return doc


def _read_export(path: Path) -> dict[str, Any]:
    """An export's evaluator record: export.json of an export folder, or a blind export's key."""
    if path.is_dir():
        doc = read_json_object(path / "export.json", what=EXPORT_KIND, error=VendorHashesError)
        if doc.get("kind") == EXPORT_KIND and doc.get("blind"):
            raise VendorHashesError(
                f"{path} is a blind export: score it with its key file "
                "(hash-harness score KEY.json --hashes ...), not with the vendor folder."
            )
        expected = EXPORT_KIND
    else:
        doc = read_json_object(path, what=KEY_KIND, error=VendorHashesError)
        expected = KEY_KIND
    if doc.get("kind") != expected or doc.get("export_schema", 0) > EXPORT_SCHEMA:
        raise VendorHashesError(f"{path} is not an export or key this hash-harness reads.")
    return doc


def _items(path: Path, doc: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """``item_id -> (image index, column index)`` of an export."""
    if doc["kind"] == KEY_KIND:
        return {name: (int(i), int(c)) for name, (i, c) in doc["items"].items()}
    with (path / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        return {
            m["item_id"]: (int(m["item_id"][1:7]), int(m["item_id"][-3:]))
            for m in csv.DictReader(fh)
        }


def _bits_of(text: str, n_bits: int | None) -> npt.NDArray[np.bool_]:
    text = text.strip().lower()
    if text and set(text) <= {"0", "1"} and (n_bits is None or len(text) == n_bits):
        return np.frombuffer(text.encode(), np.uint8) == ord("1")
    raw = bytes.fromhex(text.removeprefix("0x"))
    if not raw:
        raise ValueError("empty hash")
    bits = np.unpackbits(np.frombuffer(raw, np.uint8)).astype(bool)
    if n_bits is None:
        return bits
    if len(raw) != (n_bits + 7) // 8 or bits[n_bits:].any():
        raise VendorHashesError(f"a hash has {bits.size} bits but --bits says {n_bits}.")
    return bits[:n_bits]


#: Values of the ``excluded`` column that mean "not excluded".
_NOT_EXCLUDED = {"", "0", "false", "no"}


@dataclasses.dataclass(frozen=True)
class VendorHashes:
    """A validated vendor file: hashes by item, and the items the vendor declined with why."""

    hashes: dict[str, npt.NDArray[np.bool_]]
    excluded: dict[str, str]
    n_bits: int


def _exclusion(row: dict[str, str], min_quality: float | None, path: Path) -> str | None:
    """Why the vendor's own rules drop this item, or None."""
    flag = (row.get("excluded") or "").strip()
    if flag.lower() not in _NOT_EXCLUDED:
        return "excluded by the vendor" + (
            "" if flag.lower() in {"1", "true", "yes"} else f": {flag}"
        )
    if min_quality is None:
        return None
    text = (row.get("quality") or "").strip()
    try:
        quality = float(text)
    except ValueError:
        quality = math.nan
    if not math.isfinite(quality):
        raise VendorHashesError(
            f"{path}: the quality of {row['item_id']} is not a number: {text[:40]!r}."
        )
    if quality < min_quality:
        return f"quality {quality:g} below --min-quality {min_quality:g}"
    return None


def read_vendor_hashes(
    path: str | Path,
    known: set[str] | dict[str, Any],
    n_bits: int | None = None,
    min_quality: float | None = None,
) -> VendorHashes:
    """Validated hashes and exclusions from a vendor CSV.

    Columns: ``item_id`` and ``hash``; optional ``excluded`` (non-empty = the vendor's system
    declined the file; ``hash`` may then be empty) and ``quality`` (with ``min_quality``, items
    below it count as excluded). An ``item_id`` may also be given as the file name
    (``images/<item>.png``).
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            fields = set(reader.fieldnames or ())
            if not {"item_id", "hash"} <= fields:
                raise VendorHashesError(
                    f"{path} needs a header with the columns item_id and hash "
                    f"(got {reader.fieldnames})."
                )
            if min_quality is not None and "quality" not in fields:
                raise VendorHashesError(f"--min-quality needs a quality column in {path}.")
            rows = [{**r, "item_id": Path(r["item_id"] or "").stem} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VendorHashesError(f"Cannot read {path}: {exc}.") from exc
    if not rows:
        raise VendorHashesError(f"{path} has no hashes.")
    seen: set[str] = set()
    duplicates = sorted(
        {r["item_id"] for r in rows if r["item_id"] in seen or seen.add(r["item_id"])}
    )  # type: ignore[func-returns-value]
    if duplicates:
        raise VendorHashesError(
            f"{path} has several hashes for {len(duplicates)} ids, e.g. {duplicates[:5]}."
        )
    unknown = sorted(r["item_id"] for r in rows if r["item_id"] not in known)
    if unknown:
        raise VendorHashesError(
            f"{path} has {len(unknown)} ids that are not in the export, e.g. {unknown[:5]} "
            "(was it made from another export?)."
        )
    hashes: dict[str, npt.NDArray[np.bool_]] = {}
    excluded: dict[str, str] = {}
    for row in rows:
        item, text = row["item_id"], row["hash"] or ""
        reason = _exclusion(row, min_quality, path)
        if reason is not None:
            excluded[item] = reason
            continue
        try:
            hashes[item] = _bits_of(text, n_bits)
        except ValueError as exc:
            raise VendorHashesError(
                f"{path}: the hash of {item} is neither hex nor 0/1: {text[:40]!r} (mark a "
                "file your system declines in an 'excluded' column)."
            ) from exc
    lengths = sorted({len(b) for b in hashes.values()})
    if not lengths:
        raise VendorHashesError(f"{path}: every item is excluded; there is nothing to score.")
    if len(lengths) > 1:
        raise VendorHashesError(
            f"{path}: hashes have different lengths {lengths} bits; all must be equal."
        )
    if n_bits is not None and lengths[0] != n_bits:
        raise VendorHashesError(f"{path}: hashes have {lengths[0]} bits but --bits says {n_bits}.")
    return VendorHashes(hashes, excluded, lengths[0])


def score(
    export_dir: str | Path,
    hashes_csv: str | Path,
    *,
    label: str = "vendor",
    bits: int | None = None,
    thresholds: tuple[int, ...] | None = None,
    min_quality: float | None = None,
) -> tuple[Suite, Dataset, HashedCorpus]:
    """Everything :func:`harness.evaluate.evaluate` needs to score a vendor's hashes.

    ``export_dir`` is an export folder, or the key file of a blind export. Items the vendor
    excluded (``excluded`` column, or ``quality`` below ``min_quality``) are the algorithm's
    exclusions: an excluded edited copy is an escape, a miss in the TPR, counted and listed.
    """
    source = Path(export_dir)
    doc = _read_export(source)
    items = _items(source, doc)
    vendor = read_vendor_hashes(hashes_csv, items, bits, min_quality)
    n_bits = vendor.n_bits
    algo = Precomputed(label=label, bits=n_bits)
    suite = parse_suite(doc["suite"]["config"], source="the export's suite")
    chosen = thresholds or (algo.default_threshold().bits,)
    bad = [t for t in chosen if not 0 <= t <= n_bits]
    if bad:
        raise VendorHashesError(f"thresholds {bad} are outside [0, {n_bits}] bits.")
    suite = dataclasses.replace(
        suite,
        algorithms=(algo,),
        thresholds={algo.id: tuple(sorted(set(chosen)))},
        near_duplicates=None,
    )
    records = tuple(
        ImageRecord(
            id=im["id"],
            path="",
            source=im.get("source", ""),
            licence=im.get("licence", "unknown"),
            sha256=im.get("sha256"),
            category=im.get("category", "unknown"),
            group=im.get("group"),
        )
        for im in doc["images"]
    )
    dataset = Dataset(
        doc["dataset"]["name"],
        records,
        doc["dataset"]["manifest_sha256"],
        doc["dataset"]["excluded"],
    )
    n, columns = len(records), doc["columns"]
    packed = np.zeros((len(columns), n, algo.n_bytes), dtype=np.uint8)
    ok = np.zeros((len(columns), n), dtype=bool)
    failures = list(doc["failures"])
    exclusions = []
    # In image and column order, whatever order the vendor's rows or the item names are in.
    for item, (i, c) in sorted(items.items(), key=lambda kv: kv[1]):
        where = {"image": records[i].id, "transform": columns[c], "algorithm": algo.id}
        if item in vendor.hashes:
            packed[c, i] = np.packbits(vendor.hashes[item])
            ok[c, i] = True
        elif item in vendor.excluded:
            exclusions.append({**where, "reason": f"{label}: {vendor.excluded[item]}"})
        else:
            failures.append(
                {
                    "image": where["image"],
                    "stage": "hash",
                    "transform": where["transform"],
                    "algorithm": algo.id,
                    "error": "no hash for this item in the vendor file",
                }
            )
    corpus = HashedCorpus(
        image_ids=[r.id for r in records],
        sha256=[im["sha256"] for im in doc["images"]],
        sizes=[tuple(im["size"]) if im["size"] else None for im in doc["images"]],
        packed=[packed],
        ok=[ok],
        failures=failures,
        exclusions=exclusions,
    )
    return suite, dataset, corpus
