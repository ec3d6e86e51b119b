"""Bring-your-own corpora described by a CSV or JSON manifest.

Columns / keys per image: ``path`` (relative to the manifest's folder) or ``url``; optional
``id`` (default: the path or the URL's last segment), ``sha256`` (of the file's bytes; required for
URLs), ``pixel_sha256`` (of the decoded RGB pixels), ``licence``, ``category``, ``source``,
``group``. JSON is a list of such objects, or ``{"images": [...]}``.

A row with ``variant_of: ID`` is a real re-upload of the image ``ID`` of the same manifest (a
platform re-encode, a screenshot, a phone photograph of a screen), with an optional ``kind``
naming how it was made: it is scored as a positive pair with its original, in a row of its own
per kind, and is never an image of its own (it takes its original's group, so it is in no
negative pair with it and in none of the all-pairs collision counts). A ``variant_of`` that
names no original of the manifest is refused before any image is opened.

The manifest is validated before any image is opened: absolute paths and paths that climb out of
the manifest's folder (``..``) are refused, as are duplicate ids and URL entries without a
checksum. Per-image problems found later (missing file, failed download, wrong checksum) become
that image's recorded failure.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from datasets_benign.base import Dataset, ImageRecord, Variant, sha256_json
from harness.core.errors import DatasetError

FIELDS = (
    "id",
    "path",
    "url",
    "sha256",
    "pixel_sha256",
    "licence",
    "category",
    "source",
    "group",
    "variant_of",
    "kind",
)
#: What a variant's kind may be: it names report rows (``variant_of:screenshot``).
_KIND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"Cannot read manifest {str(path)!r}: {exc}.") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path} is not valid JSON: {exc}.") from exc
        except RecursionError as exc:
            raise DatasetError(f"{path} nests JSON too deeply to be a manifest.") from exc
        rows = data.get("images") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise DatasetError(f'{path}: expected a list of objects, or {{"images": [...]}}.')
        return rows
    return list(csv.DictReader(text.splitlines()))


def _safe_relative(value: str, where: str) -> PurePosixPath:
    rel = PurePosixPath(value.replace("\\", "/"))
    if rel.is_absolute() or value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":"):
        raise DatasetError(
            f"{where}: path {value!r} is absolute; write it relative to the manifest's folder."
        )
    if ".." in rel.parts:
        raise DatasetError(
            f"{where}: path {value!r} leaves the manifest's folder ('..' is not allowed)."
        )
    return rel


def manifest_dataset(path: str | Path) -> Dataset:
    path = Path(path)
    rows = _rows(path)
    if not rows:
        raise DatasetError(f"{path} lists no images.")
    root = path.resolve().parent
    records, seen = [], set()
    variants: list[tuple[str, Variant]] = []
    for n, row in enumerate(rows, start=1):
        where = f"{path.name} entry {n}"
        unknown = sorted(set(row) - set(FIELDS))
        if unknown:
            raise DatasetError(f"{where}: unknown field(s) {unknown}; known: {', '.join(FIELDS)}.")
        rel, url = (row.get("path") or "").strip(), (row.get("url") or "").strip()
        if bool(rel) == bool(url):
            raise DatasetError(f"{where}: give exactly one of 'path' and 'url'.")
        file_sha = (row.get("sha256") or "").strip().lower() or None
        if url:
            if urlparse(url).scheme not in ("http", "https"):
                raise DatasetError(f"{where}: only http(s) URLs are supported, got {url!r}.")
            if file_sha is None:
                raise DatasetError(f"{where}: a URL entry needs the file's sha256.")
            default_id = PurePosixPath(urlparse(url).path).name or f"url-{n}"
            local = ""
        else:
            relative = _safe_relative(rel, where)
            default_id = relative.as_posix()
            local = str(root / relative)
        image_id = (row.get("id") or "").strip() or default_id
        if image_id in seen:
            raise DatasetError(f"{where}: duplicate id {image_id!r}.")
        seen.add(image_id)
        record = ImageRecord(
            id=image_id,
            path=local,
            source=(row.get("source") or "manifest").strip(),
            licence=(row.get("licence") or "unknown").strip(),
            sha256=(row.get("pixel_sha256") or "").strip() or None,
            category=(row.get("category") or "unknown").strip(),
            group=(row.get("group") or "").strip() or None,
            url=url or None,
            file_sha256=file_sha,
        )
        of, kind = (row.get("variant_of") or "").strip(), (row.get("kind") or "").strip()
        if of:
            if record.group is not None:
                raise DatasetError(f"{where}: a variant takes its original's group; drop 'group'.")
            if kind and not _KIND.match(kind):
                raise DatasetError(
                    f"{where}: kind {kind!r} must be a short name of letters, digits, '_', '.' "
                    "or '-' (e.g. screenshot)."
                )
            variants.append((where, Variant(record, of, kind)))
        elif kind:
            raise DatasetError(f"{where}: 'kind' describes a variant; give 'variant_of' too.")
        else:
            records.append(record)
    if not records:
        raise DatasetError(f"{path} lists only variants; list their originals too.")
    originals = {r.id for r in records}
    for where, v in variants:
        if v.of not in originals:
            what = "another variant" if v.of in seen else "no image of this manifest"
            raise DatasetError(
                f"{where}: variant_of {v.of!r} names {what}; a variant's original must be "
                "listed in the same manifest without variant_of."
            )
    records.sort(key=lambda r: r.id)
    return Dataset(
        name=str(path),
        records=tuple(records),
        manifest_sha256=sha256_json(rows),
        variants=tuple(sorted((v for _, v in variants), key=lambda v: v.record.id)),
    )
