"""Compiled kernels for policy and vector metrics give the numpy path's answers bit for bit."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import kernels
from harness.algorithms import make_algorithm
from harness.algorithms.policies import Dihedral, Fusion, Wrapper
from harness.algorithms.vectors import VectorMetric

#: Policies of Hamming parts that compile: AND / OR / sum, per-part thresholds, an inexact grid
#: (lcm(256, 25) > 4096: rounded up onto pdq's levels), dihedral alone and inside a fusion.
COMPILED_POLICIES = [
    "pdq & phash",
    "pdq | phash",
    "pdq + phash",
    "pdq<=31 & phash<=10",
    "pdq<=31 | phash<=10",
    "pdq + phash(hash_size=5)",
    "ahash(hash_size=3) | colorhash | dhash",
    "dihedral(phash)",
    "pdq_dihedral",
    "dihedral(phash) | pdq",
    "dihedral(ahash(hash_size=3)) + colorhash",
    "gate(phash,quality=50) & unletterbox(pdq)",
    "unletterbox(dihedral(phash))",
]


def random_row(unit, rng, near=None):
    """A row ``unit`` could hash to (zero padding bits, 0/1 usable flags), or one a few hash
    bits from ``near`` (so that small distances and ties are common)."""
    if near is not None:
        bits = np.flatnonzero(np.unpackbits(_mask(unit)))
        flip = np.zeros(8 * len(near), bool)
        flip[rng.choice(bits, rng.integers(0, 6))] = True
        return near ^ np.packbits(flip)
    if isinstance(unit, Fusion):
        parts = [random_row(p, rng) for p in unit.parts]
        flags = rng.integers(0, 2, len(unit.parts)) if unit.partial else []
        return np.concatenate([*parts, np.asarray(flags, np.uint8)])
    if isinstance(unit, Dihedral):
        return np.concatenate([random_row(unit.part, rng) for _ in range(8)])
    if isinstance(unit, Wrapper):
        return random_row(unit.part, rng)
    return np.packbits(rng.random(unit.n_bits) < 0.5)


def _mask(unit):
    """Bits of a row that hold hash bits (not padding, not flags)."""
    if isinstance(unit, Fusion):
        parts = [_mask(p) for p in unit.parts]
        return np.concatenate([*parts, np.zeros(len(unit.parts) if unit.partial else 0, np.uint8)])
    if isinstance(unit, Dihedral):
        return np.concatenate([_mask(unit.part)] * 8)
    if isinstance(unit, Wrapper):
        return _mask(unit.part)
    return np.packbits(np.ones(unit.n_bits, bool))


def policy_rows(unit, seed, n):
    rng = np.random.default_rng(seed)
    rows = [random_row(unit, rng)]
    for _ in range(n - 1):
        rows.append(
            random_row(unit, rng, rows[rng.integers(0, len(rows))])
            if rng.random() < 0.6
            else random_row(unit, rng)
        )
    return np.stack(rows)


def every_answer(x, n_levels, metric, groups, backend, queries=slice(0, 9)):
    q, qg = x[queries], None if groups is None else groups[queries]
    cross = (q, x, n_levels, qg, groups)
    return (
        kernels.all_pairs_histogram(x, n_levels, groups, backend=backend, metric=metric),
        kernels.cross_histogram(*cross, backend=backend, metric=metric),
        kernels.cross_histogram(*cross, per_query=True, backend=backend, metric=metric),
        kernels.nearest_impostor(q, x, qg, groups, backend=backend, metric=metric),
        kernels.pairs_within(x, n_levels // 4, 7, groups=groups, backend=backend, metric=metric),
        kernels.cross_pairs_within(
            q, x, n_levels // 3, 5, qg, groups, backend=backend, metric=metric
        ),
    )


def compiled_levels(q, r, metric, n_levels):
    """Every pair's level from the compiled kernels (one reference per call)."""
    out = np.empty((len(q), len(r)), np.int64)
    for j in range(len(r)):
        one = kernels.cross_histogram(
            q, r[j : j + 1], n_levels, per_query=True, backend="numba", metric=metric
        )
        out[:, j] = one.argmax(axis=1)
    return out


def assert_same(got, want):
    for g, w in zip(got, want, strict=True):
        if isinstance(g, tuple):
            assert all(np.array_equal(a, b) for a, b in zip(g, w, strict=True))
        else:
            assert np.array_equal(np.asarray(g), np.asarray(w))


@pytest.mark.parametrize("text", COMPILED_POLICIES)
def test_policies_of_hamming_parts_have_a_compiled_plan(text):
    assert kernels.plan_of(make_algorithm(text).metric()) is not None


