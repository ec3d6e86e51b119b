"""Conformance of every registered algorithm, golden hashes, and PDQ reference vectors."""

import csv
import dataclasses
import sys
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from harness.algorithms import ALGORITHMS, HashAlgorithm, make_algorithm
from harness.algorithms.policies import POLICIES, Policy
from harness.algorithms.vectors import Measured
from harness.core.errors import HarnessError, InvalidParameterError, UnknownNameError
from harness.core.params import declared
from harness.kernels import hamming
from harness.testing import check_algorithm
from tests.conftest import reference_dir, synthetic_image

VENDOR = str(Path(__file__).resolve().parents[1] / "vendor" / "jsonl_hasher.py")

EXAMPLES = {
    "average_hash": ["average_hash", "average_hash(hash_size=16)"],
    "phash": ["phash", "phash(hash_size=16)", "phash(highfreq_factor=2)"],
    "phash_simple": ["phash_simple", "phash_simple(hash_size=16)"],
    "dhash": ["dhash", "dhash(hash_size=12)"],
    "dhash_vertical": ["dhash_vertical"],
    "whash": [
        "whash",
        "whash(hash_size=16)",
        "whash(mode='db4')",
        "whash(hash_size=16, mode='db4')",
    ],
    "colorhash": ["colorhash", "colorhash(binbits=4)"],
    "pdq": ["pdq", "pdq(quality_gate=0)"],
    "pdq_dihedral": ["pdq_dihedral", "pdq_dihedral(quality_gate=0)"],
    "crop_resistant_hash": ["crop_resistant_hash"],
    "cv_radial_variance_hash": ["cv_radial_variance_hash"],
    "cv_color_moment_hash": ["cv_color_moment_hash"],
    "blockhash": ["blockhash", "blockhash(method='quick')", "blockhash(bits=8)"],
    "cv_average_hash": ["cv_average_hash"],
    "cv_phash": ["cv_phash"],
    "cv_block_mean_hash": ["cv_block_mean_hash", "cv_block_mean_hash(mode=1)"],
    "cv_marr_hildreth_hash": ["cv_marr_hildreth_hash"],
    "precomputed": ["precomputed(label='acme', bits=96)"],
    # A vendor binary behind the JSON-lines protocol (tests/vendor/jsonl_hasher.py).
    "external": [
        f"external(label='acme', command={[sys.executable, VENDOR, 'phash']!r}, bits=64)",
    ],
}
ALL = [make_algorithm(text) for texts in EXAMPLES.values() for text in texts]


# Every registered policy, over bit hashes and over hashes with their own metric.
POLICY_EXAMPLES = {
    "and": ["pdq & phash", "dhash & phash & pdq(quality_gate=0)"],
    "or": ["pdq | phash", "cv_radial_variance_hash | phash"],
    "sum": ["pdq + phash", "(pdq | dhash) + phash(hash_size=16)"],
    "dihedral": ["dihedral(phash)", "dihedral(cv_radial_variance_hash)"],
    "unletterbox": ["unletterbox(pdq)", "unletterbox(phash,color='uniform',threshold=8)"],
    "gate": ["gate(phash,quality=50)", "gate(dihedral(dhash),quality=0)"],
}
POLICIES_ALL = [make_algorithm(text) for texts in POLICY_EXAMPLES.values() for text in texts]


def test_every_algorithm_has_test_params():
    assert set(ALGORITHMS.names()) == set(EXAMPLES)
    assert set(POLICIES.names()) == set(POLICY_EXAMPLES)
    for name in ALGORITHMS.names():  # the adapters' own example sets are all exercised here
        assert set(ALGORITHMS.get(name).examples) <= set(EXAMPLES[name]), name


@pytest.mark.parametrize("algo", ALL + POLICIES_ALL, ids=str)
def test_conformance(algo: HashAlgorithm):
    if algo.name == "precomputed":  # hashes come from a vendor file, never from pixels
        with pytest.raises(HarnessError, match="hash-harness score"):
            algo.hash(synthetic_image(80, 60))
        assert make_algorithm(algo.spec) == algo
        return
    check_algorithm(algo, [synthetic_image(80, 60, seed=s) for s in range(3)])


