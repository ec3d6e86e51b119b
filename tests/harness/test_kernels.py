import subprocess
import sys

import imagehash
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness import kernels, results

BACKENDS = ["numba", "numpy", "auto"]
#: Sizes used by real algorithms: 42 (BlockMean-like odd), 64, 256 (PDQ), 576, 968 (OpenCV).
REAL_SIZES = [42, 64, 144, 256, 576, 968]


@st.composite
def bit_rows(draw, max_rows=12, max_bits=300):
    n_bits = draw(st.integers(1, max_bits))
    n = draw(st.integers(1, max_rows))
    # Rows drawn from a few prototypes with sparse flips, so ties and near pairs are common.
    protos = draw(arrays(np.bool_, (draw(st.integers(1, 3)), n_bits)))
    which = draw(arrays(np.int64, n, elements=st.integers(0, len(protos) - 1)))
    flips = draw(arrays(np.bool_, (n, n_bits), elements=st.booleans() | st.just(False)))
    return n_bits, protos[which] ^ flips


def _groups(draw, n):
    return np.array(draw.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))


@given(bit_rows())
def test_packed_equals_unpacked_reference(data):
    n_bits, bits = data
    packed = np.packbits(bits, axis=1)
    assert packed.shape[1] == (n_bits + 7) // 8
    full = kernels.pairwise(packed, packed)
    ref = np.array([[kernels.hamming_unpacked(a, b) for b in bits] for a in bits])
    assert np.array_equal(full, ref)
    assert np.array_equal(full, full.T)  # symmetry
    assert np.all(np.diag(full) == 0)  # d(x, x) = 0
    assert np.array_equal(
        kernels.hamming(packed, np.packbits(~bits, axis=1)), np.full(len(bits), n_bits)
    )


@pytest.mark.parametrize("backend", BACKENDS)
@given(bit_rows(max_rows=40), st.integers(1, 9))
def test_all_pairs_histogram_equals_brute_force(backend, data, block):
    n_bits, bits = data
    packed = np.packbits(bits, axis=1)
    full = kernels.pairwise(packed, packed)
    iu = np.triu_indices(len(bits), k=1)
    expected = np.bincount(full[iu], minlength=n_bits + 1)
    got = kernels.all_pairs_histogram(packed, n_bits, block=block, backend=backend)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@given(bit_rows(max_rows=20), st.integers(1, 7), st.data())
def test_grouped_histograms_skip_same_group_pairs(backend, data, block, draw):
    n_bits, bits = data
    packed = np.packbits(bits, axis=1)
    groups = _groups(draw, len(bits))
    full = kernels.pairwise(packed, packed)
    i, j = np.triu_indices(len(bits), k=1)
    keep = groups[i] != groups[j]
    expected = np.bincount(full[i[keep], j[keep]], minlength=n_bits + 1)
    got = kernels.all_pairs_histogram(packed, n_bits, groups, block, backend=backend)
    assert np.array_equal(got, expected)
    cross_keep = groups[:, None] != groups[None, :]
    expected_cross = np.bincount(full[cross_keep], minlength=n_bits + 1)
    got = kernels.cross_histogram(packed, packed, n_bits, groups, groups, block, backend=backend)
    assert np.array_equal(got, expected_cross)
    per_query = kernels.cross_histogram(
        packed, packed, n_bits, groups, groups, block, per_query=True, backend=backend
    )
    for row in range(len(bits)):
        assert np.array_equal(
            per_query[row], np.bincount(full[row][cross_keep[row]], minlength=n_bits + 1)
        )


@pytest.mark.parametrize("backend", BACKENDS)
@given(bit_rows(max_rows=20), st.data())
def test_nearest_impostor_is_the_closest_other_group(backend, data, draw):
    _, bits = data
    packed = np.packbits(bits, axis=1)
    groups = _groups(draw, len(bits))
    full = kernels.pairwise(packed, packed)
    dist, index = kernels.nearest_impostor(packed, packed, groups, groups, backend=backend)
    for q in range(len(bits)):
        others = np.flatnonzero(groups != groups[q])
        if len(others) == 0:
            assert (dist[q], index[q]) == (-1, -1)
            continue
        best = full[q, others].min()
        assert dist[q] == best
        assert index[q] == others[full[q, others] == best][0]  # ties: lowest index


