"""Blind vendor evaluation: export every image and edit, score the hashes a vendor returns.

``export`` writes each original and each edited copy of a suite as a lossless PNG with a
manifest; the vendor hashes the files on their own machines and returns ``item_id,hash`` rows;
``score`` validates those rows and evaluates them with exactly the pipeline built-in algorithms go
through (same pairs, protocols, statistics and report). Neither side runs the other's code.

Layout of an export folder::

    export.json      suite configuration, dataset identity, per-image sha256/size/licence
    manifest.csv     item_id, image_id, column, file      (column = "original" or a chain id)
    images/i000003/c002.png
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from datasets_benign import Dataset, ImageRecord, open_dataset
from datasets_benign.decode import pixel_sha256
from harness.algorithms.precomputed import Precomputed
from harness.errors import HarnessError
from harness.results import atomic_write_text, read_json_object
from harness.runner import HashedCorpus, Progress
from harness.suite import Suite, parse_suite
from transforms.codec import png_bytes

EXPORT_KIND = "hash-harness export"
EXPORT_SCHEMA = 1


class VendorHashesError(HarnessError):
    """The vendor's hash file cannot be scored as it is (the message says what to fix)."""


def _item_id(image_index: int, column: int) -> str:
    return f"i{image_index:06d}-c{column:03d}"


def export(
    suite: Suite, out: str | Path, *, dataset: str | None = None, quiet: bool = False
) -> dict[str, Any]:
    """Write every original and edit of ``suite`` as PNG plus the manifest; returns export.json."""
    out = Path(out)
    data = open_dataset(dataset or suite.dataset, decode=suite.decode)
    columns = ["original", *[c.id for c in suite.transforms]]
    progress = Progress(len(data.records), quiet, label="images exported")
    rows, images, failures = [], [], []
    for i, record in enumerate(data.records):
        entry: dict[str, Any] = {**record.to_dict(), "sha256": None, "size": None}
        try:
            original = record.load()
        except Exception as exc:  # the image's failure, recorded, never the export's
            failures.append({"image": record.id, "stage": "decode", "error": str(exc)})
            images.append(entry)
            progress.step()
            continue
        entry.update(sha256=pixel_sha256(original), size=list(original.size))
        images.append(entry)
        folder = out / "images" / f"i{i:06d}"
        folder.mkdir(parents=True, exist_ok=True)
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
                failures.append(
                    {
                        "image": record.id,
                        "stage": "transform",
                        "transform": column,
                        "error": str(exc),
                    }
                )
                continue
            rel = Path("images") / f"i{i:06d}" / f"c{c:03d}.png"
            (out / rel).write_bytes(png_bytes(edited))
            rows.append(
                {
                    "item_id": _item_id(i, c),
                    "image_id": record.id,
                    "column": column,
                    "file": str(rel),
                }
            )
        progress.step()
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["item_id", "image_id", "column", "file"])
        writer.writeheader()
        writer.writerows(rows)
    doc = {
        "kind": EXPORT_KIND,
        "export_schema": EXPORT_SCHEMA,
        "suite": {"name": suite.name, "version": suite.version, "config": dict(suite.config)},
        "dataset": {
            "name": data.name,
            "manifest_sha256": data.manifest_sha256,
            "excluded": data.excluded,
        },
        "columns": columns,
        "images": images,
        "failures": failures,
        "items": len(rows),
    }
    atomic_write_text(out / "export.json", json.dumps(doc, indent=1) + "\n")
    return doc


def _read_export(folder: Path) -> dict[str, Any]:
    doc = read_json_object(folder / "export.json", what=EXPORT_KIND, error=VendorHashesError)
    if doc.get("kind") != EXPORT_KIND or doc.get("export_schema", 0) > EXPORT_SCHEMA:
        raise VendorHashesError(f"{folder}/export.json is not an export this hash-harness reads.")
    return doc