@pytest.mark.parametrize(
    ("text", "fn"),
    [
        ("average_hash", imagehash.average_hash),
        ("phash", imagehash.phash),
        ("dhash", imagehash.dhash),
        ("whash", imagehash.whash),
        ("phash_simple", imagehash.phash_simple),
        ("dhash_vertical", imagehash.dhash_vertical),
        ("colorhash", imagehash.colorhash),
        ("whash(mode='db4')", lambda im: imagehash.whash(im, mode="db4", image_scale=128)),
    ],
)
def test_imagehash_adapters_reproduce_imagehash(text, fn, gradient):
    expected = np.packbits(np.asarray(fn(gradient).hash).reshape(-1))
    assert np.array_equal(make_algorithm(text).hash(gradient), expected)


def test_opencv_adapters_reproduce_opencv_on_bgr(gradient):
    cv2 = pytest.importorskip("cv2")
    bgr = np.ascontiguousarray(np.asarray(gradient)[..., ::-1])
    for text, hasher, n in [
        ("cv_phash", cv2.img_hash.PHash_create(), 64),
        ("cv_block_mean_hash(mode=1)", cv2.img_hash.BlockMeanHash_create(1), 961),
        ("cv_marr_hildreth_hash", cv2.img_hash.MarrHildrethHash_create(), 576),
    ]:
        raw = hasher.compute(bgr).reshape(-1)
        expected = np.packbits(np.unpackbits(raw, bitorder="little")[:n])
        assert np.array_equal(make_algorithm(text).hash(gradient), expected), text
        # Hamming on our rows equals OpenCV's own compare() (bit order does not matter).
        other = synthetic_image(64, 48, seed=9)
        raw_other = hasher.compute(np.ascontiguousarray(np.asarray(other)[..., ::-1]))
        ours = hamming(
            make_algorithm(text).hash(gradient)[None], make_algorithm(text).hash(other)[None]
        )
        assert ours[0] == hasher.compare(raw.reshape(1, -1), raw_other)


def test_score_hashes_reproduce_their_libraries():
    cv2 = pytest.importorskip("cv2")
    images = [synthetic_image(120, 90, seed=s) for s in range(4)]
    bgr = [np.ascontiguousarray(np.asarray(im)[..., ::-1]) for im in images]
    rv, cm = cv2.img_hash.RadialVarianceHash_create(), cv2.img_hash.ColorMomentHash_create()
    for text, hasher, level in [
        ("cv_radial_variance_hash", rv, lambda score: round((1 - score) * 100)),
        ("cv_color_moment_hash", cm, lambda score: min(round(score), 1000)),
    ]:
        algo = make_algorithm(text)
        rows = np.stack([algo.hash(im) for im in images])
        got = algo.metric()(rows, rows)
        raw = [hasher.compute(b) for b in bgr]
        want = [[level(hasher.compare(a, b)) for b in raw] for a in raw]
        assert got.tolist() == want, text


def test_crop_resistant_hash_counts_matching_segments_as_imagehash_does():
    from datasets_benign import open_dataset

    images = [r.load().resize((256, 192)) for r in open_dataset("skimage").records[:5]]
    crops = [im.crop((0, 0, 180, 140)) for im in images]
    algo = make_algorithm("crop_resistant_hash")
    got = algo.metric()(
        np.stack([algo.hash(c) for c in crops]), np.stack([algo.hash(im) for im in images])
    )
    for i, c in enumerate(crops):
        query = imagehash.crop_resistant_hash(c)
        if len(query.segment_hashes) > 32:
            continue  # beyond the 32 segments kept per image
        for j, im in enumerate(images):
            matches, _ = query.hash_diff(imagehash.crop_resistant_hash(im))
            n = len(query.segment_hashes)
            assert got[i, j] == round(100 * (n - matches) / n), (i, j)
    assert np.all(got[~np.eye(len(images), dtype=bool)] == 100)  # nothing of other images
    assert (np.diag(got) < 100).sum() >= 3  # most crops find part of their source


