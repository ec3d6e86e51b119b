"""Vendor evaluation: export every image and edit, score the hashes a vendor returns.

``export`` writes each original and each edited copy of a suite as a lossless PNG with a
manifest; the vendor hashes the files on their own machines and returns ``item_id,hash`` rows
(optionally with ``quality`` and ``excluded`` columns); ``score`` validates those rows and
evaluates them with exactly the pipeline built-in algorithms go through (same pairs, protocols,
statistics and report). Neither side runs the other's code.

A hash is bits (hex, or a 0/1 string), compared by Hamming or, with per-bit weights, weighted
Hamming; or a float vector written as a JSON list of numbers (``"[0.12, -0.5, 3]"``, quoted as
CSV quotes any field with commas), compared by L1, L2 or cosine distance binned to levels -
the same :class:`~harness.algorithms.vectors.Measured` declaration, metric and binning as an
external hasher answering over the protocol, so the same vectors score the same either way.

Layout of an export folder::

    export.json      suite configuration, dataset identity, per-image sha256/size/licence
    manifest.csv     item_id, image_id, column, file      (column = "original" or a chain id)
    images/i000003/c002.png
    images/variants/v000001.png                           (real variants the dataset declares)

A **blind** export (``blind=True``) hands the vendor nothing that names an image or an edit::

    export.json      kind, schema, file count, what to return - no suite, dataset or ids
    manifest.csv     item_id, file                        (sorted by item_id)
    images/3f9c...e1.png

Item names are an HMAC-SHA256 of the file's bytes under a random secret, so they are opaque and
in no order that follows the images or the edits; the same secret gives the same names again.
Each distinct file is written once: an original and its ``identity`` copy (or any edit that
leaves an image's pixels unchanged) are one file under one name, so byte-identical files cannot
tell the vendor which items are originals; one hash of that file scores every item it stands
for, as a deterministic hash gives the same bits for the same bytes. The secret and the mapping
back (item -> the images and edits it stands for) live only in the evaluator's **key file**,
kept outside the vendor folder (a key inside it is refused); ``score`` reads the key instead of
the folder. Files are written in item order with one fixed modification time, so neither their
timestamps nor their on-disk order follow the images; PNGs carry pixels only (see
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
import re
import secrets
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from datasets_benign import Dataset, ImageRecord, Variant, open_dataset
from datasets_benign.base import configured
from datasets_benign.decode import pixel_sha256
from harness.algorithms.precomputed import Precomputed
from harness.algorithms.vectors import MAX_LENGTH, VECTOR_DISTANCES, parse_vector
from harness.core.errors import HarnessError, InvalidParameterError
from harness.progress import Progress
from harness.results import (
    LOCK_FILE,
    atomic_write_text,
    lock_output_folder,
    read_json_object,
    release_output_folder,
)
from harness.runner import HashedCorpus
from harness.suite import Suite, parse_suite
from harness.variants import row_name as variant_row
from transforms.codec import png_bytes

EXPORT_KIND = "hash-harness export"
KEY_KIND = "hash-harness export key"
#: 2: blind exports (a key file beside the vendor folder) and real variants (``v000001`` items);
#: 3: a blind item is one distinct file, standing for every (image, edit) with its bytes.
EXPORT_SCHEMA = 3
#: Hex digits of a blind item name (80 bits: no two items of any real export share one).
NAME_DIGITS = 20
#: Modification time of every file of a blind export (2001-09-09), so timestamps carry no order.
FIXED_MTIME = 1_000_000_000
#: What the vendor returns, told in the vendor-facing export.json.
RETURN_FORMAT = (
    "a CSV with the columns item_id,hash; hash is hex or 0/1 for a bit hash, or for a vector "
    'hash a JSON list of numbers such as "[0.12, -0.5, 3.0]" (one length for every file, '
    "finite numbers only); optional columns: quality (a number, higher is better) and "
    "excluded (non-empty when your system declines to hash the file, with the reason)"
)


class VendorHashesError(HarnessError):
    """The vendor's hash file cannot be scored as it is (the message says what to fix)."""


def _item_id(image_index: int, column: int) -> str:
    return f"i{image_index:06d}-c{column:03d}"


