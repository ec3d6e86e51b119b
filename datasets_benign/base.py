"""ImageRecord and Dataset: what a corpus hands to the runner."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

from datasets_benign.decode import (
    DEFAULT_POLICY,
    check_policy,
    file_sha256,
    load_rgb,
    pixel_sha256,
)
from harness.core.errors import DatasetError, ImageLoadError

#: The last source photograph decoded for a tile, per process. Tiles of one photograph are
#: consecutive in a dataset and each worker receives its tasks in dataset order, so every worker
#: decodes and verifies each source once instead of once per tile (330 tiles of the embedded
#: corpus: 6.6 s of decoding -> 0.2 s). One entry: memory stays one photograph.
_SOURCE: dict[tuple[Any, ...], Image.Image] = {}


@dataclass(frozen=True)
class ImageRecord:
    """One image of a corpus.

    Attributes
    ----------
    id : str
        Stable identifier (manifest name or path relative to the dataset root), never random.
    path : str
        File to decode.
    source, licence : str
        Provenance, carried into results and reports.
    sha256 : str or None
        Expected :func:`~datasets_benign.decode.pixel_sha256` of the decoded RGB pixels; when set,
        :meth:`load` refuses pixels that differ.
    category : str
        Stratum such as "photo", "texture", "microscopy".
    """

    id: str
    path: str
    source: str = ""
    licence: str = "unknown"
    sha256: str | None = None
    category: str = "unknown"
    #: Images with the same group never form a negative pair (tiles of one photograph).
    group: str | None = None
    #: Region ``(left, top, right, bottom)`` of the decoded file this record is (tiles).
    crop: tuple[int, int, int, int] | None = None
    #: Download location; the file is fetched into the local cache on first load.
    url: str | None = None
    #: sha256 of the file's bytes (checked for downloads and for local manifest entries).
    file_sha256: str | None = None
    #: Longer side the decoded image is shrunk to when it is larger (a declared preprocessing
    #: step: recorded in results and part of the cache key); None = never.
    max_side: int | None = None
    #: Decode policy (see :data:`datasets_benign.decode.POLICIES`).
    decode: str = DEFAULT_POLICY

    def load(self) -> Image.Image:
        """Decode to RGB and verify against the recorded sha256 when there is one.

        ``sha256`` is of the whole file's pixels (before ``crop``) as decoded by the ``viewer``
        policy, so a tile is verified through its source, and under another policy the pixels
        are verified through a ``viewer`` decode when the two policies' pixels differ. The
        verified source is kept (see :data:`_SOURCE`), so consecutive tiles of one photograph
        decode and verify it once.
        """
        if self.crop is None:
            image = self._decode()
        else:
            key = self._source_key()
            source = _SOURCE.get(key) if key is not None else None
            if source is None:
                source = self._decode()
                _SOURCE.clear()
                if key is not None:
                    _SOURCE[key] = source
            image = source.crop(self.crop)
        if self.max_side is not None:
            image = shrink_to(image, self.max_side)
        return image

    def _source_key(self) -> tuple[Any, ...] | None:
        """What identifies the decoded, verified source: the file's content (a file rewritten
        with the same size and modification time is decoded afresh), the decode policy and the
        digests it was checked against."""
        if self.url is not None:
            return (self.url, self.decode, self.file_sha256, self.sha256)
        try:
            content = file_sha256(self.path)
        except OSError:  # unreadable: the decode says why
            return None
        return (content, self.decode, self.file_sha256, self.sha256)

    def _decode(self) -> Image.Image:
        """The whole file, decoded to RGB and verified."""
        path = self.path
        if self.url is not None:
            from datasets_benign.download import fetch

            path = str(fetch(self.url, self.file_sha256))
        elif self.file_sha256 is not None:
            from datasets_benign.download import check_file

            check_file(Path(path), self.file_sha256)
        image = load_rgb(path, self.decode)
        if self.sha256 is not None:
            actual = pixel_sha256(image)
            if actual != self.sha256 and self.decode != DEFAULT_POLICY:
                actual = pixel_sha256(load_rgb(path, DEFAULT_POLICY))
            if actual != self.sha256:
                raise ImageLoadError(
                    f"decoded pixels differ from the manifest (sha256 {actual[:12]}... != "
                    f"{self.sha256[:12]}...): the file or its decoder changed"
                )
        return image

    def to_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "source": self.source,
            "licence": self.licence,
            "category": self.category,
        }
        if self.group is not None:
            out["group"] = self.group
        return out


@dataclass(frozen=True)
class Variant:
    """A real re-upload of one of a dataset's images (a platform re-encode, a screenshot, a
    photograph of a screen), scored as a positive pair with its original and never as an
    image of its own.

    Attributes
    ----------
    record : ImageRecord
        The variant's file.
    of : str
        Id of the original it is a copy of (an image of the same dataset).
    kind : str
        How it was made, e.g. "screenshot" ("" when the manifest does not say).
    """

    record: ImageRecord
    of: str
    kind: str = ""


@dataclass(frozen=True)
class Dataset:
    """A named, ordered collection of image records.

    Attributes
    ----------
    name : str
        Registry name, or the folder path for a plain folder.
    records : tuple of ImageRecord
        Sorted by id, so every run sees the same order.
    manifest_sha256 : str
        Fingerprint of what the dataset claims to contain (manifest file or folder listing).
    excluded : list of dict
        Entries left out on purpose, each with ``id`` and ``reason``.
    """

    name: str
    records: tuple[ImageRecord, ...]
    manifest_sha256: str
    excluded: list[dict[str, str]] = field(default_factory=list)
    #: Default longer side originals are shrunk to (a suite's ``max_side`` overrides it).
    max_side: int | None = None
    #: What an image Pillow refuses as a decompression bomb is: "fail" (a failure, counted
    #: against ``max_failure_rate``) or "exclude" (listed as excluded with the reason).
    oversize: str = "fail"
    #: Real re-uploads of the records (manifest ``variant_of``), sorted by id.
    variants: tuple[Variant, ...] = ()

    @property
    def decode(self) -> str:
        """The decode policy of the records (one per dataset)."""
        return self.records[0].decode if self.records else DEFAULT_POLICY

    def with_decode(self, policy: str) -> Dataset:
        """The same dataset decoded under ``policy``."""
        policy = check_policy(policy)
        records = tuple(replace(r, decode=policy) for r in self.records)
        variants = tuple(replace(v, record=replace(v.record, decode=policy)) for v in self.variants)
        return replace(self, records=records, variants=variants)


def shrink_to(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` scaled down (Lanczos, aspect kept) so that its longer side is ``max_side``."""
    w, h = image.size
    if max(w, h) <= max_side:
        return image
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # reducing_gap: box-reduce first by an integer factor, then Lanczos; fast on huge images.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


