"""More public-domain corpora: tiles of the large embedded photographs, and Openclipart.

Tiles
    Non-overlapping 128 x 128 tiles of the embedded photographs whose short side is at least
    256 px: more photographic images for collision counts. Tiles of one photograph share a
    ``group``, so they never count as a collision pair (they are parts of the same picture).
Openclipart
    Thousands of public-domain clip-art PNGs from the Debian package ``openclipart-png``
    (``apt-get install openclipart-png``). Clip art has large flat areas and few tones, so it
    collides far more than photographs - a stress test for average and difference hashes.
    Transparency is flattened onto white by the harness's decoder.
"""

from __future__ import annotations

from pathlib import Path

from datasets_benign.base import Dataset, ImageRecord, sha256_json
from harness.core.errors import DatasetError

TILE = 128
MIN_SIDE = 256

#: Where Debian installs openclipart-png.
OPENCLIPART_DIRS = (Path("/usr/share/openclipart/png"), Path("/usr/share/openclipart"))
#: Openclipart's two largest drawings that Pillow decodes (40.7 and 21.7 megapixels) cost minutes
#: each at full size; shrunk to this they cost what a wallpaper does. Its 15 larger files (89-623
#: megapixels) are refused as decompression bombs and listed as excluded.
OPENCLIPART_MAX_SIDE = 4096


def tiles_dataset() -> Dataset:
    from datasets_benign.skimage_corpus import skimage_dataset

    base = skimage_dataset()
    manifest = {r.id: r for r in base.records}
    records = []
    from datasets_benign.skimage_corpus import _read_manifest

    sizes = {img["id"]: (img["width"], img["height"]) for img in _read_manifest()["images"]}
    for source_id, record in sorted(manifest.items()):
        w, h = sizes[source_id]
        if min(w, h) < MIN_SIDE:
            continue
        for top in range(0, h - TILE + 1, TILE):
            for left in range(0, w - TILE + 1, TILE):
                records.append(
                    ImageRecord(
                        id=f"{source_id}/tile_{top // TILE:02d}_{left // TILE:02d}",
                        path=record.path,
                        source=f"tile of {source_id}",
                        licence=record.licence,
                        sha256=record.sha256,
                        category=f"{record.category} tile",
                        group=source_id,
                        crop=(left, top, left + TILE, top + TILE),
                    )
                )
    return Dataset(
        "skimage_tiles", tuple(records), sha256_json([[r.id, list(r.crop or ())] for r in records])
    )


def openclipart_dataset() -> Dataset:
    root = next((d for d in OPENCLIPART_DIRS if d.is_dir()), None)
    if root is None:
        raise DatasetError(
            "Openclipart is not installed: on Debian/Ubuntu run `apt-get install openclipart-png` "
            f"(it installs into {OPENCLIPART_DIRS[0]})."
        )
    found = sorted(p for p in root.rglob("*.png") if p.is_file())
    if not found:
        raise DatasetError(f"{root} holds no PNG files.")
    # The package links one file into several folders: the links are the same image.
    links = [p for p in found if p.is_symlink()]
    excluded = [
        {
            "id": p.relative_to(root).as_posix(),
            "reason": f"symbolic link to {p.resolve().relative_to(root.resolve()).as_posix()} "
            "(the same file)",
        }
        for p in links
    ]
    records = tuple(
        ImageRecord(
            id=p.relative_to(root).as_posix(),
            path=str(p),
            source="Open Clip Art Library (Debian openclipart-png)",
            licence="public domain",
            category=p.relative_to(root).parts[0]
            if len(p.relative_to(root).parts) > 1
            else "unsorted",
        )
        for p in found
        if not p.is_symlink()
    )
    listing = [[r.id, Path(r.path).stat().st_size] for r in records]
    return Dataset(
        "openclipart",
        records,
        sha256_json(listing),
        excluded=excluded,
        max_side=OPENCLIPART_MAX_SIDE,
        oversize="exclude",
    )