def blind_name(secret: str, content: bytes) -> str:
    """The opaque item name of a file's ``content``: an HMAC under the evaluator's secret, so
    nobody without the key can tell which image or edit a file is, and identical files are one
    item."""
    return hmac.new(bytes.fromhex(secret), content, hashlib.sha256).hexdigest()[:NAME_DIGITS]


def default_key_path(out: str | Path) -> Path:
    """Where the key goes unless told: beside the vendor folder, never inside it."""
    out = Path(out).resolve()
    return out.parent / f"{out.name}.key.json"


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


#: The files a plain export writes into its folder (paths relative to it).
_EXPORT_FILE = re.compile(r"manifest\.csv|export\.json|images/(i\d{6}/c\d{3}|variants/v\d{6})\.png")


def _lock_export_folder(out: Path) -> None:
    """Lock ``out`` as ``run`` and ``score`` lock their --out: a second export, run or score
    into it meanwhile is refused instead of mixing its files with this export's."""
    if out.exists() and not out.is_dir():
        raise VendorHashesError(f"--out {out} is a file, not a folder; pass a folder to export to.")
    lock_output_folder(out)


def _clear_previous_export(out: Path) -> None:
    """Remove an earlier plain export's own files from ``out`` (so no stale edit lies beside the
    new manifest); a folder holding any other file is refused and nothing in it is touched."""
    made: list[Path] = []
    for root, dirs, files in os.walk(out):
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            rel = (Path(root) / name).relative_to(out).as_posix()
            if rel == LOCK_FILE:
                continue
            if (Path(root) / name).is_symlink() or not _EXPORT_FILE.fullmatch(rel):
                raise VendorHashesError(
                    f"{out} holds {rel}, which export did not write; export into an empty folder "
                    "or one holding only an earlier export (its files are replaced)."
                )
            made.append(Path(root) / name)
    for path in made:
        path.unlink()
    if (out / "images").is_dir():
        shutil.rmtree(out / "images")  # only the folders of the files just removed are left


@dataclasses.dataclass(frozen=True)
class _Item:
    """One file to export: ``index`` is ``(image, column)``, or ``(variant, VARIANT)`` for a
    declared real variant; ``pixels`` is None when it could not be made (``failure`` says why)."""

    index: tuple[int, int]
    image_id: str
    column: str
    pixels: Image.Image | None
    failure: dict[str, Any] | None = None


#: Column index of a real variant (manifest ``variant_of``) in an export's item index.
VARIANT = -1


def _dataset(suite: Suite, dataset: str | None) -> Dataset:
    """The images as ``run`` sees them: the suite's decode policy, its ``max_side`` shrinking
    and its ``group_by`` grouping applied (:func:`datasets_benign.base.configured`)."""
    data = open_dataset(dataset or suite.dataset, decode=suite.decode)
    return configured(data, suite.max_side, suite.group_by)


def _made(suite: Suite, data: Dataset, columns: list[str], quiet: bool) -> Iterator[_Item]:
    """Every original and edit of every image, then every declared variant; entries of
    ``data.records`` / ``data.variants`` are told by ``_Item.index``."""
    progress = Progress(len(data.records) + len(data.variants), quiet, label="images exported")
    for i, record in enumerate(data.records):
        try:
            original = record.load()
        except Exception as exc:  # the image's failure, recorded, never the export's
            failure = {"image": record.id, "stage": "decode", "error": str(exc)}
            yield _Item((i, 0), record.id, "original", None, failure)
            progress.step()
            continue
        yield _Item((i, 0), record.id, "original", original)
        for c, chain in enumerate(suite.transforms, start=1):
            try:
                edited = chain.apply(original, suite_seed=suite.seed, image_id=record.id)
            except Exception as exc:
                failure = {
                    "image": record.id,
                    "stage": "transform",
                    "transform": columns[c],
                    "error": str(exc),
                }
                yield _Item((i, c), record.id, columns[c], None, failure)
                continue
            yield _Item((i, c), record.id, columns[c], edited)
        progress.step()
    for k, variant in enumerate(data.variants):
        v_id = variant.record.id
        try:
            pixels: Image.Image | None = variant.record.load()
            problem: dict[str, str] | None = None
        except Exception as exc:
            pixels = None
            problem = {
                "image": v_id,
                "stage": "decode",
                "error": str(exc),
                "variant_of": variant.of,
            }
        yield _Item((k, VARIANT), v_id, variant_row(variant.kind), pixels, problem)
        progress.step()


