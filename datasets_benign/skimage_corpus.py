"""The embedded corpus: public-domain / CC0 photographs shipped inside scikit-image's wheel.

Pixels are read from the installed ``skimage/data`` folder (no network) and verified against
``manifests/skimage.json``. Licences are the ones scikit-image states in each loader's docstring;
images whose docstring states no licence, or a non-free one, are listed as excluded with the reason.

To regenerate the manifest after a deliberate change: ``python -m datasets_benign``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from datasets_benign.base import Dataset, ImageRecord
from harness.core.errors import DatasetError

MANIFEST = Path(__file__).with_name("manifests") / "skimage.json"

#: (id, file in skimage/data, category, licence, attribution as stated by scikit-image)
_CATALOGUE: list[tuple[str, str, str, str, str]] = [
    ("astronaut", "astronaut.png", "photo", "public domain", "NASA (Eileen Collins)"),
    ("brick", "brick.png", "texture", "CC0", "CC0Textures Bricks25"),
    ("camera", "camera.png", "photo", "CC0", "Lav Varshney"),
    ("cell", "cell.png", "microscopy", "CC0", "Paul Müller et al. (qpformat)"),
    ("chelsea", "chelsea.png", "photo", "CC0", "Stefan van der Walt"),
    ("clock", "clock_motion.png", "photo", "public domain", "Stefan van der Walt"),
    ("coffee", "coffee.png", "photo", "CC0", "Rachel Michetti (Pikolo Espresso Bar)"),
    ("coins", "coins.png", "photo", "no known copyright restrictions", "Brooklyn Museum"),
    ("grass", "grass.png", "texture", "CC0", "linolafett (DeviantArt)"),
    ("gravel", "gravel.png", "texture", "CC0", "CC0Textures Gravel04"),
    ("horse", "horse.png", "silhouette", "CC0", "Andreas Preuss (marauder)"),
    ("hubble_deep_field", "hubble_deep_field.jpg", "astronomy", "public domain", "NASA"),
    (
        "immunohistochemistry",
        "ihc.png",
        "microscopy",
        "no known copyright restrictions",
        "Center for Microscopy And Molecular Imaging (CMMI)",
    ),
    ("microaneurysms", "microaneurysms.png", "medical", "CC0", "Andreas Maier"),
    ("retina", "retina.jpg", "medical", "CC0", "Mikael Häggström (Wikimedia Commons)"),
    ("rocket", "rocket.jpg", "photo", "public domain", "SpaceX"),
    ("text", "text.png", "scan", "public domain", "Wikipedia File:Corner.png"),
]

#: Images scikit-image ships that are left out, with the reason.
_EXCLUDED: list[dict[str, str]] = [
    {"id": "moon", "reason": "scikit-image's docstring states no licence"},
    {"id": "page", "reason": "scikit-image's docstring states no licence"},
    {"id": "cat", "reason": "same pixels as chelsea"},
    {"id": "logo", "reason": "scikit-image logo, not a public-domain photograph"},
    {"id": "stereo_motorcycle", "reason": "Middlebury stereo set, not public domain"},
    {"id": "lfw_subset", "reason": "LFW faces, not public domain"},
    {"id": "color", "reason": "synthetic test pattern, not a photograph"},
    {"id": "phantom", "reason": "synthetic test pattern, not a photograph"},
    {"id": "chessboard", "reason": "synthetic test pattern, not a photograph"},
]


def skimage_data_dir() -> Path:
    """The installed ``skimage/data`` folder, found without importing scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "The embedded corpus needs scikit-image installed: pip install scikit-image"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_manifest() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def skimage_dataset() -> Dataset:
    """The embedded corpus, each record verified against the manifest on load."""
    import hashlib

    manifest = _read_manifest()
    data_dir = skimage_data_dir()
    records = tuple(
        ImageRecord(
            id=entry["id"],
            path=str(data_dir / entry["file"]),
            source=f"scikit-image {entry['file']}: {entry['attribution']}",
            licence=entry["licence"],
            sha256=entry["sha256"],
            category=entry["category"],
        )
        for entry in sorted(manifest["images"], key=lambda e: e["id"])
    )
    return Dataset(
        name="skimage",
        records=records,
        manifest_sha256=hashlib.sha256(MANIFEST.read_bytes()).hexdigest(),
        excluded=list(manifest["excluded"]),
    )


def build_manifest() -> dict[str, Any]:
    """Decode every catalogued image and record its pixel sha256 and size."""
    from datasets_benign.decode import load_rgb, pixel_sha256

    data_dir = skimage_data_dir()
    images = []
    for image_id, file, category, licence, attribution in _CATALOGUE:
        rgb = load_rgb(data_dir / file)
        images.append(
            {
                "id": image_id,
                "file": file,
                "category": category,
                "licence": licence,
                "attribution": attribution,
                "width": rgb.width,
                "height": rgb.height,
                "sha256": pixel_sha256(rgb),
            }
        )
    return {
        "name": "skimage",
        "description": "Public-domain / CC0 photographs shipped inside scikit-image's wheel.",
        "sha256_of": "decoded RGB pixels: sha256('RGB WxH\\n' + raw bytes)",
        "images": images,
        "excluded": _EXCLUDED,
    }


def write_manifest() -> Path:
    """Rewrite ``manifests/skimage.json`` from the installed scikit-image."""
    MANIFEST.write_text(json.dumps(build_manifest(), indent=2, ensure_ascii=False) + "\n")
    return MANIFEST