def _bits_of(text: str, n_bits: int | None) -> npt.NDArray[np.bool_]:
    text = text.strip().lower()
    if text and set(text) <= {"0", "1"} and (n_bits is None or len(text) == n_bits):
        return np.frombuffer(text.encode(), np.uint8) == ord("1")
    raw = bytes.fromhex(text.removeprefix("0x"))
    bits = np.unpackbits(np.frombuffer(raw, np.uint8)).astype(bool)
    if n_bits is None:
        return bits
    if len(raw) != (n_bits + 7) // 8 or bits[n_bits:].any():
        raise VendorHashesError(f"a hash has {bits.size} bits but --bits says {n_bits}.")
    return bits[:n_bits]


def read_vendor_hashes(
    path: str | Path, known: set[str], n_bits: int | None = None
) -> tuple[dict[str, npt.NDArray[np.bool_]], int]:
    """Validated ``item_id -> bits`` from a vendor CSV (columns ``item_id`` and ``hash``)."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"item_id", "hash"} <= set(reader.fieldnames):
                raise VendorHashesError(
                    f"{path} needs a header with the columns item_id and hash "
                    f"(got {reader.fieldnames})."
                )
            rows = [(r["item_id"], r["hash"]) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VendorHashesError(f"Cannot read {path}: {exc}.") from exc
    if not rows:
        raise VendorHashesError(f"{path} has no hashes.")
    seen: set[str] = set()
    duplicates = sorted({i for i, _ in rows if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if duplicates:
        raise VendorHashesError(
            f"{path} has several hashes for {len(duplicates)} ids, e.g. {duplicates[:5]}."
        )
    unknown = sorted(i for i, _ in rows if i not in known)
    if unknown:
        raise VendorHashesError(
            f"{path} has {len(unknown)} ids that are not in the export, e.g. {unknown[:5]} "
            "(was it made from another export?)."
        )
    hashes: dict[str, npt.NDArray[np.bool_]] = {}
    for item, text in rows:
        try:
            hashes[item] = _bits_of(text, n_bits)
        except ValueError as exc:
            raise VendorHashesError(
                f"{path}: the hash of {item} is neither hex nor 0/1: {text[:40]!r}."
            ) from exc
    lengths = sorted({len(b) for b in hashes.values()})
    if len(lengths) > 1:
        raise VendorHashesError(
            f"{path}: hashes have different lengths {lengths} bits; all must be equal."
        )
    if n_bits is not None and lengths[0] != n_bits:
        raise VendorHashesError(f"{path}: hashes have {lengths[0]} bits but --bits says {n_bits}.")
    return hashes, lengths[0]


def score(
    export_dir: str | Path,
    hashes_csv: str | Path,
    *,
    label: str = "vendor",
    bits: int | None = None,
    thresholds: tuple[int, ...] | None = None,
) -> tuple[Suite, Dataset, HashedCorpus]:
    """Everything :func:`harness.evaluate.evaluate` needs to score a vendor's hashes."""
    folder = Path(export_dir)
    doc = _read_export(folder)
    with (folder / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        manifest = list(csv.DictReader(fh))
    hashes, n_bits = read_vendor_hashes(hashes_csv, {m["item_id"] for m in manifest}, bits)
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
        )
        for im in doc["images"]
    )
    dataset = Dataset(
        doc["dataset"]["name"],
        records,
        doc["dataset"]["manifest_sha256"],
        doc["dataset"]["excluded"],
    )
    n, columns = len(records), len(doc["columns"])
    packed = np.zeros((columns, n, algo.n_bytes), dtype=np.uint8)
    ok = np.zeros((columns, n), dtype=bool)
    failures = list(doc["failures"])
    for m in manifest:
        i, c = int(m["item_id"][1:7]), int(m["item_id"][-3:])
        if m["item_id"] in hashes:
            packed[c, i] = np.packbits(hashes[m["item_id"]])
            ok[c, i] = True
        else:
            failures.append(
                {
                    "image": m["image_id"],
                    "stage": "hash",
                    "transform": m["column"],
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
    )
    return suite, dataset, corpus