def _records(
    data: Dataset, items: Iterator[_Item], write: Callable[[_Item, Image.Image], None]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Write every made file with ``write(item, pixels)``; the images' and variants' entries (pixel
    sha256 and size from the original or variant itself) and the failures."""
    images: list[dict[str, Any]] = [
        {**r.to_dict(), "sha256": None, "size": None} for r in data.records
    ]
    variants: list[dict[str, Any]] = [
        {
            "id": v.record.id,
            "variant_of": v.of,
            "kind": v.kind or None,
            "sha256": None,
            "size": None,
        }
        for v in data.variants
    ]
    failures: list[dict[str, Any]] = []
    for item in items:
        if item.failure is not None:
            failures.append(item.failure)
        pixels = item.pixels
        if pixels is None:
            continue
        k, c = item.index
        if c in (0, VARIANT):
            entry = variants[k] if c == VARIANT else images[k]
            entry.update(sha256=pixel_sha256(pixels), size=list(pixels.size))
        write(item, pixels)
    return images, variants, failures


def export(
    suite: Suite,
    out: str | Path,
    *,
    dataset: str | None = None,
    quiet: bool = False,
    blind: bool = False,
    key: str | Path | None = None,
) -> dict[str, Any]:
    """Write every original and edit of ``suite`` (and every real variant its dataset declares)
    as PNG plus the manifest.

    Returns the evaluator's record of the export (export.json, or for ``blind`` the key file's
    content). ``key`` is the key file of a blind export (default :func:`default_key_path`); an
    existing key's secret is reused, so exporting again gives the same names.

    ``out`` is locked while it is written (a concurrent export, run or score there is refused).
    A plain export replaces an earlier export's files in ``out`` and refuses a folder holding
    any other file; a blind export refuses any non-empty folder.
    """
    out = Path(out)
    try:
        if blind:
            return _export_blind(suite, out, dataset, quiet, Path(key or default_key_path(out)))
        _lock_export_folder(out)
        _clear_previous_export(out)
        return _export_plain(suite, out, dataset, quiet)
    finally:
        release_output_folder(out)


def _export_plain(suite: Suite, out: Path, dataset: str | None, quiet: bool) -> dict[str, Any]:
    data = _dataset(suite, dataset)
    columns = ["original", *[c.id for c in suite.transforms]]
    rows = []

    def write(item: _Item, pixels: Image.Image) -> None:
        k, c = item.index
        if c == VARIANT:
            rel, item_id = Path("images") / "variants" / f"v{k:06d}.png", f"v{k:06d}"
        else:
            rel, item_id = Path("images") / f"i{k:06d}" / f"c{c:03d}.png", _item_id(k, c)
        (out / rel.parent).mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(png_bytes(pixels))
        rows.append(
            {"item_id": item_id, "image_id": item.image_id, "column": item.column, "file": str(rel)}
        )

    images, variants, failures = _records(data, _made(suite, data, columns, quiet), write)
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["item_id", "image_id", "column", "file"])
        writer.writeheader()
        writer.writerows(rows)
    doc = {
        "kind": EXPORT_KIND,
        "export_schema": EXPORT_SCHEMA,
        **_evaluator_record(suite, data, columns, images, variants, failures),
        "items": len(rows),
        "return": RETURN_FORMAT,
    }
    atomic_write_text(out / "export.json", json.dumps(doc, indent=1) + "\n")
    return doc


def _evaluator_record(
    suite: Suite,
    data: Dataset,
    columns: list[str],
    images: list[dict[str, Any]],
    variants: list[dict[str, Any]],
    failures: list[dict[str, Any]],
) -> dict[str, Any]:
    """What scoring needs besides the hashes (never shown to the vendor of a blind export)."""
    return {
        "suite": {"name": suite.name, "version": suite.version, "config": dict(suite.config)},
        "dataset": {
            "name": data.name,
            "manifest_sha256": data.manifest_sha256,
            "excluded": data.excluded,
            # The preprocessing the pixels went through, recorded in the results as run does.
            "max_side": data.max_side,
            "oversize": data.oversize,
        },
        "columns": columns,
        "images": images,
        # Only when the dataset declares real variants: other exports are as they were.
        **({"variants": variants} if variants else {}),
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
    if _inside(key, out):
        raise VendorHashesError(
            f"the key file {key} is inside the vendor folder {out}, which would hand the vendor "
            f"the answers: put it outside (leave out --key for {default_key_path(out)})."
        )
    for locked in (False, True):  # refused before the folder is made, and again once locked
        if out.is_dir() and any(path.name != LOCK_FILE for path in out.iterdir()):
            raise VendorHashesError(
                f"{out} is not an empty folder; a blind export starts empty so that nothing but "
                "its own files reaches the vendor."
            )
        if not locked:
            _lock_export_folder(out)
    secret = _secret(key)
    data = _dataset(suite, dataset)
    columns = ["original", *[c.id for c in suite.transforms]]
    items: dict[str, list[list[int]]] = {}  # name -> the (image, column) of every item
    digests: dict[str, str] = {}
    # Written under their final names into a staging folder, then copied into images/ in name
    # order: the files' on-disk order and timestamps follow the opaque names, not the images.
    staging = out / ".staging"
    staging.mkdir(parents=True)

    def write(item: _Item, pixels: Image.Image) -> None:
        content = png_bytes(pixels)
        name, digest = blind_name(secret, content), hashlib.sha256(content).hexdigest()
        if digests.setdefault(name, digest) != digest:  # 80 bits: never, but never silently
            raise VendorHashesError(f"two files share the blind name {name}; export again.")
        if name not in items:
            (staging / f"{name}.png").write_bytes(content)
        items.setdefault(name, []).append(list(item.index))

    images, variants, failures = _records(data, _made(suite, data, columns, quiet), write)
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
    release_output_folder(out)  # its lock file gone before the folder's time is fixed
    for path in (out / "manifest.csv", out / "export.json", out / "images", out):
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    doc = {
        "kind": KEY_KIND,
        "export_schema": EXPORT_SCHEMA,
        "note": "the evaluator's key of a blind export: never give this file to the vendor",
        "vendor_folder": str(out.resolve()),
        "secret": secret,
        **_evaluator_record(suite, data, columns, images, variants, failures),
        "items": dict(sorted(items.items())),
    }
    key.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(key, json.dumps(doc, indent=1) + "\n", mode=0o600)  # never readable by others
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
    folder = doc.get("vendor_folder")
    if expected == KEY_KIND and isinstance(folder, str) and _inside(path, Path(folder)):
        warnings.warn(
            f"the key {path} is inside the vendor folder {folder}: if that folder was handed "
            "over with it, the vendor had the answers and the evaluation was not blind",
            stacklevel=3,
        )
    return doc


def _items(path: Path, doc: dict[str, Any]) -> dict[str, list[tuple[int, int]]]:
    """``item_id -> [(image index, column index), ...]`` of an export (see :func:`_index`):
    one entry per item, except a blind file that stands for several items."""
    if doc["kind"] != KEY_KIND:
        with (path / "manifest.csv").open(newline="", encoding="utf-8") as fh:
            return {m["item_id"]: [_index(m["item_id"])] for m in csv.DictReader(fh)}
    if doc.get("export_schema", 0) < 3:  # one (image, column) per name
        return {name: [(int(i), int(c))] for name, (i, c) in doc["items"].items()}
    return {name: [(int(i), int(c)) for i, c in at] for name, at in doc["items"].items()}


def _index(item_id: str) -> tuple[int, int]:
    """``(image, column)`` of an item of an export folder; ``(variant, VARIANT)`` for
    ``v000003``."""
    if item_id.startswith("v"):
        return int(item_id[1:]), VARIANT
    return int(item_id[1:7]), int(item_id[-3:])


def _quote(text: str) -> str:
    """``text`` quoted for a one-line message, at most 40 characters of it."""
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}..."


def _bits_of(text: str, n_bits: int | None, declared: str) -> npt.NDArray[np.bool_]:
    """Bits of a hash written in hex, or as ``n_bits`` digits 0/1 when ``n_bits`` is declared
    (without it, 0/1 text is read as hex: :func:`read_vendor_hashes` refuses a file that could
    be either); ValueError (worded to follow "the hash ...") when it is not one."""
    text = text.lower()
    if text.startswith("["):
        raise ValueError("is a list of numbers: score vectors with --measure l1, l2 or cosine")
    if n_bits is not None and len(text) == n_bits and set(text) <= {"0", "1"}:
        return np.frombuffer(text.encode(), np.uint8) == ord("1")
    digits = text.removeprefix("0x")
    if 4 * len(digits) > MAX_LENGTH:  # before anything is allocated for it
        raise ValueError(f"has {4 * len(digits)} bits; at most {MAX_LENGTH} are scored")
    hex_only = bool(digits) and all(c in "0123456789abcdef" for c in digits)
    if hex_only and len(digits) % 2:
        raise ValueError(
            f"has {len(digits)} hex digits, an odd number (two digits a byte): a leading zero "
            f"dropped? e.g. {_quote('0' + digits)}"
        )
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raw = b""
    if not raw:
        raise ValueError(
            f"is neither hex nor 0/1: {_quote(text)} (mark a file your system declines in an "
            "'excluded' column)"
        )
    bits = np.unpackbits(np.frombuffer(raw, np.uint8)).astype(bool)
    if n_bits is None:
        return bits
    if len(raw) != (n_bits + 7) // 8 or bits[n_bits:].any():
        short = len(raw) < (n_bits + 7) // 8
        pad = f" ({len(digits)} hex digits: leading zeros dropped? pad it)" if short else ""
        raise ValueError(f"has {bits.size} bits but {declared} says {n_bits}{pad}")
    return bits[:n_bits]


def _binary_only(path: Path, texts: list[str]) -> None:
    """Refuse bit hashes written with the digits 0 and 1 only when no length is declared: each
    reads as bits or as hex (``0000000000000000`` is 16 bits or 64), and guessing could
    silently halve or quadruple the hash. One digit 2-9 or a-f anywhere makes it hex."""
    written = [t for t in texts if t]
    if written and all(set(t) <= {"0", "1"} for t in written):
        n = len(written[0])
        raise VendorHashesError(
            f"{path}: every hash is written with the digits 0 and 1 only, which reads as {n} "
            f"bits (one digit a bit) or {4 * n} (hex): say which with --bits {n} or "
            f"--bits {4 * n}."
        )


def _vector_of(text: str, dims: int | None, declared: str) -> npt.NDArray[np.float32]:
    """A vector hash written as a JSON list of numbers; ValueError (worded to follow "the hash
    ...") when it is not one, has another length than ``dims`` or a non-finite value."""
    text = text.strip()
    if not text.startswith("["):
        raise ValueError(
            f"is not a JSON list of numbers, which a vector hash must be: {_quote(text)} (bit "
            "hashes are scored without --measure, or with --measure weighted_hamming)"
        )
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg}): {_quote(text)}") from exc
    try:
        return parse_vector(values, dims)
    except ValueError as exc:
        message = str(exc)
        if dims is not None and message.endswith(f"declared dims={dims}"):
            message = f"has {len(values)} numbers but {declared} says {dims}"
        raise ValueError(message) from exc