_SIZE_SUFFIX = re.compile(
    r"(@\dx|[-_ .](\d+x\d+|preview|thumb|thumbnail|small|medium|large|hd|uhd|4k|\d+px))+$",
    re.IGNORECASE,
)


def group_key(image_id: str, by: str) -> str:
    """The group an image id (a relative path) belongs to under ``by``.

    ``folder``: its parent folder. ``stem``: its parent folder and file name without the
    extension(s) and without a trailing size tag (``_1920x1080``, ``-preview``, ``_thumb``,
    ``@2x``, ...), so ``sunset.jpg``, ``sunset_1920x1080.jpg`` and ``sunset-preview.png`` are one
    group.
    """
    path = PurePosixPath(image_id)
    if by == "folder":
        return path.parent.as_posix()
    stem = path.name.split(".")[0] if not path.name.startswith(".") else path.name
    stem = _SIZE_SUFFIX.sub("", stem) or stem
    return (path.parent / stem).as_posix()


def configured(data: Dataset, max_side: int | None = None, group_by: str | None = None) -> Dataset:
    """``data`` with a suite's preprocessing and grouping applied to every record.

    ``max_side``: None keeps the dataset's own, 0 turns shrinking off. ``group_by``: records
    without a declared group get one derived from their id (see :func:`group_key`).
    """
    side = data.max_side if max_side is None else (max_side or None)
    records = tuple(
        replace(
            r,
            max_side=side,
            group=r.group or (group_key(r.id, group_by) if group_by else None),
        )
        for r in data.records
    )
    variants = tuple(replace(v, record=replace(v.record, max_side=side)) for v in data.variants)
    return replace(data, records=records, max_side=side, variants=variants)


def display_path(path: str | Path) -> str:
    """A file name as text that any output can carry: bytes that are not UTF-8 (which Python
    keeps as lone surrogates) become ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def sha256_json(data: Any) -> str:
    """SHA-256 of ``data`` serialised as canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def folder_dataset(root: str | Path) -> Dataset:
    """Every regular file under ``root`` (recursively, symlinked folders not followed).

    Files that are not decodable images are kept: they become recorded failures with a reason when
    the run reaches them, so nothing in the folder is silently ignored. Hidden files (".name") and
    entries that are not regular files (FIFOs, sockets, devices) are not read: they are listed in
    ``excluded`` with the reason. Ids of names that are not UTF-8 carry ``\\xNN`` escapes. A
    file's category is its top-level sub-folder ("unknown" at the top level).
    """
    root = Path(root)
    shown = display_path(root)
    if not root.is_dir():
        raise DatasetError(
            f"Dataset folder {shown!r} does not exist or is not a folder. Pass a folder of "
            "images or a registered dataset name (see 'hash-harness list datasets')."
        )
    records, excluded = [], []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        image_id = display_path(rel.as_posix())
        if any(part.startswith(".") for part in rel.parts):
            if not any(part.startswith(".") for part in rel.parts[:-1]):  # not inside one
                excluded.append({"id": image_id, "reason": "hidden (name starts with '.')"})
            continue
        # A dangling link is kept: it becomes a recorded load failure, not a silent skip.
        if path.is_file() or (path.is_symlink() and not path.exists()):
            # Top-level sub-folders are categories (strata of every per-category rate).
            category = display_path(rel.parts[0]) if len(rel.parts) > 1 else "unknown"
            records.append(
                ImageRecord(id=image_id, path=str(path), source="folder", category=category)
            )
        elif not path.is_dir():
            excluded.append({"id": image_id, "reason": f"not a regular file ({_kind(path)})"})
    if not records:
        raise DatasetError(f"Dataset folder {shown!r} contains no files.")
    listing = [
        [r.id, Path(r.path).stat().st_size if Path(r.path).exists() else -1] for r in records
    ]
    return Dataset(
        name=shown, records=tuple(records), manifest_sha256=sha256_json(listing), excluded=excluded
    )


def _kind(path: Path) -> str:
    mode = path.lstat().st_mode
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"
