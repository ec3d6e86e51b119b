"""Hostile and broken input: every file ends evaluated or as a failure with a reason; loaders of
images, suites, manifests and results never raise anything but their own clear errors."""

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from datasets_benign.decode import load_rgb
from harness import results
from harness.cli import main
from harness.core.errors import DatasetError, ImageLoadError, SuiteError
from harness.suite import parse_suite
from tests.conftest import run_cli, synthetic_image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _raw_png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )


def build_bad_corpus(folder: Path) -> dict[str, str]:
    """Write the hostile corpus; returns file name -> "ok" or "fail" (what the run must do)."""
    expect: dict[str, str] = {}
    photo = synthetic_image(96, 64, seed=1)

    def save(name, image, outcome="ok", **kw):
        image.save(folder / name, **kw)
        expect[name] = outcome

    def raw(name, data, outcome):
        (folder / name).write_bytes(data)
        expect[name] = outcome

    save("good.png", photo)
    raw("zero-byte.jpg", b"", "fail")
    jpeg = io.BytesIO()
    photo.save(jpeg, "JPEG")
    # A half JPEG may decode (grey lower half) or be refused, depending on where the cut falls.
    raw("truncated.jpg", jpeg.getvalue()[: len(jpeg.getvalue()) // 2], "either")
    png = io.BytesIO()
    photo.save(png, "PNG")
    raw("truncated.png", png.getvalue()[: len(png.getvalue()) // 2], "fail")
    raw("jpeg-named.png", jpeg.getvalue(), "ok")  # wrong extension: content decides
    raw(
        "random.bin", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "fail"
    )
    raw("page.html", b"<html><script>alert(1)</script></html>", "fail")
    raw(
        "vector.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="9" height="9"/></svg>',
        "fail",
    )
    bad_crc = bytearray(png.getvalue())
    bad_crc[29] ^= 0xFF  # inside IHDR's CRC
    raw("bad-crc.png", bytes(bad_crc), "fail")
    raw("zero-area.png", _raw_png(0, 10), "fail")
    bomb = io.BytesIO()
    Image.new("1", (20_000, 15_000)).save(bomb, "PNG")  # 300 MP of zeros: a few kB compressed
    raw("bomb.png", bomb.getvalue(), "fail")
    save("one-pixel.png", Image.new("RGB", (1, 1), (200, 10, 10)))
    save("strip-50000x10.png", Image.new("RGB", (50_000, 10), (30, 90, 200)))
    save("cmyk.jpg", photo.convert("CMYK"))
    save("gray16.png", Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257))
    save("float.tiff", Image.fromarray(np.asarray(photo.convert("L"), np.float32) / 255.0))
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    save("palette-transparent.png", pal, transparency=0)
    save("la.png", photo.convert("LA"))
    frames = [photo, synthetic_image(96, 64, seed=2)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    expect["animated.gif"] = "ok"
    frames[0].save(folder / "animated.webp", save_all=True, append_images=frames[1:], duration=100)
    expect["animated.webp"] = "ok"
    exif = Image.Exif()
    exif[0x0112] = 6
    save("exif-rotated.jpg", photo, exif=exif)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    save("icc-profile.jpg", photo, icc_profile=icc)
    raw(
        "no-decoder.heic",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
        "fail",
    )
    os.symlink(folder / "loop-b.png", folder / "loop-a.png")
    os.symlink(folder / "loop-a.png", folder / "loop-b.png")
    expect["loop-a.png"] = expect["loop-b.png"] = "fail"
    save("unreadable.png", photo)
    os.chmod(folder / "unreadable.png", 0)
    expect["unreadable.png"] = "ok" if os.geteuid() == 0 else "fail"  # root reads anything
    return expect


def test_every_hostile_file_is_evaluated_or_a_recorded_failure(tmp_path):
    folder = tmp_path / "bad <b>corpus"
    folder.mkdir()
    expect = build_bad_corpus(folder)
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'algorithms = ["phash", "pdq"]\n'
        'transforms = ["identity", "jpeg@S3", "crop@S2"]\nbootstrap_resamples = 0\n'
    )
    out = tmp_path / "out"
    code = run_cli(str(suite), str(folder), str(out), "--no-cache")
    assert code == 3  # finished, wrote everything, but images failed (max_failure_rate 0)
    result = results.to_builtins(results.load(out / "results.json"))
    failed = {}
    for f in result["failures"]:
        if f["stage"] == "decode":
            assert f["error"], f
            failed[f["image"]] = f["error"]
    ok = {i["id"] for i in result["dataset"]["images"] if i["status"] in ("ok", "duplicate")}
    assert set(failed) | ok == set(expect)  # nothing lost
    assert not set(failed) & ok
    wrong = {
        name: (want, failed.get(name))
        for name, want in expect.items()
        if want != "either" and (want == "fail") != (name in failed)
    }
    assert wrong == {}
    assert "decompression bomb" in failed["bomb.png"]
    assert "empty file" in failed["zero-byte.jpg"]
    sizes = {i["id"]: (i["width"], i["height"]) for i in result["dataset"]["images"]}
    assert sizes["exif-rotated.jpg"] == (64, 96)  # orientation applied
    assert sizes["animated.gif"] == (96, 64)  # first frame
    for name in ("report.md", "report.html", "report.junit.xml"):
        text = (out / name).read_text()
        assert "<script>alert" not in text
    assert run_cli(str(suite), str(folder), str(out), "--max-failure-rate", "1") == 0


def test_loaders_of_decoded_images_follow_the_policy(tmp_path):
    build_bad_corpus(tmp_path)
    grey = np.asarray(load_rgb(tmp_path / "gray16.png"))
    assert grey.max() > 200  # scaled, not clipped to white
    assert (grey < 250).mean() > 0.5
    assert load_rgb(tmp_path / "palette-transparent.png").mode == "RGB"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2048), cut=st.integers(0, 4000), flip=st.integers(0, 4000))
def test_image_loader_fuzz(tmp_path, data, cut, flip):
    """Random bytes and damaged real files: an RGB image or ImageLoadError, nothing else."""
    buf = io.BytesIO()
    synthetic_image(40, 30, seed=cut % 7).save(
        buf, ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"][cut % 6]
    )
    real = bytearray(buf.getvalue())
    if real:
        real[flip % len(real)] ^= 0x5A
    for blob in (data, bytes(real[: max(1, cut % (len(real) + 1))]), bytes(real)):
        path = tmp_path / "fuzz.img"
        path.write_bytes(blob)
        try:
            image = load_rgb(path)
        except ImageLoadError as exc:
            reason = str(exc)
            image = None
        if image is None:
            assert reason  # a refusal always says why
        else:
            assert image.mode == "RGB"
            assert image.width > 0
            assert image.height > 0


toml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 300)
    | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
