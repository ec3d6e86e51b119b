import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from datasets_benign import DATASETS, ImageRecord, folder_dataset, open_dataset
from datasets_benign.decode import load_rgb, pixel_sha256, to_rgb
from datasets_benign.skimage_corpus import MANIFEST, build_manifest
from harness.core.errors import DatasetError, ImageLoadError, UnknownNameError
from tests.conftest import reference_dir


def test_embedded_corpus_matches_its_manifest(embedded):
    manifest = json.loads(MANIFEST.read_text())
    assert len(embedded.records) == len(manifest["images"]) == 17
    ids = [r.id for r in embedded.records]
    assert ids == sorted(ids)
    assert "chelsea" in ids
    assert "cat" not in ids
    for record in embedded.records:
        assert record.licence in {"public domain", "CC0", "no known copyright restrictions"}
        image = record.load()  # verifies sha256
        assert image.mode == "RGB"
    assert {e["id"] for e in embedded.excluded} >= {"moon", "page", "cat", "logo"}


def test_manifest_is_what_the_builder_writes():
    assert json.loads(MANIFEST.read_text()) == build_manifest()


def test_tampered_pixels_are_refused(tmp_path, embedded):
    record = embedded.records[0]
    bad = tmp_path / "x.png"
    image = record.load()
    image.putpixel((0, 0), (1, 2, 3))
    image.save(bad)
    with pytest.raises(ImageLoadError, match="differ from the manifest"):
        ImageRecord(id="x", path=str(bad), sha256=record.sha256).load()


def test_open_dataset_names_and_folders(tmp_path):
    assert open_dataset("embedded").name == "skimage"
    with pytest.raises(UnknownNameError, match="Did you mean 'skimage'"):
        open_dataset("skimag")
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(str(tmp_path / "missing") + "/")
    with pytest.raises(DatasetError, match="contains no files"):
        folder_dataset(tmp_path)
    assert "skimage" in DATASETS


def test_folder_lists_every_file_with_stable_ids(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").write_text("x")
    Image.new("RGB", (8, 8)).save(tmp_path / "sub" / "b.png")
    (tmp_path / "a.txt").write_text("not an image")
    (tmp_path / "loop").symlink_to(tmp_path)  # symlinked folders are not followed
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    data = folder_dataset(tmp_path)
    assert [r.id for r in data.records] == ["a.txt", "dangling.png", "sub/b.png"]
    assert data.manifest_sha256 == folder_dataset(tmp_path).manifest_sha256


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"hello world", "not an image Pillow can identify"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not an image"),
    ],
)
def test_bad_files_raise_image_load_error(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=reason):
        load_rgb(path)


def test_truncated_images_raise(tmp_path, gradient):
    for fmt in ("PNG", "JPEG"):
        full = tmp_path / f"full.{fmt.lower()}"
        gradient.resize((256, 256)).save(full, fmt)
        cut = tmp_path / f"cut.{fmt.lower()}"
        cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        with pytest.raises(ImageLoadError, match="cannot decode"):
            load_rgb(cut)


def test_missing_file_raises(tmp_path):
    with pytest.raises(ImageLoadError):
        load_rgb(tmp_path / "nope.png")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_rgb(path)


def test_sixteen_bit_is_scaled_not_clipped():
    arr = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    rgb = to_rgb(Image.fromarray(arr))
    assert np.asarray(rgb)[0, :, 0].tolist() == [0, 100, 255]


def test_transparency_is_flattened_on_white():
    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (10, 20, 30, 255))
    assert np.asarray(to_rgb(rgba)).tolist() == [[[255, 255, 255], [10, 20, 30]]]


def test_exif_orientation_is_applied(tmp_path, gradient):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    gradient.save(path, "JPEG", exif=exif, quality=95)
    assert load_rgb(path).size == (gradient.height, gradient.width)


def test_pixel_sha256_depends_on_pixels_and_size():
    a = Image.new("RGB", (2, 3))
    assert pixel_sha256(a) != pixel_sha256(Image.new("RGB", (3, 2)))
    assert pixel_sha256(a) == pixel_sha256(a.copy())


def test_every_reference_mode_decodes_close_to_the_original():
    """Every file of ../shared/reference/decode-modes decodes to RGB with the original's pHash."""
    import imagehash

    folder = reference_dir("decode-modes")
    original = imagehash.phash(load_rgb(folder / "original.jpg"))
    for path in sorted(folder.iterdir()):
        if path.name == "original.jpg":
            continue
        image = load_rgb(path)
        assert image.mode == "RGB"
        distance = imagehash.phash(image) - original
        assert distance <= 4, (path.name, distance)  # measured: 0 for every mode


def test_tiles_decode_and_verify_their_source_once(tmp_path, monkeypatch):
    """Consecutive tiles of one photograph reuse its decoded, verified pixels; a changed file
    or a wrong digest is still caught."""
    from datasets_benign import base

    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(path)
    sha = pixel_sha256(load_rgb(path))
    crops = [(x, y, x + 32, y + 32) for y in (0, 32) for x in (0, 32, 64)]
    tiles = [ImageRecord(f"t{i}", str(path), sha256=sha, crop=c) for i, c in enumerate(crops)]
    decodes = []
    monkeypatch.setattr(
        base, "load_rgb", lambda p, policy: decodes.append(p) or load_rgb(p, policy)
    )
    monkeypatch.setattr(base, "_SOURCE", {})
    whole = load_rgb(path)
    for tile in tiles:
        assert tile.load().tobytes() == whole.crop(tile.crop).tobytes()
    assert len(decodes) == 1
    wrong = ImageRecord("w", str(path), sha256="0" * 64, crop=crops[0])
    with pytest.raises(ImageLoadError, match="differ from the manifest"):
        wrong.load()
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(path)
    with pytest.raises(ImageLoadError, match="differ from the manifest"):
        tiles[0].load()  # new pixels in the file: decoded and checked again, not served stale


def test_tile_source_is_decoded_afresh_when_the_file_is_rewritten_in_place(tmp_path, monkeypatch):
    """The decoded source is known by the file's content and decode policy: a file rewritten
    with the same size and modification time, or read under another policy, is decoded again."""
    import os

    from datasets_benign import base

    monkeypatch.setattr(base, "_SOURCE", {})
    rng = np.random.default_rng(1)
    path = tmp_path / "photo.bmp"  # uncompressed: every rewrite has the same size
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    tile = ImageRecord("t", str(path), crop=(0, 0, 32, 32))
    first = tile.load().tobytes()
    st = path.stat()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    second = tile.load().tobytes()
    assert second != first
    assert second == load_rgb(path).crop((0, 0, 32, 32)).tobytes()
    rgba = tmp_path / "alpha.png"
    Image.fromarray(np.zeros((64, 64, 4), dtype=np.uint8), mode="RGBA").save(rgba)
    viewer = ImageRecord("v", str(rgba), crop=(0, 0, 32, 32))
    reference = dataclasses.replace(viewer, decode="reference")
    assert viewer.load().getpixel((0, 0)) == (255, 255, 255)  # transparency on white
    assert reference.load().getpixel((0, 0)) == (0, 0, 0)  # alpha dropped