#: Values of the ``excluded`` column that mean "not excluded".
_NOT_EXCLUDED = {"", "0", "false", "no"}


@dataclasses.dataclass(frozen=True)
class VendorHashes:
    """A validated vendor file: hashes by item (bits, or float32 vectors), their length (bits
    or numbers), and the items the vendor declined with why."""

    hashes: dict[str, npt.NDArray[Any]]
    excluded: dict[str, str]
    size: int


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
            f"{path}: the quality of {row['item_id']} is not a number: {_quote(text)}."
        )
    if quality < min_quality:
        return f"quality {quality:g} below --min-quality {min_quality:g}"
    return None


def _reader(fh: Any, path: Path, min_quality: float | None) -> csv.DictReader[str]:
    """The CSV's rows by column name: names read regardless of case and padding (``Item_ID``,
    `` hash ``); a column named twice, a missing item_id or hash, or --min-quality without a
    quality column refused."""
    reader = csv.DictReader(fh)
    named = [(f or "").strip().lower() for f in reader.fieldnames or ()]
    if len(set(named)) != len(named):
        raise VendorHashesError(f"{path} names a column twice: {_quote(','.join(named))}.")
    reader.fieldnames = named
    if not {"item_id", "hash"} <= set(named):
        raise VendorHashesError(
            f"{path} needs a header with the columns item_id and hash "
            f"(got {_quote(','.join(named))})."
        )
    if min_quality is not None and "quality" not in named:
        raise VendorHashesError(f"--min-quality needs a quality column in {path}.")
    return reader


