"""Corpora at scale: near duplicates at two sizes, folder groups, max_side, oversize policy."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from datasets_benign import folder_dataset
from datasets_benign.base import configured, group_key
from harness import results
from harness.algorithms import make_algorithm
from harness.evaluate import _concentration, evaluate
from harness.runner import hash_corpus
from harness.store import file_key
from harness.suite import parse_suite
from tests.conftest import run_cli, synthetic_image

PHOTOS = ("astronaut", "chelsea", "rocket", "camera", "immunohistochemistry")


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skdata, name)()).convert("RGB")


def _preview(image: Image.Image, width: int = 80, quality: int = 20) -> Image.Image:
    """The same picture as a small, recompressed preview (a wallpaper site's thumbnail)."""
    small = image.resize((width, round(image.height * width / image.width)), Image.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _bits(name: str, a: Image.Image, b: Image.Image) -> int:
    algo = make_algorithm(name)
    return int(np.bitwise_count(algo.hash(a) ^ algo.hash(b)).sum())


@pytest.fixture
def wallpapers(tmp_path):
    """Distinct photographs, and one of them again as a preview 12-26 PDQ bits away."""
    folder = tmp_path / "wallpapers"
    folder.mkdir()
    coffee = _photo("coffee")
    coffee.save(folder / "coffee.png")
    preview = _preview(coffee)
    preview.save(folder / "coffee_preview.png")
    for name in PHOTOS:
        _photo(name).save(folder / f"{name}.png")
    distance = _bits("pdq", coffee, preview)
    assert 12 <= distance <= 26, distance  # the case a PDQ <= 10 cleaning missed
    return folder


def _suite(tmp_path, extra: str = "") -> object:
    path = tmp_path / "suite.toml"
    path.write_text(
        'algorithms = ["pdq", "phash"]\ntransforms = ["identity"]\nbootstrap_resamples = 0\n'
        "thresholds = { pdq = [31], phash = [10] }\n" + extra
    )
    return path


def _originals(result: dict, algorithm: str) -> dict:
    return next(
        c
        for c in result["collisions"]
        if c["protocol"] == "originals_all_pairs" and c["algorithm"] == algorithm
    )


def test_same_picture_at_two_sizes_is_grouped_by_the_looser_confirmed_check(wallpapers, tmp_path):
    n = len(PHOTOS) + 2
    # PDQ <= 10 alone misses the pair: it is counted as a PDQ collision at 31 bits.
    strict = tmp_path / "strict"
    suite = _suite(tmp_path, '[near_duplicates]\nalgorithm = "pdq"\nmax_distance = 10\n')
    assert run_cli(suite, wallpapers, strict) == 0
    result = results.to_builtins(results.load(strict / "results.json"))
    assert result["hygiene"]["near_duplicates"]["pairs"] == []
    assert _originals(result, "pdq")["metrics"][0]["k"] >= 1

    # PDQ <= 32 confirmed by pHash <= 8 groups it: listed with both distances, never counted.
    loose = tmp_path / "loose"
    suite = _suite(
        tmp_path,
        '[near_duplicates]\nalgorithm = "pdq"\nmax_distance = 32\n'
        'confirm_algorithm = "phash"\nconfirm_max_distance = 8\n',
    )
    assert run_cli(suite, wallpapers, loose) == 0
    result = results.to_builtins(results.load(loose / "results.json"))
    near = result["hygiene"]["near_duplicates"]
    assert near["groups"] == [["coffee.png", "coffee_preview.png"]]
    (pair,) = near["pairs"]
    assert (pair["a"], pair["b"]) == ("coffee.png", "coffee_preview.png")
    assert 12 <= pair["distance"] <= 26
    assert pair["confirm_distance"] <= 8
    pdq = _originals(result, "pdq")
    assert pdq["n_pairs"] == n * (n - 1) // 2 - 1
    assert pdq["metrics"][0]["k"] == 0
    assert "by the second hash" in (loose / "report.md").read_text()


def test_a_second_check_that_fails_keeps_images_apart(wallpapers, tmp_path):
    """Both checks must hold: a confirm limit the pair exceeds leaves it ungrouped."""
    suite = _suite(
        tmp_path,
        '[near_duplicates]\nalgorithm = "phash"\nmax_distance = 10\n'
        'confirm_algorithm = "pdq"\nconfirm_max_distance = 10\n',
    )
    assert run_cli(suite, wallpapers, tmp_path / "o") == 0
    result = results.to_builtins(results.load(tmp_path / "o" / "results.json"))
    assert result["hygiene"]["near_duplicates"]["groups"] == []


def test_group_by_stem_and_folder(wallpapers, tmp_path):
    assert group_key("a/coffee_preview.png", "stem") == "a/coffee"
    assert group_key("a/coffee_1920x1080.jpg", "stem") == "a/coffee"
    assert group_key("a/coffee@2x.png", "stem") == "a/coffee"
    assert group_key("a/b/coffee.png", "folder") == "a/b"
    suite = _suite(tmp_path, 'group_by = "stem"\n')
    assert run_cli(suite, wallpapers, tmp_path / "o") == 0
    result = results.to_builtins(results.load(tmp_path / "o" / "results.json"))
    n = len(PHOTOS) + 2
    assert _originals(result, "pdq")["n_pairs"] == n * (n - 1) // 2 - 1
    groups = {i["id"]: i.get("group") for i in result["dataset"]["images"]}
    assert groups["coffee.png"] == groups["coffee_preview.png"] == "coffee"


def test_sub_folders_are_categories(tmp_path):
    for folder, seeds in (("stars", (1, 2)), ("animals", (3,))):
        (tmp_path / folder).mkdir()
        for s in seeds:
            synthetic_image(64, 48, seed=s).save(tmp_path / folder / f"{s}.png")
    synthetic_image(64, 48, seed=9).save(tmp_path / "top.png")
    data = folder_dataset(tmp_path)
    assert {r.id: r.category for r in data.records} == {
        "animals/3.png": "animals",
        "stars/1.png": "stars",
        "stars/2.png": "stars",
        "top.png": "unknown",
    }


def test_max_side_shrinks_records_and_is_recorded_and_keyed(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    synthetic_image(900, 300, seed=1).save(folder / "wide.png")
    synthetic_image(120, 90, seed=2).save(folder / "small.png")
    suite = _suite(tmp_path, "max_side = 300\n")
    assert run_cli(suite, folder, tmp_path / "o") == 0
    result = results.to_builtins(results.load(tmp_path / "o" / "results.json"))
    sizes = {i["id"]: (i["width"], i["height"]) for i in result["dataset"]["images"]}
    assert sizes == {"wide.png": (300, 100), "small.png": (120, 90)}
    assert result["dataset"]["max_side"] == 300
    plain = folder_dataset(folder)
    shrunk = configured(plain, max_side=300)
    wide = next(r for r in shrunk.records if r.id == "wide.png")
    assert wide.load().size == (300, 100)
    # Its own cache-key component: shrunk pixels never answer for the full-size file.
    assert file_key(wide) != file_key(plain.records[1])
    assert file_key(configured(shrunk, max_side=0).records[1]) == file_key(plain.records[1])


@pytest.mark.parametrize(("policy", "ok"), [("exclude", True), ("fail", False)])
def test_decompression_bombs_follow_the_dataset_policy(tmp_path, monkeypatch, policy, ok):
    folder = tmp_path / "imgs"
    folder.mkdir()
    synthetic_image(400, 300, seed=1).save(folder / "huge.png")
    for s in range(3):
        synthetic_image(60, 40, seed=10 + s).save(folder / f"small{s}.png")
    # Pillow refuses images over twice this many pixels as decompression bombs.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)
    data = dataclasses.replace(folder_dataset(folder), oversize=policy)
    suite = parse_suite(
        {"algorithms": ["phash"], "transforms": ["identity"], "bootstrap_resamples": 0}
    )
    corpus = hash_corpus(data, suite.transforms, suite.algorithms, seed=0)
    result = evaluate(suite, data, corpus)
    assert result["status"]["ok"] is ok
    huge = next(i for i in result["dataset"]["images"] if i["id"] == "huge.png")
    if ok:
        assert huge["status"] == "excluded"
        (entry,) = result["dataset"]["excluded"]
        assert entry["id"] == "huge.png"
        assert "decompression bomb" in entry["reason"]
        assert "dataset policy" in entry["reason"]
        assert result["failures"] == []
    else:
        assert huge["status"] == "failed"
        assert result["status"]["images_failed"] == 1


def test_warning_when_one_group_makes_most_false_matches(tmp_path):
    folder = tmp_path / "f"
    for sub in ("stars", "other"):
        (folder / sub).mkdir(parents=True)
    for s in range(36):
        synthetic_image(40, 30, seed=s).save(folder / "other" / f"{s}.png")
    for s in range(4):
        synthetic_image(40, 30, seed=100 + s).save(folder / "stars" / f"{s}.png")
    data = folder_dataset(folder)
    stars = [
        ("stars/0.png", "stars/1.png"),
        ("stars/1.png", "stars/2.png"),
        ("stars/2.png", "stars/3.png"),
    ]
    false_pairs = [*stars, ("other/1.png", "other/2.png")]
    warning = _concentration("phash", 10, false_pairs, data)
    assert warning is not None
    assert "3 of 4" in warning
    assert "folder stars/" in warning
    spread = [("other/1.png", "other/2.png"), stars[0], ("other/3.png", "other/4.png")]
    spread.append(("other/5.png", "other/6.png"))
    assert _concentration("phash", 10, spread, data) is None
