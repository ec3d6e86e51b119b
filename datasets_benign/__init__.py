"""Benign public-domain corpora: manifests (licence, sha256) and loaders.

No copyrighted pixels live in this repository; the embedded corpus is read from scikit-image's
installed wheel and verified against a manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import warnings
from collections.abc import Callable
from pathlib import Path

from datasets_benign.base import Dataset, ImageRecord, Variant, display_path, folder_dataset
from datasets_benign.extra import openclipart_dataset, tiles_dataset
from datasets_benign.manifest import manifest_dataset
from datasets_benign.skimage_corpus import skimage_dataset
from harness.core.errors import DatasetError
from harness.core.registry import Registry

DATASETS: Registry[Callable[[], Dataset]] = Registry("dataset", "hash_harness.datasets")
DATASETS.register("skimage", "embedded")(skimage_dataset)
DATASETS.register("skimage_tiles", "tiles")(tiles_dataset)
DATASETS.register("openclipart")(openclipart_dataset)

_MANIFESTS = (".csv", ".json")
_SUBSET = re.compile(r"^(?P<spec>.+)\[(?P<n>\d+)\]$")


def subset(data: Dataset, n: int) -> Dataset:
    """``n`` records chosen by a stable hash of their ids (the same n for everyone, any order)."""
    if n < 1:
        raise DatasetError(f"A subset needs at least one image, got [{n}].")
    if n > len(data.records):
        warnings.warn(
            f"{data.name}[{n}] asks for {n} images but {data.name} has {len(data.records)}: "
            f"all {len(data.records)} are used.",
            UserWarning,
            stacklevel=2,
        )
    key = lambda r: hashlib.blake2b(r.id.encode(), digest_size=8).digest()  # noqa: E731
    chosen = sorted(sorted(data.records, key=key)[:n], key=lambda r: r.id)
    kept = {r.id for r in chosen}
    return dataclasses.replace(
        data,
        name=f"{data.name}[{n}]",
        records=tuple(chosen),
        variants=tuple(v for v in data.variants if v.of in kept),
    )


def open_dataset(spec: str, decode: str | None = None) -> Dataset:
    """A registered name (``skimage``), a folder, a CSV/JSON manifest, optionally ``[N]`` for a
    stable subset of N images (``openclipart[500]``), decoded under the ``decode`` policy
    (default ``viewer``; see :mod:`datasets_benign.decode`). A folder holding ``manifest.csv`` or
    ``manifest.json`` (as ``hash-harness datasets fetch`` writes) is read through it."""
    data = _open(spec)
    return data if decode is None else data.with_decode(decode)


def _open(spec: str) -> Dataset:
    m = _SUBSET.match(spec)
    if m:
        return subset(_open(m["spec"]), int(m["n"]))
    if spec in DATASETS:
        return DATASETS.get(spec)()
    path = Path(spec)
    if path.suffix.lower() in (".csv", ".json") and path.is_file():
        return manifest_dataset(path)
    if path.is_dir():
        # A fetched folder is read through its manifest: the manifest, the fetch journal and
        # other sidecar files are never evaluated as images.
        manifest = next(
            (m for m in sorted(path.glob("manifest.*")) if m.suffix in _MANIFESTS), None
        )
        if manifest is not None:
            # A corpus fetched from the web declares that images Pillow refuses as
            # decompression bombs are excluded with the reason, not failures.
            fetched = "exclude" if (path / "fetch.json").exists() else "fail"
            return dataclasses.replace(manifest_dataset(manifest), name=spec, oversize=fetched)
    if path.exists() or "/" in spec or "\\" in spec:
        return folder_dataset(spec)
    return DATASETS.get(spec)()  # raises "Unknown dataset ... did you mean"


__all__ = [
    "DATASETS",
    "Dataset",
    "ImageRecord",
    "Variant",
    "display_path",
    "folder_dataset",
    "manifest_dataset",
    "open_dataset",
    "subset",
]