def test_pdq_dihedral_versus_hashing_rotated_pixels():
    """The dihedral trick is exact on 64 x 64 inputs and approximate on photos; either way it
    catches quarter turns and flips that plain PDQ misses (measured on the embedded corpus)."""
    from PIL import ImageOps

    from datasets_benign import open_dataset

    ops = [
        lambda im: im.transpose(Image.Transpose.ROTATE_90),
        lambda im: im.transpose(Image.Transpose.ROTATE_180),
        lambda im: im.transpose(Image.Transpose.ROTATE_270),
        ImageOps.flip,
        ImageOps.mirror,
        lambda im: im.transpose(Image.Transpose.TRANSPOSE),
        lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    ]
    dih, plain = (
        make_algorithm("pdq_dihedral(quality_gate=0)"),
        make_algorithm("pdq(quality_gate=0)"),
    )
    small = synthetic_image(64, 64, seed=3)
    ref = dih.hash(small)[None]
    assert [int(dih.metric()(dih.hash(op(small))[None], ref)[0, 0]) for op in ops] == [0] * 7
    photos = [r.load() for r in open_dataset("skimage").records[:8]]
    dihedral_d, plain_d = [], []
    for im in photos:
        ref, ref_plain = dih.hash(im)[None], plain.hash(im)[None]
        for op in ops:
            dihedral_d.append(int(dih.metric()(dih.hash(op(im))[None], ref)[0, 0]))
            plain_d.append(int(hamming(plain.hash(op(im))[None], ref_plain)[0]))
    caught = np.mean(np.array(dihedral_d) <= 31)
    assert caught >= 0.75, dihedral_d
    assert np.mean(np.array(plain_d) <= 31) < 0.2


def test_blockhash_matches_the_c_reference_exactly():
    """phash-blockhashio against commonsmachinery/blockhash's own expected hashes, both methods."""
    pytest.importorskip("blockhash.core")

    def as_reference_reads_it(path):
        # The C reference counts a fully transparent pixel as white and otherwise ignores alpha;
        # the harness's own decoder composites alpha on white, which differs on soft edges.
        with Image.open(path) as im:
            rgba = np.asarray(im.convert("RGBA")).copy()
        rgba[rgba[..., 3] == 0, :3] = 255
        return Image.fromarray(rgba[..., :3], "RGB")

    folder = reference_dir("blockhash")
    for method, listing in (("precise", "exact-hashes.txt"), ("quick", "quick-hashes.txt")):
        algo = make_algorithm(f"blockhash(method={method!r})")
        lines = [ln.split() for ln in (folder / listing).read_text().splitlines() if ln.strip()]
        assert len(lines) >= 17
        for expected, name in ((parts[0], parts[-1]) for parts in lines):
            got = algo.hash(as_reference_reads_it(folder / Path(name).name)).tobytes().hex()
            assert got == expected, (method, name)


def test_pdq_quality_gate_excludes_flat_images():
    from harness.core.errors import HashExcluded

    flat = Image.new("RGB", (64, 64), (120, 120, 120))
    with pytest.raises(HashExcluded, match="PDQ quality 0 is below the gate 50"):
        make_algorithm("pdq").hash(flat)
    assert make_algorithm("pdq(quality_gate=0)").hash(flat).shape == (32,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("phash(hash_size=1)", "'hash_size' parameter of phash must be an int in [2, 64]"),
        ("whash(hash_size=12)", "must be a power of two"),
        ("whash(mode='sym2')", "'mode' parameter of whash must be one of {'db4', 'haar'}"),
        ("blockhash(bits=10)", "must be a multiple of 4"),
        ("cv_block_mean_hash(mode=2)", "'mode' parameter of cv_block_mean_hash must be one of"),
        ("pdq(quality_gate=101)", "'quality_gate' parameter of pdq must be an int in [0, 100]"),
        ("pdq(size=3)", "pdq has no parameter 'size'"),
    ],
)
def test_invalid_algorithm_parameters(text, message):
    with pytest.raises(InvalidParameterError) as info:
        make_algorithm(text)
    assert message in str(info.value)


