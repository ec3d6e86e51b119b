"""Behaviour of the individual transforms beyond the shared contract."""

import io
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from harness.core.errors import InvalidParameterError, UnknownNameError
from tests.conftest import synthetic_image
from tests.transforms.test_base import EXAMPLES
from transforms import TRANSFORMS, catalogue, parse_chain
from transforms.base import make_transform


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


# --- Catalogue-wide properties --------------------------------------------------------------


RANDOM = [
    make_transform(n, p) for n, ps in EXAMPLES.items() for p in ps if TRANSFORMS.get(n).uses_rng
]


def test_catalogue_size():
    assert len(TRANSFORMS.names()) >= 40
    assert len(catalogue.PRESETS) >= 12
    assert all(len(ladder.levels) == 5 for ladder in catalogue.LADDERS.values())


@pytest.mark.parametrize("t", RANDOM, ids=str)
def test_random_draws_are_recorded_and_replay_the_output(t):
    image = synthetic_image(80, 50, seed=1)
    drawn = t.draw(image.size, np.random.default_rng(7))
    json.dumps(drawn)  # recordable as JSON (empty when this setting draws nothing)
    replay = t.render(image, drawn)
    assert replay.tobytes() == t.apply(image, np.random.default_rng(7)).tobytes()
    applied = t.applied(image.size, np.random.default_rng(7))
    assert applied == {**t.params(), **drawn}


def test_chain_records_every_step():
    chain = catalogue.expand("perspective(max_shift=0.1)|jpeg(quality=50)|gaussian_noise")[0]
    record = chain.applied((64, 48), suite_seed=3, image_id="img")
    assert [r["name"] for r in record] == ["perspective", "jpeg", "gaussian_noise"]
    assert len(record[0]["corner_shifts_px"]) == 4
    assert record == chain.applied((64, 48), suite_seed=3, image_id="img")
    assert record != chain.applied((64, 48), suite_seed=3, image_id="other")
    jitter = catalogue.expand("jpeg_generations(n=3, jitter=1)")[0].applied(
        (9, 9), suite_seed=0, image_id="a"
    )
    assert len(jitter[0]["trim_left"]) == 3


@pytest.mark.parametrize("family", list(catalogue.LADDERS))
def test_severity_ladders_grow(family):
    """S1..S5 intensities never decrease; where the size is kept, neither does the mean change
    of the pixels (on real photographs, averaged over images)."""
    from datasets_benign import open_dataset

    ladder = catalogue.LADDERS[family]
    steps = [ladder.step(v) for v in ladder.levels]
    intensity = [t.intensity for t in steps]
    assert intensity == sorted(intensity), intensity
    images = [r.load().resize((128, 96)) for r in open_dataset("skimage").records[:6]]
    change = []
    for t in steps:
        outs = [t.apply(im, np.random.default_rng(k)) for k, im in enumerate(images)]
        if any(o.size != im.size for o, im in zip(outs, images, strict=True)):
            return  # size-changing family: pixel change is not comparable
        change.append(
            np.mean(
                [
                    np.abs(np.asarray(o, float) - np.asarray(im, float)).mean()
                    for o, im in zip(outs, images, strict=True)
                ]
            )
        )
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(change)), change


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("crop@S1-S3", ["crop(keep_area=0.95)", "crop(keep_area=0.9)", "crop(keep_area=0.81)"]),
        ("jpeg@S2", ["jpeg(quality=75)"]),
        ("rotate@S1,S5", ["rotate(degrees=1.0)", "rotate(degrees=20.0)"]),
        ("crop_corner@S5", ["crop(anchor='top_left',keep_area=0.3)"]),
        ("flip@all", ["hflip", "vflip"]),
        ("jpeg(quality=50)|resize(scale=0.5)", ["jpeg(quality=50)|resize(scale=0.5)"]),
        (
            "resize(scale=0.5)|jpeg@S1,S5",
            ["resize(scale=0.5)|jpeg(quality=90)", "resize(scale=0.5)|jpeg(quality=10)"],
        ),
        ("crop@S1|flip@all", ["crop(keep_area=0.95)|hflip", "crop(keep_area=0.95)|vflip"]),
    ],
)
def test_selection_syntax(text, ids):
    assert [c.id for c in catalogue.expand(text)] == ids