def read_vendor_hashes(
    path: str | Path,
    known: set[str] | dict[str, Any],
    size: int | None = None,
    min_quality: float | None = None,
    *,
    vector: bool = False,
    declared: str = "--bits",
) -> VendorHashes:
    """Validated hashes and exclusions from a vendor CSV.

    Columns: ``item_id`` and ``hash`` (bits as hex, or as 0/1 digits with a declared ``size``;
    with ``vector``, a JSON list of numbers); optional ``excluded`` (non-empty = the vendor's
    system declined the file; ``hash`` may then be empty) and ``quality`` (with ``min_quality``,
    items below it count as excluded). An ``item_id`` may also be given as the file name
    (``images/<item>.png``); ids and hashes are read without surrounding spaces, ids without
    regard to case (the harness makes every id lower-case, blind ones hex digits), and a UTF-8
    byte-order mark is skipped. A row repeated exactly counts once. ``size`` is the declared
    length (bits, or numbers of a vector), ``declared`` the option that declared it; without it
    every hash must have the length of the others.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: Excel's "CSV UTF-8"
            reader = _reader(fh, path, min_quality)
            rows = [
                {
                    **r,
                    "item_id": Path((r["item_id"] or "").strip()).stem.lower(),
                    "hash": (r["hash"] or "").strip(),
                }
                for r in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VendorHashesError(f"Cannot read {path} as a UTF-8 CSV: {exc}.") from exc
    if not rows:
        raise VendorHashesError(f"{path} has no hashes.")
    rows = _once(path, rows)
    unknown = sorted(r["item_id"] for r in rows if r["item_id"] not in known)
    if unknown:
        raise VendorHashesError(
            f"{path} has {len(unknown)} ids that are not in the export, e.g. "
            f"{', '.join(_quote(u) for u in unknown[:3])} (was it made from another export?)."
        )
    if not vector and size is None:
        _binary_only(path, [r["hash"].lower() for r in rows])
    hashes: dict[str, npt.NDArray[Any]] = {}
    excluded: dict[str, str] = {}
    parse = _vector_of if vector else _bits_of
    unit = "numbers" if vector else "bits"
    for row in rows:
        item, text = row["item_id"], row["hash"] or ""
        reason = _exclusion(row, min_quality, path)
        if reason is not None:
            excluded[item] = reason
            continue
        try:
            hashes[item] = parse(text, size, declared)
        except ValueError as exc:
            raise VendorHashesError(f"{path}: the hash of {item} {exc}.") from exc
        if size is None and len(hashes[item]) != len(next(iter(hashes.values()))):
            first = next(iter(hashes))
            short = not vector and len(hashes[item]) < len(hashes[first])
            raise VendorHashesError(
                f"{path}: hashes have different lengths: {item} has {len(hashes[item])} {unit}, "
                f"{first} {len(hashes[first])}; all must be equal"
                + (" (leading zeros dropped? pad it)." if short else ".")
            )
    if not hashes:
        raise VendorHashesError(f"{path}: every item is excluded; there is nothing to score.")
    return VendorHashes(hashes, excluded, len(next(iter(hashes.values()))))


def _once(path: Path, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Each id's row once: a row repeated exactly (same id, hash, quality, exclusion) is
    noted and counted once; two different rows for one id are refused."""

    def content(row: dict[str, str]) -> tuple[str, ...]:
        return tuple((row.get(k) or "").strip().lower() for k in ("hash", "excluded", "quality"))

    first: dict[str, dict[str, str]] = {}
    conflicting: set[str] = set()
    for row in rows:
        seen = first.setdefault(row["item_id"], row)
        if content(seen) != content(row):
            conflicting.add(row["item_id"])
    if conflicting:
        listed = ", ".join(_quote(item) for item in sorted(conflicting)[:3])
        raise VendorHashesError(
            f"{path} has different rows for one id ({len(conflicting)} of them, e.g. "
            f"{listed}); give each file one hash."
        )
    repeats = len(rows) - len(first)
    if repeats:
        warnings.warn(
            f"{path}: {repeats} {'row repeats' if repeats == 1 else 'rows repeat'} an earlier "
            "row exactly (same id and hash); each id is scored once",
            stacklevel=3,
        )
    return list(first.values())


