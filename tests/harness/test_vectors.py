"""Float-vector and weighted-Hamming distances: binned levels against scipy, and a whole run."""

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from harness import results
from harness.algorithms import make_algorithm
from harness.algorithms.external import External, ExternalHasherError
from harness.algorithms.vectors import VectorMetric, vector_row
from harness.cli import main
from harness.core.errors import InvalidParameterError
from harness.kernels import all_pairs_histogram, cross_histogram
from harness.testing import check_algorithm
from tests.conftest import synthetic_image

CLIENT = str(Path(__file__).resolve().parents[1] / "vendor" / "jsonl_hasher.py")


def rows(vectors):
    return np.stack([vector_row(v) for v in vectors])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 7),
    m=st.integers(1, 7),
    dims=st.integers(1, 40),
)
def test_vector_levels_are_scipy_distances_binned(seed, n, m, dims):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, dims)).astype(np.float32)
    b = rng.normal(size=(m, dims)).astype(np.float32)
    for kind, scipy_name, top in [
        ("cosine", "cosine", 2.0),
        ("l2", "euclidean", 12.0),
        ("l1", "cityblock", 40.0),
    ]:
        metric = VectorMetric(kind, 500, top)
        want = np.clip(np.rint(cdist(a, b, scipy_name) / top * 500), 0, 500)
        got = metric(rows(a), rows(b))
        assert got.dtype == np.int64
        # float32 storage and summation order: a level may differ by one at a bin's edge
        assert np.abs(got - want).max() <= 1, kind
        assert (metric(rows(a), rows(a)).diagonal() == 0).all()


def test_weighted_hamming_is_the_weighted_share_of_differing_bits():
    rng = np.random.default_rng(1)
    weights = tuple(rng.uniform(0, 3, 24).round(3).tolist())
    bits_a, bits_b = rng.integers(0, 2, (5, 24)), rng.integers(0, 2, (6, 24))
    metric = VectorMetric("weighted_hamming", 1000, 1.0, weights)
    got = metric(np.packbits(bits_a, axis=1), np.packbits(bits_b, axis=1))
    w = np.array(weights)
    want = np.rint((bits_a[:, None, :] != bits_b[None, :, :]) @ w / w.sum() * 1000)
    assert np.array_equal(got, want)


def test_vector_metrics_run_in_the_kernels_blocks():
    rng = np.random.default_rng(2)
    x = rows(rng.normal(size=(150, 16)))
    metric = VectorMetric("cosine", 200, 2.0)
    full = metric(x, x)
    hist = all_pairs_histogram(x, 200, metric=metric, block=32)
    assert hist.sum() == 150 * 149 // 2
    assert np.array_equal(hist, np.bincount(full[np.triu_indices(150, 1)], minlength=201))
    cross = cross_histogram(x[:40], x, 200, metric=metric, block=7)
    assert np.array_equal(cross, np.bincount(full[:40].ravel(), minlength=201))


def test_zero_vectors_are_identical_to_each_other_and_orthogonal_to_the_rest():
    metric = VectorMetric("cosine", 100, 2.0)
    got = metric(rows([[0, 0], [1, 0]]), rows([[0, 0], [2, 0], [0, 1]]))
    assert got.tolist() == [[0, 50, 50], [50, 0, 50]]


def vector_vendor(**params):
    return External(
        label="acme",
        command=(sys.executable, CLIENT, "grey_vector"),
        measure="cosine",
        dims=64,
        **params,
    )


def test_vector_hasher_conforms_and_records_its_binning():
    algo = vector_vendor(levels=400)
    assert algo.id == "acme"
    assert algo.spec == "external(dims=64,label='acme',levels=400,measure='cosine')"
    assert (algo.n_bytes, algo.n_levels) == (256, 400)
    assert algo.distance == (
        "cosine distance (1 - cos) in [0, 2], binned to 400 levels of 0.005: "
        "level = round(d / 0.005)"
    )
    check_algorithm(algo, [synthetic_image(70, 50, seed=s) for s in range(3)])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"measure": "cosine"}, "dims"),
        ({"measure": "manhattan"}, "measure"),
        ({"measure": "l2", "dims": 8}, "max_distance"),
        ({"measure": "cosine", "dims": 8, "max_distance": 3.0}, "max_distance is for l1"),
        ({"dims": 8}, "dims is for vector"),
        ({"measure": "weighted_hamming", "bits": 4, "weights": [1, 2]}, "4 non-negative"),
        ({"measure": "weighted_hamming", "bits": 2, "weights": [0, 0]}, "positive sum"),
        ({"weights": [1.0]}, "weights are for"),
    ],
)
def test_invalid_vector_specs_are_refused(params, message):
    with pytest.raises(InvalidParameterError, match=message):
        External(label="acme", command=("x",), **params)


def test_a_short_vector_is_that_images_failure():
    algo = vector_vendor()
    object.__setattr__(algo, "dims", 65)  # the hasher answers 64 numbers
    with pytest.raises(ExternalHasherError, match="64 numbers, declared dims=65"):
        algo.hash(synthetic_image(40, 30))


@pytest.mark.slow
def test_cosine_vector_hasher_end_to_end_through_the_cli(tmp_path):
    served = (
        f"external(label='thumbs', command={[sys.executable, CLIENT, 'grey_vector']!r}, "
        "measure='cosine', dims=64, levels=200)"
    )
    suite = tmp_path / "vectors.toml"
    suite.write_text(
        f'algorithms = ["phash", "{served.replace(chr(34), chr(39))}"]\n'
        'transforms = ["identity", "jpeg(quality=50)", "hflip"]\n'
        "bootstrap_resamples = 0\n"
        "target_fprs = [1e-2]\n"
        "[thresholds]\nexternal = [20]\n"
    )
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    result = results.to_builtins(results.load(out / "results.json"))
    meta = result["algorithms"][1]
    assert meta["id"] == "thumbs"
    assert meta["spec"] == "external(dims=64,label='thumbs',levels=200,measure='cosine')"
    assert meta["distance"].startswith("cosine distance (1 - cos) in [0, 2], binned to 200")
    assert (meta["n_bits"], meta["hash_bits"], meta["thresholds"]) == (200, 64 * 32, [20])
    cells = {c["transform"]: c for c in result["cells"] if c["algorithm"] == meta["id"]}
    tpr = {t: next(m for m in c["metrics"] if m["name"] == "tpr") for t, c in cells.items()}
    assert tpr["identity"]["k"] == tpr["identity"]["n"] == 17
    assert tpr["jpeg(quality=50)"]["k"] == 17  # thumbnails barely move under JPEG
    assert tpr["hflip"]["k"] < 17  # a mirrored thumbnail is another vector
    collisions = [c for c in result["collisions"] if c["algorithm"] == meta["id"]]
    all_pairs = next(c for c in collisions if c["protocol"] == "originals_all_pairs")
    assert all_pairs["n_pairs"] == 17 * 16 // 2 == sum(all_pairs["hist"])
    assert len(all_pairs["hist"]) == 201
    fpr = all_pairs["metrics"][0]
    assert fpr["params"] == {"threshold": 20}
    assert 0 <= fpr["value"] <= fpr["ci95"][1] <= 1
    # the levels are the binned cosine distances of the vendor's own vectors
    algo = make_algorithm(served)
    assert algo.metric().describe() == meta["distance"]
