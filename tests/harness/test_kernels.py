import imagehash
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness import kernels


@st.composite
def bit_rows(draw, max_rows=12):
    n_bits = draw(st.integers(1, 300))
    n = draw(st.integers(1, max_rows))
    bits = draw(arrays(np.bool_, (n, n_bits)))
    return n_bits, bits


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


@given(bit_rows(max_rows=40), st.integers(1, 9))
def test_all_pairs_histogram_equals_brute_force(data, block):
    n_bits, bits = data
    packed = np.packbits(bits, axis=1)
    full = kernels.pairwise(packed, packed)
    iu = np.triu_indices(len(bits), k=1)
    expected = np.bincount(full[iu], minlength=n_bits + 1)
    assert np.array_equal(kernels.all_pairs_histogram(packed, n_bits, block=block), expected)
    assert kernels.all_pairs_histogram(packed, n_bits).sum() == len(bits) * (len(bits) - 1) // 2


@given(bit_rows(max_rows=20), st.integers(1, 7), st.data())
def test_grouped_histograms_skip_same_group_pairs(data, block, draw):
    n_bits, bits = data
    packed = np.packbits(bits, axis=1)
    groups = np.array(
        draw.draw(st.lists(st.integers(0, 3), min_size=len(bits), max_size=len(bits)))
    )
    full = kernels.pairwise(packed, packed)
    i, j = np.triu_indices(len(bits), k=1)
    keep = groups[i] != groups[j]
    expected = np.bincount(full[i[keep], j[keep]], minlength=n_bits + 1)
    assert np.array_equal(kernels.all_pairs_histogram(packed, n_bits, groups, block), expected)
    cross_keep = groups[:, None] != groups[None, :]
    expected_cross = np.bincount(full[cross_keep], minlength=n_bits + 1)
    got = kernels.cross_histogram(packed, packed, n_bits, groups, groups, block=block)
    assert np.array_equal(got, expected_cross)


@given(bit_rows(max_rows=30), st.integers(0, 300), st.integers(1, 50))
def test_pairs_within_lists_the_closest_pairs(data, threshold, limit):
    _, bits = data
    packed = np.packbits(bits, axis=1)
    full = kernels.pairwise(packed, packed)
    i, j = np.triu_indices(len(bits), k=1)
    expected = sorted(
        (int(full[a, b]), int(a), int(b))
        for a, b in zip(i, j, strict=True)
        if full[a, b] <= threshold
    )
    got = kernels.pairs_within(packed, threshold, limit=limit, block=4)
    assert got == [(a, b, d) for d, a, b in expected[:limit]]


def test_matches_imagehash_subtraction(gradient):
    from tests.conftest import synthetic_image

    images = [synthetic_image(64, 48, seed=s) for s in range(6)]
    for fn in (imagehash.phash, imagehash.dhash, imagehash.average_hash):
        hashes = [fn(im) for im in images]
        packed = np.stack([np.packbits(h.hash.reshape(-1)) for h in hashes])
        full = kernels.pairwise(packed, packed)
        for a in range(len(images)):
            for b in range(len(images)):
                assert full[a, b] == hashes[a] - hashes[b]


def test_rejects_unpacked_input():
    import pytest

    with pytest.raises(ValueError, match="2-D uint8"):
        kernels.hamming(np.zeros((2, 8), dtype=bool), np.zeros((2, 8), dtype=bool))