suite_keys = st.sampled_from(
    [
        "name",
        "version",
        "seed",
        "dataset",
        "algorithms",
        "transforms",
        "thresholds",
        "max_failure_rate",
        "target_fprs",
        "near_duplicates",
        "calibration_fraction",
        "bootstrap_resamples",
        "base_rates",
        "sed",
    ]
)


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(
        suite_keys,
        toml_values
        | st.lists(
            st.sampled_from(
                [
                    "phash",
                    "pdq",
                    "jpeg@S3",
                    "crop(keep_area=2)",
                    "preset:avatar",
                    "nope",
                    "rotate@S9",
                    "",
                ]
            ),
            max_size=4,
        ),
    )
)
def test_suite_parser_fuzz(raw):
    message = ""
    try:
        parse_suite(raw)
    except SuiteError as exc:
        message = str(exc)
    assert message == "" or "problem" in message  # valid, or every problem listed


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(["path", "url", "sha256", "id", "licence", "group", "x"]),
            st.text(max_size=30)
            | st.sampled_from(["../a.png", "/etc/passwd", "http://127.0.0.1/a.png", "a.png"]),
            max_size=4,
        ),
        max_size=4,
    )
)
def test_manifest_fuzz(tmp_path, rows):
    from datasets_benign.manifest import manifest_dataset

    path = tmp_path / "m.json"
    path.write_text(json.dumps(rows))
    try:
        data = manifest_dataset(path)
    except DatasetError as exc:
        data = None
        reason = str(exc)
    if data is None:
        assert reason
    else:
        for record in data.records:
            assert (
                ".." not in Path(record.path).relative_to(tmp_path).parts if record.path else True
            )


@pytest.fixture(scope="module")
def small_result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("res")
    folder = tmp / "imgs"
    folder.mkdir()
    for i in range(4):
        synthetic_image(60, 40, seed=i).save(folder / f"i{i}.png")
    suite = tmp / "s.toml"
    suite.write_text(
        'algorithms = ["phash"]\ntransforms = ["identity", "jpeg@S3"]\nbootstrap_resamples = 0\n'
    )
    assert run_cli(str(suite), str(folder), str(tmp / "o"), "--no-cache") == 0
    return json.loads((tmp / "o" / "results.json").read_text())


def _mutate(doc, path, value):
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


MUTATIONS = [
    (("cells",), "not a list"),
    (("cells", 0), 7),
    (("cells", 0, "metrics"), {"a": 1}),
    (("cells", 0, "positives"), None),
    (("collisions", 0, "hist"), "x"),
    (("algorithms", 0), []),
    (("suite", "version"), "one"),
    (("dataset", "images"), 3),
    (("environment",), None),
    (("transforms", 0, "steps"), 5),
]


@pytest.mark.parametrize(("path", "value"), MUTATIONS)
def test_malformed_results_give_a_clear_error_not_a_traceback(
    small_result, tmp_path, path, value, capsys
):
    doc = json.loads(json.dumps(small_result))
    _mutate(doc, path, value)
    target = tmp_path / "r.json"
    target.write_text(json.dumps(doc))
    for fmt in ("md", "html", "junit"):
        code = main(["report", str(target), "--format", fmt])
        assert code in (0, 2), fmt
        if code == 2:
            assert "hash-harness:" in capsys.readouterr().err
    assert main(["compare", str(target), str(target)]) in (0, 2)
    base = tmp_path / "b.json"
    assert main(["baseline", "create", "--results", str(target), "--out", str(base)]) in (0, 2)


def test_truncated_and_newer_results(small_result, tmp_path, capsys):
    text = json.dumps(small_result)
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    assert main(["report", str(tmp_path / "cut.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    (tmp_path / "new.json").write_text(json.dumps({**small_result, "schema_version": 99}))
    assert main(["report", str(tmp_path / "new.json")]) == 2
    assert "upgrade hash-harness" in capsys.readouterr().err


def test_kill_during_a_report_write_leaves_old_or_new_never_half(tmp_path):
    """A writer killed mid-write (kill -9) leaves the previous file intact; the next write
    succeeds and clears the stale temporary file."""
    target = tmp_path / "results.json"
    target.write_text('{"old": true}\n')
    code = (
        "import os, sys, signal\n"
        "from harness import results\n"
        "real = os.replace\n"
        "def die(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.replace = die\n"
        f"results.atomic_write_text({str(target)!r}, 'x' * 5_000_000)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    assert target.read_text() == '{"old": true}\n'
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # what the crash left behind
    results.atomic_write_text(target, '{"new": true}\n')
    assert target.read_text() == '{"new": true}\n'
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
