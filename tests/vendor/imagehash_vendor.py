"""A vendor's own offline hasher, as a vendor would write it: the imagehash library, no harness.

    python tests/vendor/imagehash_vendor.py EXPORT_FOLDER OUT.csv [--min-side N] [--vector]

Hashes every file listed in the export's manifest.csv with ``imagehash.phash`` and writes
``item_id,hash,quality,excluded``. ``quality`` is the grey-level standard deviation (0-100
scale, capped); with ``--min-side`` the vendor's system declines images whose shorter side is
smaller, as real systems decline thumbnails. With ``--vector`` the hash is a float vector
instead, written as a JSON list: :func:`grey_vector`, the 8 x 8 box-averaged grey levels minus
their mean (compared by cosine distance, the correlation of two thumbnails).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image


def grey_vector(image: Image.Image) -> list[float]:
    grey = np.asarray(image.convert("L").resize((8, 8), Image.Resampling.BOX), dtype=np.float64)
    return (grey - grey.mean()).ravel().round(4).tolist()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("export", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--min-side", type=int, default=0)
    parser.add_argument("--vector", action="store_true")
    args = parser.parse_args()
    with (args.export / "manifest.csv").open(newline="") as fh:
        items = list(csv.DictReader(fh))
    with args.out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["item_id", "hash", "quality", "excluded"])
        for item in items:
            with Image.open(args.export / item["file"]) as im:
                image = im.convert("RGB")
            if min(image.size) < args.min_side:
                writer.writerow([item["item_id"], "", "", f"shorter side below {args.min_side}"])
                continue
            quality = min(100.0, float(np.asarray(image.convert("L"), dtype=float).std()))
            value = json.dumps(grey_vector(image)) if args.vector else str(imagehash.phash(image))
            writer.writerow([item["item_id"], value, f"{quality:.1f}", ""])


if __name__ == "__main__":
    main()