def read_weights(path: str | Path) -> tuple[float, ...]:
    """Per-bit weights of weighted Hamming from a JSON file holding one list of numbers
    (MSB-first bit order, as the hashes' hex)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VendorHashesError(f"Cannot read the weights {path}: {exc}.") from exc
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise VendorHashesError(
            f"{path} must hold one JSON list of numbers, a weight per bit, e.g. [1, 0.5, 2]."
        )
    return tuple(float(v) for v in values)


def vendor_algorithm(
    label: str = "vendor",
    *,
    measure: str = "hamming",
    bits: int | None = None,
    dims: int | None = None,
    levels: int | None = None,
    max_distance: float = 0.0,
    weights: str | Path | tuple[float, ...] | None = None,
) -> Precomputed:
    """The vendor algorithm as declared, checked before any file of the export or the vendor is
    read; a length left out (``bits`` / ``dims`` None) is a stand-in until the hash file gives
    it. ``weights`` are numbers, or the JSON file :func:`read_weights` reads (then only once the
    other options agree)."""
    vector = measure in VECTOR_DISTANCES
    if levels is not None and measure == "hamming":
        raise VendorHashesError(
            "--levels is for distances binned to levels (weighted_hamming, l1, l2, cosine); "
            "a hamming hash is compared in bits."
        )
    levels = levels or 1000
    if bits is not None and vector:
        raise VendorHashesError(
            f"--bits is for bit hashes; the length of a {measure} vector is --dims."
        )
    if measure in ("l1", "l2") and not max_distance:
        raise VendorHashesError(
            f"--measure {measure} needs --max-distance D: the {measure} distance binned to the "
            f"last of the --levels {levels} levels (farther pairs land there too)."
        )
    if (weights is not None) != (measure == "weighted_hamming"):
        raise VendorHashesError(
            "--weights FILE (a weight per bit) goes with --measure weighted_hamming, and only "
            "with it."
        )

    def declare(measure: str, weights: tuple[float, ...] = ()) -> Precomputed:
        return Precomputed(
            label=label,
            measure=measure,
            bits=bits or len(weights) or 64,
            dims=dims or (1 if vector else 0),
            levels=levels,
            max_distance=max_distance,
            weights=weights,
        )

    try:
        if weights is None:
            return declare(measure)
        declare("hamming")  # every option but the weights, before their file is read
        values = read_weights(weights) if isinstance(weights, str | Path) else tuple(weights)
        return declare(measure, values)
    except InvalidParameterError as exc:
        raise VendorHashesError(f"score: {exc}") from exc


def score(
    export_dir: str | Path,
    hashes_csv: str | Path,
    *,
    label: str = "vendor",
    bits: int | None = None,
    thresholds: tuple[int, ...] | None = None,
    min_quality: float | None = None,
    measure: str = "hamming",
    dims: int | None = None,
    levels: int | None = None,
    max_distance: float = 0.0,
    weights: str | Path | tuple[float, ...] | None = None,
    max_failure_rate: float | None = None,
) -> dict[str, Any]:
    """The results document of a vendor's hashes, evaluated like a built-in algorithm's
    (without its ``run`` block).

    ``export_dir`` is an export folder, or the key file of a blind export. Items the vendor
    excluded (``excluded`` column, or ``quality`` below ``min_quality``) are the algorithm's
    exclusions: an excluded edited copy is an escape, a miss in the TPR, counted and listed.
    Real variants in the export are scored in their own rows (:mod:`harness.variants`).
    ``measure`` and the options after it declare how hashes are compared, as for an external
    hasher (:func:`vendor_algorithm`); thresholds are in bits for Hamming, else in levels.
    ``max_failure_rate`` overrides the exported suite's, as ``run --max-failure-rate`` does.
    """
    # Long: the options, the export's record, the vendor's file and the suite are read and
    # cross-checked in the order a user fixes them, then scored exactly as a run's hashes are.
    from harness import variants as real_variants
    from harness.evaluate import evaluate

    template = vendor_algorithm(
        label,
        measure=measure,
        bits=bits,
        dims=dims,
        levels=levels,
        max_distance=max_distance,
        weights=weights,
    )
    source = Path(export_dir)
    doc = _read_export(source)
    items = _items(source, doc)
    if template.vector:
        size, option = dims, "--dims"
    elif template.weights:
        size, option = template.bits, f"--weights ({template.bits} weights)"
    else:
        size, option = bits, "--bits"
    vendor = read_vendor_hashes(
        hashes_csv, items, size, min_quality, vector=template.vector, declared=option
    )
    if not any(c == 0 for item in vendor.hashes for _, c in items[item]):
        raise VendorHashesError(
            f"{hashes_csv} hashes no original image (every edit is compared with its original): "
            "there is nothing to score."
        )
    if template.vector:
        algo = dataclasses.replace(template, dims=vendor.size)
    else:
        algo = dataclasses.replace(template, bits=vendor.size)
    suite = parse_suite(doc["suite"]["config"], source="the export's suite")
    if thresholds and len(set(thresholds)) != len(thresholds):
        raise VendorHashesError(f"--threshold {' '.join(map(str, thresholds))} repeats a value.")
    chosen = thresholds or (algo.default_threshold().bits,)
    bad = [t for t in chosen if not 0 <= t <= algo.n_levels]
    if bad:
        raise VendorHashesError(
            f"thresholds {bad} are outside [0, {algo.n_levels}] {algo.level_unit}."
        )
    suite = dataclasses.replace(
        suite,
        algorithms=(algo,),
        thresholds={algo.id: tuple(sorted(set(chosen)))},
        near_duplicates=None,
        max_failure_rate=suite.max_failure_rate if max_failure_rate is None else max_failure_rate,
    )
    recorded = doc["dataset"]
    decode = suite.decode  # the export decoded with it too
    records = tuple(
        ImageRecord(
            id=im["id"],
            path="",
            source=im.get("source", ""),
            licence=im.get("licence", "unknown"),
            sha256=im.get("sha256"),
            category=im.get("category", "unknown"),
            group=im.get("group"),
            decode=decode,
        )
        for im in doc["images"]
    )
    declared = doc.get("variants", [])
    dataset = Dataset(
        recorded["name"],
        records,
        recorded["manifest_sha256"],
        recorded["excluded"],
        max_side=recorded.get("max_side"),  # older exports shrank nothing
        oversize=recorded.get("oversize", "fail"),
        variants=tuple(
            Variant(
                ImageRecord(id=v["id"], path="", decode=decode), v["variant_of"], v["kind"] or ""
            )
            for v in declared
        ),
    )
    columns = doc["columns"]
    corpus = _vendor_corpus(
        vendor,
        algo,
        [(item, i, c) for item, at in items.items() for i, c in at if c != VARIANT],
        [im["id"] for im in doc["images"]],
        columns,
        doc["images"],
        list(doc["failures"]),
    )
    result = evaluate(suite, dataset, corpus)
    if declared:
        hashed = _vendor_corpus(
            vendor,
            algo,
            [(item, k, 0) for item, at in items.items() for k, c in at if c == VARIANT],
            [v["id"] for v in declared],
            [real_variants.ROW],
            declared,
            [f for f in doc["failures"] if f.get("variant_of")],
        )
        real_variants.add(result, suite, dataset, corpus, hashed)
    return result


def _vendor_corpus(
    vendor: VendorHashes,
    algo: Precomputed,
    located: list[tuple[str, int, int]],
    ids: list[str],
    columns: list[str],
    entries: list[dict[str, Any]],
    failures: list[dict[str, Any]],
) -> HashedCorpus:
    """The vendor's hashes of the ``located`` items ``(item, image, column)`` as the runner's
    arrays; declined items are the algorithm's exclusions, missing ones failures."""
    packed = np.zeros((len(columns), len(ids), algo.n_bytes), dtype=np.uint8)
    ok = np.zeros((len(columns), len(ids)), dtype=bool)
    exclusions = []
    # In image and column order, whatever order the vendor's rows or the item names are in.
    for item, i, c in sorted(located, key=lambda x: (x[1], x[2])):
        where = {"image": ids[i], "transform": columns[c], "algorithm": algo.id}
        if item in vendor.hashes:
            packed[c, i] = algo.pack(vendor.hashes[item])
            ok[c, i] = True
        elif item in vendor.excluded:
            exclusions.append({**where, "reason": f"{algo.label}: {vendor.excluded[item]}"})
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
    return HashedCorpus(
        image_ids=ids,
        sha256=[e["sha256"] for e in entries],
        sizes=[tuple(e["size"]) if e["size"] else None for e in entries],
        packed=[packed],
        ok=[ok],
        failures=failures,
        exclusions=exclusions,
    )
