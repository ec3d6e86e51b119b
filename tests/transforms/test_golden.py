"""Golden pixel digests: every transform's exact output on a fixed image, per environment.

Digests are sha256 of mode, size and pixel bytes. They are keyed by the versions that decide the
pixels (Pillow and its codecs, numpy for seeded draws, scipy for convolutions), so an upgrade shows
up as a missing key (skip, with the command to record) rather than a false failure; a change
*within* one environment is a failure. Transforms whose pixels depend on builds beyond these
versions (AVIF encoder, FreeType text rendering) declare ``stable_pixels = False`` and are left out.
"""

import json
from importlib.metadata import version

import numpy as np
import pytest
from PIL import features

from datasets_benign.decode import pixel_sha256
from tests.conftest import GOLDEN, synthetic_image
from tests.transforms.test_base import EXAMPLES
from transforms import TRANSFORMS
from transforms.base import make_transform

PATH = GOLDEN / "transform_digests.json"


def environment_key() -> str:
    parts = {
        "pillow": version("pillow"),
        "numpy": version("numpy"),
        "scipy": version("scipy"),
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "webp": features.version("webp"),  # PNG is lossless: zlib never changes pixels
    }
    return ";".join(f"{k}={v}" for k, v in sorted(parts.items()))


def _stable_examples():
    for name, params_list in EXAMPLES.items():
        if TRANSFORMS.get(name).stable_pixels:
            for params in params_list:
                yield make_transform(name, params)


def _digests() -> dict[str, str]:
    image = synthetic_image(97, 61, seed=3)
    return {
        t.id: pixel_sha256(t.apply(image, np.random.default_rng(1234))) for t in _stable_examples()
    }


def test_golden_pixel_digests(update_golden):
    golden = json.loads(PATH.read_text()) if PATH.exists() else {}
    key = environment_key()
    actual = _digests()
    if update_golden:
        golden[key] = actual
        PATH.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        return
    if key not in golden:
        pytest.skip(
            f"no golden transform digests for {key} (install with -c constraints.txt, or "
            "record with pytest --update-golden)"
        )
    recorded = golden[key]
    changed = sorted(i for i in actual if i in recorded and actual[i] != recorded[i])
    assert not changed, f"transform output changed under {key}: {changed}"
    missing = sorted(set(actual) - set(recorded))
    assert not missing, f"no golden digest for {missing}; record with pytest --update-golden"


def test_every_stable_transform_has_a_golden_digest():
    """Fails when a transform is added without recording its digests (in any environment)."""
    golden = json.loads(PATH.read_text())
    recorded = {i.split("(")[0].split("|")[0] for digests in golden.values() for i in digests}
    stable = {n for n in TRANSFORMS.names() if TRANSFORMS.get(n).stable_pixels}
    assert stable <= recorded, f"record digests for {sorted(stable - recorded)}"
    unstable = {n for n in TRANSFORMS.names() if not TRANSFORMS.get(n).stable_pixels}
    assert unstable == {"avif", "caption_bar", "text", "watermark"}


def test_digests_are_deterministic():
    assert _digests() == _digests()