def test_other_metrics_stay_in_numpy_blocks():
    """A nested fusion has no compiled plan: the kernels fall back to numpy, same answers."""
    unit = make_algorithm("(pdq & phash) | dhash")
    assert kernels.plan_of(unit.metric()) is None
    x = policy_rows(unit, 0, 20)
    got = kernels.all_pairs_histogram(x, unit.n_levels, backend="numba", metric=unit.metric())
    want = kernels.all_pairs_histogram(x, unit.n_levels, backend="numpy", metric=unit.metric())
    assert np.array_equal(got, want)


@settings(max_examples=30, deadline=None)
@given(
    text=st.sampled_from(COMPILED_POLICIES),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 30),
    grouped=st.booleans(),
)
def test_compiled_policy_kernels_equal_numpy(text, seed, n, grouped):
    unit = make_algorithm(text)
    metric, n_levels = unit.metric(), unit.n_levels
    x = policy_rows(unit, seed, n)
    groups = np.random.default_rng(seed).integers(0, 4, n) if grouped else None
    want = every_answer(x, n_levels, metric, groups, "numpy")
    assert_same(every_answer(x, n_levels, metric, groups, "numba"), want)
    assert np.array_equal(compiled_levels(x[:6], x, metric, n_levels), metric(x[:6], x))


@pytest.mark.parametrize("text", ["dihedral(phash)", "pdq_dihedral", "dihedral(phash) | pdq"])
def test_asymmetric_all_pairs_count_each_unordered_pair_once(text):
    """Pair (i, j), i < j, counts once with row i as the query: the upper triangle of the
    full (asymmetric) matrix, in both backends."""
    unit = make_algorithm(text)
    x = policy_rows(unit, 7, 40)
    full = unit.metric()(x, x)
    assert not np.array_equal(full, full.T)  # the test would not see a wrong direction
    want = np.bincount(full[np.triu_indices(len(x), 1)], minlength=unit.n_levels + 1)
    for backend in ("numba", "numpy"):
        got = kernels.all_pairs_histogram(x, unit.n_levels, backend=backend, metric=unit.metric())
        assert np.array_equal(got, want)


@pytest.mark.parametrize("text", ["dihedral(phash)", "pdq_dihedral"])
def test_asymmetric_row_histograms_hold_each_pair_at_its_all_pairs_distance(text):
    """Per image, its pairs with the members, each pair i < j at d(i, j) in both rows."""
    unit = make_algorithm(text)
    n, metric = 30, unit.metric()
    x = policy_rows(unit, 3, n)
    rng = np.random.default_rng(3)
    members, groups = rng.random(n) < 0.5, rng.integers(0, 8, n)
    full = metric(x, x)
    want = np.zeros((n, unit.n_levels + 1), np.int64)
    for i, j in zip(*np.triu_indices(n, 1), strict=True):
        if groups[i] != groups[j]:
            want[i, full[i, j]] += members[j]
            want[j, full[i, j]] += members[i]
    got = kernels.all_pairs_row_histograms(x, unit.n_levels, members, groups, 7, metric=metric)
    assert np.array_equal(got, want)
    everyone = kernels.all_pairs_row_histograms(
        x, unit.n_levels, np.ones(n, bool), groups, 7, metric=metric
    )
    hist = kernels.all_pairs_histogram(x, unit.n_levels, groups, metric=metric)
    assert np.array_equal(everyone.sum(axis=0), 2 * hist)


@st.composite
def vectors(draw):
    """Float32 vectors on a grid of eighths (so distances land exactly on bin edges), with
    repeats and zero vectors; or arbitrary finite float32 values."""
    n, dims = draw(st.integers(2, 14)), draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        v = rng.integers(-16, 17, (n, dims)) / 8.0
    else:
        v = rng.normal(size=(n, dims)) * 10.0 ** rng.integers(-3, 4, (n, 1))
    v[rng.random(n) < 0.15] = 0.0
    repeat = rng.random(n) < 0.2
    v[repeat] = v[0]
    return v.astype("<f4")


def as_rows(v):
    return np.ascontiguousarray(v).view(np.uint8).reshape(len(v), -1)


@settings(max_examples=40, deadline=None)
@given(
    v=vectors(),
    kind=st.sampled_from(["cosine", "l1", "l2"]),
    levels=st.sampled_from([1, 2, 7, 16, 100, 1000]),
    top=st.sampled_from([0.5, 1.0, 2.0, 3.0, 8.0]),
    grouped=st.booleans(),
)
def test_compiled_vector_levels_equal_numpy(v, kind, levels, top, grouped):
    metric = VectorMetric(kind, levels, top)
    x = as_rows(v)
    groups = np.arange(len(x)) % 3 if grouped else None
    full = metric(x, x)
    assert np.array_equal(compiled_levels(x, x, metric, levels), full)
    # row by row (positives, escapes): all rows at once, each pair's sum in the same order
    assert np.array_equal(kernels.hamming(x, x[::-1], metric), np.diagonal(full[:, ::-1]))
    want = every_answer(x, levels, metric, groups, "numpy")
    assert_same(every_answer(x, levels, metric, groups, "numba"), want)