@pytest.mark.parametrize("backend", BACKENDS)
@given(bit_rows(max_rows=30), st.integers(0, 300), st.integers(1, 50), st.data())
def test_pairs_within_lists_the_closest_pairs(backend, data, threshold, limit, draw):
    _, bits = data
    packed = np.packbits(bits, axis=1)
    full = kernels.pairwise(packed, packed)
    groups = _groups(draw, len(bits)) if draw.draw(st.booleans()) else None
    i, j = np.triu_indices(len(bits), k=1)
    expected = sorted(
        (int(full[a, b]), int(a), int(b))
        for a, b in zip(i, j, strict=True)
        if full[a, b] <= threshold and (groups is None or groups[a] != groups[b])
    )
    got = kernels.pairs_within(packed, threshold, limit, 4, groups, backend=backend)
    assert got == [(a, b, d) for d, a, b in expected[:limit]]
    cross = kernels.cross_pairs_within(packed, packed[::-1], threshold, limit, backend=backend)
    rev = full[:, ::-1]
    expected_cross = sorted(
        (int(rev[a, b]), a, b)
        for a in range(len(bits))
        for b in range(len(bits))
        if rev[a, b] <= threshold
    )
    assert cross == [(a, b, d) for d, a, b in expected_cross[:limit]]


