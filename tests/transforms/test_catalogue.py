"""Behaviour of the individual transforms beyond the shared contract."""

import numpy as np
import pytest

from transforms import parse_chain


def _apply(text, image):
    return parse_chain(text).apply(image, suite_seed=0, image_id="img")


@pytest.mark.parametrize(
    ("anchor", "box"),
    [
        ("center", (10, 5, 90, 45)),
        ("top_left", (0, 0, 80, 40)),
        ("top_right", (20, 0, 100, 40)),
        ("bottom_left", (0, 10, 80, 50)),
        ("bottom_right", (20, 10, 100, 50)),
    ],
)
def test_crop_takes_the_anchored_window(anchor, box):
    from PIL import Image

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (50, 100, 3), dtype=np.uint8))
    out = _apply(f"crop(keep_area=0.64, anchor={anchor!r})", image)
    assert out.tobytes() == image.crop(box).tobytes()


def test_resize_long_side_keeps_aspect(gradient):
    assert _apply("resize(long_side=48)", gradient).size == (48, 32)
    tall = gradient.transpose(method=2)  # rotate 90: 64 x 96
    assert _apply("resize(long_side=48)", tall).size == (32, 48)


def test_jpeg_changes_pixels_more_at_low_quality(gradient):
    base = np.asarray(gradient, dtype=float)
    err = {
        q: np.abs(np.asarray(_apply(f"jpeg(quality={q})", gradient), dtype=float) - base).mean()
        for q in (95, 50, 5)
    }
    assert 0 < err[95] < err[50] < err[5]


def test_jpeg_is_a_real_jpeg_round_trip(gradient):
    import io

    from PIL import Image

    buf = io.BytesIO()
    gradient.save(buf, "JPEG", quality=70, subsampling=2)
    expected = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    assert _apply("jpeg(quality=70)", gradient).tobytes() == expected.tobytes()