def test_levels_at_a_bins_edge_round_half_to_even_in_both_backends():
    """L1 distances of 0.5, 1.5, 2.5 with one level per unit sit exactly on bin edges."""
    x = as_rows(np.array([[0.0], [0.5], [1.5], [2.5], [3.0]], "<f4"))
    metric = VectorMetric("l1", 4, 4.0)
    want = [[0, 0, 2, 2, 3], [0, 0, 1, 2, 2], [2, 1, 0, 1, 2], [2, 2, 1, 0, 0], [3, 2, 2, 0, 0]]
    assert metric(x, x).tolist() == want
    assert compiled_levels(x, x, metric, 4).tolist() == want


def test_each_pairs_sum_has_one_order_in_both_backends():
    """Dimensions m, m + 4, ... summed in order into lane m, then (lane0 + lane1) + (lane2 +
    lane3): with t = 2^-54, (0.5 + 0) + (t + t) = 0.5 + 2^-53 (level 1) but (0.5 + t) + (0 + t)
    = 0.5 (a tie rounded to even: level 0), where an in-order sum gives 0.5 for both and a
    pairwise or BLAS sum may give either."""
    t = 2.0**-54
    rows = as_rows(np.array([[0.5, 0, t, t], [0.5, t, 0, t], [0, 0, 0, 0]], "<f4"))
    metric = VectorMetric("l1", 1, 1.0)
    assert metric(rows[:2], rows[2:]).ravel().tolist() == [1, 0]
    assert compiled_levels(rows[:2], rows[2:], metric, 1).ravel().tolist() == [1, 0]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_bits=st.integers(1, 80),
    n=st.integers(2, 16),
    levels=st.sampled_from([1, 10, 64, 1000]),
)
def test_compiled_weighted_hamming_equals_numpy(seed, n_bits, n, levels):
    rng = np.random.default_rng(seed)
    weights = tuple((rng.random(n_bits) * 10.0 ** rng.integers(-2, 3)).tolist())
    metric = VectorMetric("weighted_hamming", levels, 1.0, weights)
    bits = rng.random((n, n_bits)) < rng.random(n_bits)
    x = np.packbits(bits, axis=1)
    assert np.array_equal(compiled_levels(x, x, metric, levels), metric(x, x))
    assert np.array_equal(kernels.hamming(x, x[::-1], metric), np.diagonal(metric(x, x[::-1])))
    want = np.clip(
        np.rint((bits[:, None] != bits[None]) @ np.array(weights) / sum(weights) * levels),
        0,
        levels,
    )
    assert np.abs(metric(x, x) - want).max() <= 1  # the definition, up to a bin's edge
    assert_same(
        every_answer(x, levels, metric, None, "numba"),
        every_answer(x, levels, metric, None, "numpy"),
    )


def test_threaded_and_single_thread_metric_kernels_agree(monkeypatch):
    unit = make_algorithm("dihedral(phash) | pdq")
    x = policy_rows(unit, 3, 120)
    groups = np.arange(120) % 17
    want = every_answer(x, unit.n_levels, unit.metric(), groups, "numpy", slice(0, 50))
    for parallel_pairs in (0, 1 << 40):
        monkeypatch.setattr(kernels, "PARALLEL_PAIRS", parallel_pairs)
        got = every_answer(x, unit.n_levels, unit.metric(), groups, "numba", slice(0, 50))
        assert_same(got, want)


def test_too_few_bins_for_a_metric_are_refused():
    unit = make_algorithm("pdq + phash")
    x = policy_rows(unit, 0, 5)
    with pytest.raises(ValueError, match="cannot hold"):
        kernels.all_pairs_histogram(x, 256, backend="numba", metric=unit.metric())


def test_auto_backend_leaves_small_metric_inputs_to_numpy():
    """A few hundred images never load numba for a policy or a vector metric either."""
    code = (
        "import sys, numpy as np\n"
        "from harness import kernels\n"
        "from harness.algorithms import make_algorithm\n"
        "from harness.algorithms.vectors import VectorMetric\n"
        "unit = make_algorithm('dihedral(phash)')\n"
        "x = np.random.default_rng(0).integers(0, 256, (300, 64), dtype=np.uint8)\n"
        "kernels.all_pairs_histogram(x, 64, metric=unit.metric())\n"
        "v = np.random.default_rng(0).random((300, 8)).astype('<f4').view(np.uint8)\n"
        "kernels.all_pairs_histogram(v, 100, metric=VectorMetric('cosine', 100, 2.0))\n"
        "print('numba' in sys.modules)\n"
        "big = np.zeros((1500, 64), np.uint8)\n"
        "kernels.all_pairs_histogram(big, 64, metric=unit.metric())\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "True"]