@settings(max_examples=25, deadline=None)
@given(
    st.integers(2, 2600),
    st.integers(33, 64),
    st.integers(0, 2**32 - 1),
    st.sampled_from([None, 3, 500]),
)
def test_unrolled_one_word_kernel_equals_numpy(n, n_bits, seed, n_groups):
    """The 64-bit kernel's unrolled loop (four lanes, a tail, 2048-row tiles, 64-row blocks)
    counts exactly the pairs numpy counts, with and without groups."""
    rng = np.random.default_rng(seed)
    packed = np.packbits(rng.random((n, n_bits)) < rng.random(n_bits), axis=1)
    groups = None if n_groups is None else rng.integers(0, n_groups, n)
    got = kernels.all_pairs_histogram(packed, n_bits, groups, backend="numba")
    want = kernels.all_pairs_histogram(packed, n_bits, groups, block=512, backend="numpy")
    assert np.array_equal(got, want)
    queries = packed[: 1 + n // 3]
    query_groups = None if groups is None else groups[: len(queries)]
    got = kernels.cross_histogram(queries, packed, n_bits, query_groups, groups, backend="numba")
    want = kernels.cross_histogram(
        queries, packed, n_bits, query_groups, groups, block=512, backend="numpy"
    )
    assert np.array_equal(got, want)


@pytest.mark.parametrize("n_bits", REAL_SIZES)
def test_backends_agree_on_real_hash_sizes(n_bits):
    rng = np.random.default_rng(n_bits)
    bits = rng.random((300, n_bits)) < rng.random(n_bits)  # unbalanced bits, many near pairs
    packed = np.packbits(bits, axis=1)
    groups = rng.integers(0, 50, len(bits))
    numba = kernels.all_pairs_histogram(packed, n_bits, groups)
    assert np.array_equal(
        numba, kernels.all_pairs_histogram(packed, n_bits, groups, backend="numpy")
    )
    iu = np.triu_indices(len(bits), k=1)
    d = kernels.hamming_unpacked(bits[iu[0]], bits[iu[1]])
    keep = groups[iu[0]] != groups[iu[1]]
    assert np.array_equal(numba, np.bincount(d[keep], minlength=n_bits + 1))
    # More rows than one tile of the compiled kernel, against the reference.
    big = np.packbits(rng.random((2500, n_bits)) < 0.5, axis=1)
    assert np.array_equal(
        kernels.cross_histogram(big, packed, n_bits),
        kernels.cross_histogram(big, packed, n_bits, backend="numpy"),
    )


def test_matches_imagehash_subtraction():
    from tests.conftest import synthetic_image

    images = [synthetic_image(64, 48, seed=s) for s in range(6)]
    for fn in (imagehash.phash, imagehash.dhash, imagehash.average_hash):
        hashes = [fn(im) for im in images]
        packed = np.stack([np.packbits(h.hash.reshape(-1)) for h in hashes])
        full = kernels.pairwise(packed, packed)
        hist = kernels.all_pairs_histogram(packed, 64)
        expected = np.zeros(65, dtype=np.int64)
        for a in range(len(images)):
            for b in range(len(images)):
                assert full[a, b] == hashes[a] - hashes[b]
                if a < b:
                    expected[hashes[a] - hashes[b]] += 1
        assert np.array_equal(hist, expected)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D uint8"):
        kernels.hamming(np.zeros((2, 8), dtype=bool), np.zeros((2, 8), dtype=bool))
    with pytest.raises(ValueError, match="backend"):
        kernels.all_pairs_histogram(np.zeros((2, 8), np.uint8), 64, backend="cuda")
    with pytest.raises(ValueError, match="one label per row"):
        kernels.all_pairs_histogram(np.zeros((2, 8), np.uint8), 64, groups=[1])
    with pytest.raises(ValueError, match="both"):
        kernels.cross_histogram(np.zeros((2, 8), np.uint8), np.zeros((2, 8), np.uint8), 64, [1, 2])


def test_auto_backend_leaves_small_inputs_to_numpy_and_large_ones_to_numba():
    """A small corpus never imports numba (its start-up costs more than the work)."""
    code = (
        "import sys, numpy as np\n"
        "from harness import kernels\n"
        "x = np.random.default_rng(0).integers(0, 256, (200, 8), dtype=np.uint8)\n"
        "kernels.all_pairs_histogram(x, 64)\n"
        "kernels.cross_histogram(x, x, 64, per_query=True)\n"
        "kernels.nearest_impostor(x, x, np.arange(200), np.arange(200))\n"
        "print('numba' in sys.modules)\n"
        "wide = np.zeros((kernels.SMALL_PAIRS // 8, 32), dtype=np.uint8)\n"
        "kernels.cross_histogram(wide[:2], wide[:-1], 256)\n"  # 256-bit pairs count 4 words
        "print('numba' in sys.modules)\n"
        "kernels.cross_histogram(wide[:3], wide, 256)\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False", "True"]


def test_hamming_histograms_refuse_too_few_bins():
    """Levels of a non-Hamming hash without its metric would count outside the histogram."""
    x = np.zeros((3, 32), np.uint8)
    with pytest.raises(ValueError, match="pass the algorithm's metric"):
        kernels.all_pairs_histogram(x, 100, backend="numba")
    with pytest.raises(ValueError, match="pass the algorithm's metric"):
        kernels.cross_histogram(x, x, 100)
    kernels.all_pairs_histogram(np.zeros((3, 6), np.uint8), 42)  # 42 bits in 6 bytes is fine


def test_collisions_by_category_use_the_algorithms_distance():
    """Per-category collision counts of a non-Hamming hash are computed with its metric."""
    from datasets_benign import open_dataset
    from harness.pipeline import run_suite
    from harness.suite import parse_suite

    suite = parse_suite(
        {"algorithms": ["pdq_dihedral"], "transforms": ["identity"], "bootstrap_resamples": 0}
    )
    result = results.to_builtins(run_suite(suite, dataset="skimage[8]"))
    data = open_dataset("skimage[8]")
    coll = next(c for c in result["collisions"] if c["protocol"] == "originals_all_pairs")
    assert sum(s["n_pairs"] > 0 for s in coll["by_category"].values()) >= 2
    algo = suite.algorithms[0]
    hashes = {r.id: algo.hash(r.load()) for r in data.records}
    for category, stratum in coll["by_category"].items():
        members = np.stack([hashes[r.id] for r in data.records if r.category == category])
        expected = kernels.all_pairs_histogram(members, algo.n_levels, metric=algo.metric())
        assert stratum["n_pairs"] == int(expected.sum())
        for m in stratum["metrics"]:
            t = m["params"]["threshold"]
            assert m["value"] == pytest.approx(expected[: t + 1].sum() / expected.sum())


@pytest.mark.parametrize("n_bits", [64, 256])
def test_threaded_and_single_thread_kernels_agree(monkeypatch, n_bits):
    """Small inputs run the compiled kernels' serial copies, large ones the threaded
    originals: forced either way, every kernel gives the numpy reference's answer."""
    rng = np.random.default_rng(n_bits)
    packed = np.packbits(rng.random((203, n_bits)) < rng.random(n_bits), axis=1)
    groups = rng.integers(0, 40, len(packed))
    queries, query_groups = packed[:77], groups[:77]

    def everything(backend):
        return (
            kernels.all_pairs_histogram(packed, n_bits, groups, backend=backend),
            kernels.cross_histogram(queries, packed, n_bits, query_groups, groups, backend=backend),
            kernels.cross_histogram(
                queries, packed, n_bits, query_groups, groups, per_query=True, backend=backend
            ),
            kernels.nearest_impostor(queries, packed, query_groups, groups, backend=backend),
            kernels.pairs_within(packed, n_bits // 3, 50, groups=groups, backend=backend),
        )

    want = everything("numpy")
    for parallel_pairs in (0, 1 << 40):  # every call threaded; every call on one thread
        monkeypatch.setattr(kernels, "PARALLEL_PAIRS", parallel_pairs)
        got = everything("numba")
        for g, w in zip(got, want, strict=True):
            assert np.array_equal(np.asarray(g), np.asarray(w))