def test_unknown_algorithm_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'phash'"):
        make_algorithm("phahs")
    assert make_algorithm("ahash") == make_algorithm("average_hash")


# -- PDQ reference vectors ------------------------------------------------------------------------


def _hex_bits(hex_string: str) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(hex_string), dtype=np.uint8))


def _expected_rows(*parts: str) -> list[tuple[Path, str]]:
    """(image path, expected PDQ hex) pairs from a reference folder's expected.csv."""
    folder = reference_dir(*parts)
    with (folder / "expected.csv").open() as fh:
        rows = [(folder / row["file"], row["pdq_hex"]) for row in csv.DictReader(fh)]
    assert rows
    return rows


def _pdq_bits_of_file(path: Path) -> np.ndarray:
    with Image.open(path) as im:  # no quality gate: the vectors include a quality-36 image
        return np.unpackbits(make_algorithm("pdq(quality_gate=0)").hash(im.convert("RGB")))


def test_pdq_matches_threatexchange_vectors_exactly():
    """pdqhash on the image converted to an RGB array, as the reference values were produced."""
    for path, expected in _expected_rows("pdq", "pytx"):
        assert np.array_equal(_pdq_bits_of_file(path), _hex_bits(expected)), path.name


@pytest.mark.parametrize("sub", ["cpp-dih", "bridge-mods"])
def test_pdq_within_ten_bits_of_the_cpp_reference(sub):
    """Meta's rule for ports: within 10 bits of the C++ reference (measured here: 2-8 bits)."""
    for path, expected in _expected_rows("pdq", sub):
        distance = int(np.count_nonzero(_pdq_bits_of_file(path) != _hex_bits(expected)))
        assert distance <= 10, (path.name, distance)


def test_same_hash_from_an_image_and_from_its_file_and_in_parallel(tmp_path):
    """Conformance across the whole registry: in-memory image == PNG file read by the harness's
    decoder, and 2 worker processes == 1 (spawned workers import the adapters afresh)."""
    from datasets_benign.base import folder_dataset
    from datasets_benign.decode import load_rgb
    from harness.runner import hash_corpus
    from transforms import parse_chain

    algos = tuple(a for a in ALL if a.standalone)
    images = [synthetic_image(70 + 9 * s, 50, seed=s) for s in range(3)]
    for s, im in enumerate(images):
        im.save(tmp_path / f"img{s}.png")
    for algo in algos:
        for s, im in enumerate(images):
            from_file = load_rgb(tmp_path / f"img{s}.png")
            assert np.array_equal(algo.hash(im), algo.hash(from_file)), algo.id
    data = folder_dataset(tmp_path)
    chains = (
        parse_chain("jpeg@S3".replace("@S3", "(quality=50)")),
        parse_chain("crop(keep_area=0.8)"),
    )
    one = hash_corpus(data, chains, algos, seed=0, workers=1)
    two = hash_corpus(data, chains, algos, seed=0, workers=2)
    for a in range(len(algos)):
        assert np.array_equal(one.packed[a], two.packed[a]), algos[a].id
        assert np.array_equal(one.ok[a], two.ok[a]), algos[a].id


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_every_adapter_parameter_is_declared(name):
    cls = ALGORITHMS.get(name)
    assert cls.name == name
    if issubclass(cls, Measured):
        pytest.skip(f"{name} checks its measure's parameters together: their ranges depend on it")
    # A policy's parts (pdq_dihedral is the dihedral policy over pdq) are algorithms, not options.
    parts = ("parts",) if issubclass(cls, Policy) else ()
    undeclared = [f.name for f in dataclasses.fields(cls) if declared(f) is None]
    undeclared = [f for f in undeclared if f not in parts]
    assert undeclared == [], f"{name}: declare {undeclared} with param()"
