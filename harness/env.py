"""Environment fingerprint: every version that can change a hash bit or an encoded pixel.

Recorded in every result so that two runs are compared only when like is compared with like, and
so that a changed hash can be traced to the library that changed it (Pillow 13 reordered resize
passes; libavif releases change AVIF pixels; scipy and PyWavelets feed pHash and wHash).
"""

from __future__ import annotations

import platform
import sys
from typing import Any

from PIL import features

from harness.algorithms.base import distribution_version

#: Distributions whose versions are recorded with every run.
PACKAGES = (
    "hash-harness",
    "pillow",
    "ImageHash",
    "numpy",
    "scipy",
    "PyWavelets",
    "pdqhash",
    "scikit-image",
)

#: Pillow's bundled codecs and libraries that decide encoded and decoded pixels.
CODECS = ("libjpeg_turbo", "zlib", "webp", "avif", "freetype2", "littlecms2")


def codec_versions() -> dict[str, str]:
    """Versions of Pillow's codec libraries (``"absent"`` when Pillow was built without one)."""
    out = {}
    for name in CODECS:
        try:
            out[name] = features.version(name) or "absent"
        except ValueError:  # a feature this Pillow does not know about
            out[name] = "unknown"
    return out


def environment() -> dict[str, Any]:
    """The fingerprint stored under ``"environment"`` in results."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.system(),
        "machine": platform.machine(),
        "packages": {name: distribution_version(name) for name in PACKAGES},
        "codecs": codec_versions(),
    }


def environment_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Human-readable list of what differs between two fingerprints ("pillow 12.3.0 -> 13.0.0")."""
    diffs = []
    for section in ("packages", "codecs"):
        for key in sorted(set(a.get(section, {})) | set(b.get(section, {}))):
            va, vb = a.get(section, {}).get(key), b.get(section, {}).get(key)
            if va != vb:
                diffs.append(f"{key} {va} -> {vb}")
    for key in ("python", "platform", "machine"):
        if a.get(key) != b.get(key):
            diffs.append(f"{key} {a.get(key)} -> {b.get(key)}")
    return diffs