def test_selection_fine_grid_and_presets():
    assert len(catalogue.expand("pad@fine")) == len(catalogue.LADDERS["pad"].fine)
    chain = catalogue.expand("preset:whatsapp_like")[0]
    assert chain.display == "preset:whatsapp_like"
    assert chain.id.startswith(
        "resize(filter='bilinear',long_side=1600,upscale=False)|jpeg(quality=70)"
    )


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("crp@S1", UnknownNameError, "Did you mean 'crop'"),
        ("crop@S6", InvalidParameterError, "write S1..S5"),
        ("crop@S4-S2", InvalidParameterError, "runs backwards"),
        ("preset:whatsap", UnknownNameError, "Did you mean 'whatsapp_like'"),
    ],
)
def test_selection_errors(text, error, message):
    with pytest.raises(error, match=re.escape(message)):
        catalogue.expand(text)


@pytest.mark.parametrize("name", list(catalogue.PRESETS))
def test_presets_run_and_never_enlarge_a_small_upload(name):
    chain = catalogue.preset(name)
    image = synthetic_image(90, 60, seed=2)
    out = chain.apply(image, suite_seed=0, image_id="x")
    assert out.size == chain.output_size(image.size)
    if "screenshot" not in name and "story" not in name and "caption" not in chain.id:
        assert out.width * out.height <= image.width * image.height


def test_readme_transform_table_is_generated_from_the_registry():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"<!-- transforms:start -->\n(.*?)<!-- transforms:end -->", readme, re.S)
    assert block, "README.md lost its generated transform table markers"
    assert block.group(1) == catalogue.render_catalogue(markdown=True), (
        "README transform table is stale: regenerate with `hash-harness list transforms --markdown`"
    )


# --- Individual behaviours -------------------------------------------------------------------


def test_exif_ignored_is_what_a_viewer_undoes():
    image = synthetic_image(60, 40, seed=4)
    for tag in range(2, 9):
        stored = _apply(f"exif_ignored(tag={tag})", image)
        exif = Image.Exif()
        exif[0x0112] = tag
        buf = io.BytesIO()
        stored.save(buf, "PNG", exif=exif)
        buf.seek(0)
        with Image.open(buf) as f:
            assert ImageOps.exif_transpose(f).tobytes() == image.tobytes(), tag


def test_controls_do_not_change_pixels(gradient):
    for text in ("png", "strip_metadata", "identity", "webp(lossless=True)", "pad(fraction=0.0)"):
        assert _apply(text, gradient).tobytes() == gradient.tobytes(), text
    assert (
        _apply("jpeg(progressive=True)", gradient).tobytes() == _apply("jpeg", gradient).tobytes()
    )


def test_geometry_details():
    image = synthetic_image(100, 50, seed=5)
    assert _apply("rotate(degrees=4.0, mode='same')", image).size == (100, 50)
    assert _apply("crop_to_aspect(aspect=0.8, mode='at_least')", image).size == (100, 50)
    assert _apply("crop_to_aspect(aspect=1.0)", image).size == (50, 50)
    assert _apply("pad(fraction=0.2, sides='horizontal')", image).size == (140, 50)
    assert _apply("resize(long_side=400, upscale=False)", image).size == (100, 50)
    assert (
        _apply("rotate90(k=1)", image).tobytes()
        == image.transpose(Image.Transpose.ROTATE_90).tobytes()
    )
    big = synthetic_image(200, 100, seed=5)
    assert _apply("draft_decode(reduce=4)", big).size == (50, 25)
    # Non-antialiased bilinear aliases: it keeps more of a one-pixel checkerboard than Pillow's.
    checker = Image.fromarray(((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)).convert(
        "RGB"
    )
    aa = np.asarray(_apply("resize(scale=0.33, filter='bilinear')", checker), float).std()
    naa = np.asarray(_apply("resample(scale=0.33, method='nonaa_bilinear')", checker), float).std()
    assert naa > aa


def test_pixel_quantisation_details():
    image = synthetic_image(96, 64, seed=6)
    blocks = np.asarray(_apply("pixelize(block=0.25)", image))  # 16-px blocks
    assert (blocks[:16, :16] == blocks[0, 0]).all()
    colours = np.unique(np.asarray(_apply("palette(colors=16)", image)).reshape(-1, 3), axis=0)
    assert len(colours) <= 16
    white = np.asarray(_apply("mode_path(path='i16_clip')", image))
    assert (white == 255).mean() > 0.9  # the 16-bit clipping bug turns the picture white
    shifted = np.asarray(_apply("mode_path(path='i16_shift')", image), float)
    grey = np.asarray(image.convert("L"), float)
    assert np.abs(shifted[..., 0] - grey).max() <= 1
