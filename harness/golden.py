"""Golden-hash drift: pin the exact hashes of a reference image set and explain any change.

The reference set is the embedded corpus plus synthetic shapes chosen to expose known drift: a
tall 1:3 image and a screenshot-shaped 9:19.5 one (Pillow 13 reordered resize passes for images
reduced much more vertically than horizontally and moved pHash by up to 8/64 bits on them), a tiny
one, a large one, a flat one and a high-frequency one. Synthetic pixels are integer arithmetic, so
they are identical on every platform and numpy version.

``check`` recomputes every hash, reports which algorithms and images moved and by how many bits,
and explains the move with the recorded versions that differ ("pillow 12.3.0 -> 13.0.0").
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from datasets_benign import open_dataset
from datasets_benign.decode import pixel_sha256
from harness import data
from harness.algorithms import ALGORITHMS, make_algorithm
from harness.core.errors import HashExcluded
from harness.env import environment, environment_differences

GOLDEN_KIND = "hash-harness golden"
GOLDEN_SCHEMA = 1
DEFAULT_PATH = data.golden_path()


def _pattern(width: int, height: int, kind: str) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    if kind == "flat":
        rgb = np.full((height, width, 3), (118, 130, 142), dtype=np.int64)
    elif kind == "high_frequency":
        checker = ((x // 2 + y // 2) % 2) * 200 + 20
        rgb = np.stack([checker, (x * 37 + y * 11) % 256, (x ^ y) % 256], axis=-1)
    else:  # structured: gradients, rings and bands that survive downscaling
        r = (x * 255) // max(1, width - 1)
        g = (y * 255) // max(1, height - 1)
        ring = (
            ((x - width // 3) ** 2 + (y - height // 2) ** 2)
            // max(1, (min(width, height) // 8) ** 2)
        ) % 2
        band = ((x + 2 * y) // max(1, min(width, height) // 6)) % 2
        rgb = np.stack([r, g, ring * 160 + band * 80], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


#: Synthetic members of the reference set: id -> (width, height, pattern).
SYNTHETIC = {
    "synthetic_tall_1x3": (240, 720, "structured"),
    "synthetic_screenshot_9x19.5": (360, 780, "structured"),
    "synthetic_tiny_8x8": (8, 8, "structured"),
    "synthetic_large_3000x2000": (3000, 2000, "structured"),
    "synthetic_flat": (256, 256, "flat"),
    "synthetic_high_frequency": (512, 384, "high_frequency"),
}


def reference_images() -> dict[str, Image.Image]:
    images = {r.id: r.load() for r in open_dataset("skimage").records}
    images.update({name: _pattern(w, h, kind) for name, (w, h, kind) in SYNTHETIC.items()})
    return images


def default_algorithms() -> list[str]:
    """Every built-in algorithm that needs no optional extra (so the set is the same everywhere)."""
    return [
        make_algorithm(n).id
        for n in ALGORITHMS.names()
        if ALGORITHMS.get(n).extra is None and ALGORITHMS.get(n).standalone
    ]


#: Non-default parameters pinned as well: their code paths differ from the defaults' (a 16x16
#: DCT for pHash).
VARIANTS = ("phash(hash_size=16)",)


def create(algorithms: Iterable[str] | None = None) -> dict[str, Any]:
    """Hash the reference set with ``algorithms`` (default: :func:`default_algorithms` and
    :data:`VARIANTS`, which is what the committed golden file covers)."""
    images = reference_images()
    algos = [make_algorithm(a) for a in (algorithms or [*default_algorithms(), *VARIANTS])]
    return {
        "kind": GOLDEN_KIND,
        "golden_schema": GOLDEN_SCHEMA,
        "environment": environment(),
        "images": {
            k: {"size": list(im.size), "pixel_sha256": pixel_sha256(im)} for k, im in images.items()
        },
        "hashes": {
            a.id: {
                "fingerprint": a.fingerprint(),
                "n_bits": a.n_bits,
                "values": {k: _hex(a, im) for k, im in images.items()},
            }
            for a in algos
        },
    }


def _hex(algo: Any, image: Image.Image) -> str | None:
    """The hash as hex, or None when the algorithm's own rule excludes the image."""
    try:
        return str(algo.hash(image).tobytes().hex())
    except HashExcluded:
        return None


def load(path: str | Path) -> dict[str, Any]:
    from harness.results import load_document

    return load_document(
        path,
        kind=GOLDEN_KIND,
        schema_key="golden_schema",
        schema=GOLDEN_SCHEMA,
        create="hash-harness golden create",
    )


def _bits(a: str | None, b: str | None) -> int:
    """Bits that differ; -1 when a hash appeared or disappeared (quality gate)."""
    if a is None or b is None:
        return -1
    return int(
        np.bitwise_count(
            np.frombuffer(bytes.fromhex(a), np.uint8) ^ np.frombuffer(bytes.fromhex(b), np.uint8)
        ).sum()
    )


def check(golden: dict[str, Any]) -> dict[str, Any]:
    """Recompute the golden hashes now; describe every difference and its likely cause."""
    current = create(golden["hashes"])
    inputs = [
        name
        for name, rec in golden["images"].items()
        if current["images"].get(name, {}).get("pixel_sha256") != rec["pixel_sha256"]
    ]
    changes = []
    for algo, rec in golden["hashes"].items():
        now = current["hashes"][algo]["values"]
        moved = {
            img: _bits(h, now[img])
            for img, h in rec["values"].items()
            if img in now and now[img] != h
        }
        if moved:
            changes.append(
                {
                    "algorithm": algo,
                    "images_changed": len(moved),
                    "images": len(rec["values"]),
                    "max_bits": max(moved.values()),
                    "n_bits": rec["n_bits"],
                    "moved": dict(sorted(moved.items(), key=lambda kv: (-kv[1], kv[0]))),
                }
            )
    diffs = environment_differences(golden["environment"], current["environment"])
    if not changes and not inputs:
        cause = "no drift" + (f" (recorded versions differ: {', '.join(diffs)})" if diffs else "")
    elif diffs:
        cause = "hashes changed; recorded versions differ: " + ", ".join(diffs)
    else:
        cause = (
            "hashes changed although every recorded version is the same: a code change in an "
            "adapter or preprocessing, or a library the fingerprint does not record"
        )
    return {
        "drift": bool(changes or inputs),
        "cause": cause,
        "environment_differences": diffs,
        "inputs_changed": inputs,
        "changes": changes,
        "unchanged": [a for a in golden["hashes"] if a not in {c["algorithm"] for c in changes}],
    }
