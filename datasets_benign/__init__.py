"""Benign public-domain corpora: manifests (licence, sha256) and loaders.

No copyrighted pixels live in this repository; the embedded corpus is read from scikit-image's
installed wheel and verified against a manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from datasets_benign.base import Dataset, ImageRecord, folder_dataset
from datasets_benign.skimage_corpus import skimage_dataset
from harness.registry import Registry

DATASETS: Registry[Callable[[], Dataset]] = Registry("dataset", "hash_harness.datasets")
DATASETS.register("skimage", "embedded")(skimage_dataset)


def open_dataset(spec: str) -> Dataset:
    """A registered dataset name (``skimage``) or a path to a folder of images."""
    if spec in DATASETS:
        return DATASETS.get(spec)()
    if Path(spec).exists() or "/" in spec or "\\" in spec:
        return folder_dataset(spec)
    return DATASETS.get(spec)()  # raises "Unknown dataset ... did you mean"


__all__ = ["DATASETS", "Dataset", "ImageRecord", "folder_dataset", "open_dataset"]
