# mypy: ignore-errors
"""Numba kernels behind :mod:`harness.kernels`; call them through that module, not directly.

Inputs are hashes as C-contiguous ``uint64`` words (shape ``(n, n_words)``, zero padding bits)
and ``int64`` group labels; a pair whose labels are equal is skipped when ``use_groups``. The thread
count is an argument (reading it inside a kernel would stop numba caching the machine code). With
``triangle`` the query and reference arrays are the same and only pairs ``i < j`` count.

Why it is shaped this way (measured on 2 cores, 64-bit hashes, N = 20,000):

* popcount is LLVM's ``ctpop`` intrinsic, which becomes one ``popcnt`` instruction;
* each thread owns four interleaved sub-histograms: consecutive increments of the same bin
  otherwise serialise on store-to-load forwarding (0.9e9 -> 2.0e9 pairs/s);
* the group check is hoisted out of the loop when there are no groups (2.0e9 -> 3.7e9);
* for one-word (64-bit) hashes the inner loop is unrolled by four, one sub-histogram per
  lane, with unsigned indices (a signed index costs a negative-index check per load): one
  thread went from 0.55x to 0.8-1.3x (on a shared, noisy machine) of a C loop that does the
  same (``benchmarks/perf/popcount_ref.c``); with groups the increment is the comparison
  itself (no branch to mispredict);
* reference rows are visited in tiles that stay in L2 while a block of query rows passes over
  them, and blocks of rows are dealt round-robin to threads so the triangle's uneven rows
  balance.
"""

from __future__ import annotations

import types as pytypes

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

#: Query rows per block and reference rows per tile (64 x 256-bit rows = 2 KB; a tile of 2048
#: 256-bit rows is 64 KB and stays in L2 while a block passes over it).
BLOCK = 64
TILE = 2048


@intrinsic
def _popcount(typingctx, x):
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(inline="always")
def _distance(q, i, r, j, n_words):
    d = 0
    for k in range(n_words):
        d += _popcount(q[i, k] ^ r[j, k])
    return d


@njit(inline="always")
def _row64(wi, r, gi, rg, use_groups, js, j1, h0, h1, h2, h3):
    """Distances of one 64-bit query word ``wi`` to reference rows ``js:j1`` (``r`` is the
    reference's only column), four at a time into the four sub-histograms."""
    j = np.uint64(js)
    end = np.uint64(j1)
    one, two, three, four = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    if use_groups:
        while j + four <= end:
            h0[_popcount(wi ^ r[j])] += rg[j] != gi
            h1[_popcount(wi ^ r[j + one])] += rg[j + one] != gi
            h2[_popcount(wi ^ r[j + two])] += rg[j + two] != gi
            h3[_popcount(wi ^ r[j + three])] += rg[j + three] != gi
            j += four
        while j < end:
            h0[_popcount(wi ^ r[j])] += rg[j] != gi
            j += one
    else:
        while j + four <= end:
            h0[_popcount(wi ^ r[j])] += 1
            h1[_popcount(wi ^ r[j + one])] += 1
            h2[_popcount(wi ^ r[j + two])] += 1
            h3[_popcount(wi ^ r[j + three])] += 1
            j += four
        while j < end:
            h0[_popcount(wi ^ r[j])] += 1
            j += one


@njit(parallel=True, cache=True)
def histogram(q, r, qg, rg, use_groups, triangle, n_bins, n_threads):
    nq, n_words = q.shape
    nr = r.shape[0]
    hists = np.zeros((n_threads, 4, n_bins), np.int64)
    n_blocks = (nq + BLOCK - 1) // BLOCK
    r0 = r[:, 0].copy()  # the only word of 64-bit rows, contiguous for the unrolled loop
    for t in prange(n_threads):
        h = hists[t]
        h0, h1, h2, h3 = hists[t, 0], hists[t, 1], hists[t, 2], hists[t, 3]
        for b in range(t, n_blocks, n_threads):
            i0 = b * BLOCK
            i1 = min(i0 + BLOCK, nq)
            for j0 in range(i0 + 1 if triangle else 0, nr, TILE):
                j1 = min(j0 + TILE, nr)
                for i in range(i0, i1):
                    js = max(j0, i + 1) if triangle else j0
                    gi = qg[i]
                    if n_words == 1:
                        _row64(q[i, 0], r0, gi, rg, use_groups, js, j1, h0, h1, h2, h3)
                    elif use_groups:
                        for j in range(js, j1):
                            if rg[j] != gi:
                                h[j & 3, _distance(q, i, r, j, n_words)] += 1
                    else:
                        for j in range(js, j1):
                            h[j & 3, _distance(q, i, r, j, n_words)] += 1
    return hists.sum(axis=0).sum(axis=0)


@njit(parallel=True, cache=True)
def row_histograms(q, r, qg, rg, use_groups, n_bins):
    nq, n_words = q.shape
    out = np.zeros((nq, n_bins), np.int64)
    for i in prange(nq):
        gi = qg[i]
        for j in range(r.shape[0]):
            if use_groups and rg[j] == gi:
                continue
            out[i, _distance(q, i, r, j, n_words)] += 1
    return out


@njit(parallel=True, cache=True)
def nearest(q, r, qg, rg, use_groups):
    nq, n_words = q.shape
    dist = np.full(nq, -1, np.int64)
    index = np.full(nq, -1, np.int64)
    for i in prange(nq):
        gi = qg[i]
        best = np.int64(1) << 62
        arg = -1
        for j in range(r.shape[0]):
            if use_groups and rg[j] == gi:
                continue
            d = _distance(q, i, r, j, n_words)
            if d < best:
                best = d
                arg = j
        if arg >= 0:
            dist[i] = best
            index[i] = arg
    return dist, index


@njit(parallel=True, cache=True)
def collect(q, r, qg, rg, use_groups, triangle, below, tie, need, capacity, n_threads):
    """Every pair with distance < ``below`` and, per thread, the first ``need`` at ``tie``.

    Rows are dealt to threads in increasing order, so each thread's first ``need`` ties are its
    smallest ``(i, j)``; the caller merges threads and keeps the overall first ``need``.
    ``capacity`` (pairs below plus ``need``) bounds what one thread can find. Rows hold
    ``(distance, i, j)``; unused rows have distance -1.
    """
    nq, n_words = q.shape
    found = np.full((n_threads, capacity, 3), -1, np.int64)
    for t in prange(n_threads):
        n_found = 0
        n_tied = 0
        for i in range(t, nq, n_threads):
            gi = qg[i]
            for j in range(i + 1 if triangle else 0, r.shape[0]):
                if use_groups and rg[j] == gi:
                    continue
                d = _distance(q, i, r, j, n_words)
                if d < below or (d == tie and n_tied < need):
                    if d == tie:
                        n_tied += 1
                    found[t, n_found, 0] = d
                    found[t, n_found, 1] = i
                    found[t, n_found, 2] = j
                    n_found += 1
    return found


def _serial(kernel):
    """``kernel`` compiled without threads (its ``prange`` runs as a plain loop).

    Entering a parallel region costs about 10-50 us on an idle machine but milliseconds on a
    busy one, where the region waits for every thread of its team to be scheduled: far more
    than the whole call for the small inputs of a run's per-cell statistics (a 330 x 330 cross
    histogram: 0.07 ms serial, 1-10 ms in parallel). Results are the same: each thread's
    share is the same loop, and the sub-histograms are integer sums. The copy has a name of
    its own so that numba's on-disk cache keeps the two compilations apart.
    """
    f = kernel.py_func
    name = f"{f.__name__}_serial"
    copy = pytypes.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    copy.__qualname__ = name
    copy.__doc__ = f.__doc__
    return njit(cache=True)(copy)


histogram_serial = _serial(histogram)
row_histograms_serial = _serial(row_histograms)
nearest_serial = _serial(nearest)
collect_serial = _serial(collect)


# -- metric kernels ---------------------------------------------------------------------------
#
# Policies and vector hashes compare rows with a distance of their own. The four drivers below
# visit pairs like the Hamming kernels above; ``_pair(q, i, r, j, args)`` - the distance level
# of query row ``i`` and reference row ``j`` - is bound per distance by ``metric_kernel``,
# which compiles a copy of each driver whose global ``_pair`` is that distance's function
# (inlined: no call per pair). ``q`` and ``r`` are tuples of arrays (one row each per hash),
# ``args`` a tuple of the distance's parameters; ``harness.kernels``' plans prepare both.

#: Reference rows per tile of the metric histogram (256 rows of 8 x 64 bits or 64 float64
#: dimensions: 128 KB, in L2 while a block of query rows passes over them).
METRIC_TILE = 256
#: Kinds of float distance (see :func:`_vector_pair`).
COSINE, L1, L2 = 0, 1, 2


@njit(inline="always")
def _slot_distance(qw, i, rw, j, first, base, n_words):
    """Hamming distance of query words ``first:first + n_words`` of row ``i`` and reference
    words ``base:base + n_words`` of row ``j``; PDQ's 4 and pHash's 1 words unrolled (a loop
    of unknown length costs twice as much per pair)."""
    if n_words == 1:
        return np.int64(_popcount(qw[i, first] ^ rw[j, base]))
    if n_words == 4:
        return np.int64(
            _popcount(qw[i, first] ^ rw[j, base])
            + _popcount(qw[i, first + 1] ^ rw[j, base + 1])
            + _popcount(qw[i, first + 2] ^ rw[j, base + 2])
            + _popcount(qw[i, first + 3] ^ rw[j, base + 3])
        )
    d = np.int64(0)
    for k in range(n_words):
        d += np.int64(_popcount(qw[i, first + k] ^ rw[j, base + k]))
    return d


@njit(inline="always")
def fused_pair(q, i, r, j, args):
    """Fusion of Hamming parts on the common grid (AND: max, OR: min, sum), each part the
    minimum over its reference orientations (dihedral: 8, else 1).

    ``q = (words, usable)``: the parts' slots as 64-bit words and one usable flag per part
    (all 1 unless the rule decides on the parts that remain, OR). ``args = (slots, rule,
    partial, grid)`` with one row ``(first word, words, orientations, num, den)`` per part:
    the part's distance ``d`` is ``ceil(d * num / den)`` on the grid; ``rule`` 0 = max,
    1 = min, 2 = sum.
    """
    qw, qu = q
    rw, ru = r
    slots, rule, partial, grid = args
    acc = np.int64(1) << 62 if rule == 1 else np.int64(0)
    for p in range(slots.shape[0]):
        first, n_words, n_orient = slots[p, 0], slots[p, 1], slots[p, 2]
        if partial and (qu[i, p] == 0 or ru[j, p] == 0):
            d = np.int64(grid)
        else:
            best = _slot_distance(qw, i, rw, j, first, first, n_words)
            if n_orient == 8:
                for o in range(1, 8):
                    other = _slot_distance(qw, i, rw, j, first, first + o * n_words, n_words)
                    best = min(best, other)
            num, den = slots[p, 3], slots[p, 4]
            d = (best * num + den - 1) // den
        if rule == 0:
            acc = max(acc, d)
        elif rule == 1:
            acc = min(acc, d)
        else:
            acc += d
    return acc


@njit(inline="always")
def _level(d, top, levels):
    """``clip(rint(d / top * levels), 0, levels)`` as numpy computes it, as an integer."""
    x = np.rint(d / top * levels)
    if x < 0.0:
        return np.int64(0)
    if x > levels:
        return np.int64(levels)
    return np.int64(x)


@njit(inline="always")
def _term(kind, x, y):
    if kind == COSINE:
        return x * y
    if kind == L1:
        return abs(x - y)
    t = x - y
    return t * t


@njit(inline="always")
def _vector_pair(q, i, r, j, args, kind):
    """Level of the cosine, L1 or L2 distance (``kind``) of two float vectors.

    ``q = (vectors, zero)``: float64 rows (unit length for cosine) and 1 where the vector is all
    zeros. The terms of dimensions ``k = m, m + 4, ...`` are summed in order into lane ``m``
    and the lanes added as ``(lane0 + lane1) + (lane2 + lane3)``: four independent sums run
    four times faster than one, and the numpy reference (``VectorPlan.distances``) does the
    same operations in the same order, so the levels agree bit for bit.
    """
    qv, qz = q
    rv, rz = r
    top, levels = args
    dims = qv.shape[1]
    a0 = a1 = a2 = a3 = 0.0
    k = 0
    while k + 4 <= dims:
        a0 += _term(kind, qv[i, k], rv[j, k])
        a1 += _term(kind, qv[i, k + 1], rv[j, k + 1])
        a2 += _term(kind, qv[i, k + 2], rv[j, k + 2])
        a3 += _term(kind, qv[i, k + 3], rv[j, k + 3])
        k += 4
    if k < dims:
        a0 += _term(kind, qv[i, k], rv[j, k])
    if k + 1 < dims:
        a1 += _term(kind, qv[i, k + 1], rv[j, k + 1])
    if k + 2 < dims:
        a2 += _term(kind, qv[i, k + 2], rv[j, k + 2])
    acc = (a0 + a1) + (a2 + a3)
    if kind == COSINE:
        d = 0.0 if (qz[i] == 1 and rz[j] == 1) else 1.0 - acc
    elif kind == L1:
        d = acc
    else:
        d = np.sqrt(acc)
    return _level(d, top, levels)


# One function per kind: inlined with ``kind`` a constant, each kernel has no branch on it.
@njit(inline="always")
def cosine_pair(q, i, r, j, args):
    return _vector_pair(q, i, r, j, args, COSINE)


@njit(inline="always")
def l1_pair(q, i, r, j, args):
    return _vector_pair(q, i, r, j, args, L1)


@njit(inline="always")
def l2_pair(q, i, r, j, args):
    return _vector_pair(q, i, r, j, args, L2)


@njit(inline="always")
def weighted_pair(q, i, r, j, args):
    """Level of the weighted Hamming distance: byte by byte, in order, the weight of the
    differing bits from a table (``table[b, x]``: weight of byte ``b``'s set bits in ``x``),
    divided by the total weight."""
    (qb,) = q
    (rb,) = r
    table, total, top, levels = args
    acc = 0.0
    for b in range(qb.shape[1]):
        acc += table[b, qb[i, b] ^ rb[j, b]]
    return _level(acc / total, top, levels)


def _pair(q, i, r, j, args):  # pragma: no cover - replaced in every compiled copy
    raise NotImplementedError


def metric_histogram(q, r, nq, nr, qg, rg, use_groups, triangle, n_bins, n_threads, args):
    """:func:`histogram` of a metric: blocks of query rows dealt round-robin to threads (the
    triangle's rows balance), each passing over tiles of reference rows that stay in cache."""
    hists = np.zeros((n_threads, n_bins), np.int64)
    n_blocks = (nq + BLOCK - 1) // BLOCK
    for t in prange(n_threads):
        for b in range(t, n_blocks, n_threads):
            i0 = b * BLOCK
            i1 = min(i0 + BLOCK, nq)
            for j0 in range(i0 + 1 if triangle else 0, nr, METRIC_TILE):
                j1 = min(j0 + METRIC_TILE, nr)
                for i in range(i0, i1):
                    gi = qg[i]
                    for j in range(max(j0, i + 1) if triangle else j0, j1):
                        if use_groups and rg[j] == gi:
                            continue
                        hists[t, _pair(q, i, r, j, args)] += 1
    return hists.sum(axis=0)


def metric_row_histograms(q, r, nq, nr, qg, rg, use_groups, n_bins, args):
    out = np.zeros((nq, n_bins), np.int64)
    for i in prange(nq):
        gi = qg[i]
        for j in range(nr):
            if use_groups and rg[j] == gi:
                continue
            out[i, _pair(q, i, r, j, args)] += 1
    return out


def metric_nearest(q, r, nq, nr, qg, rg, use_groups, args):
    dist = np.full(nq, -1, np.int64)
    index = np.full(nq, -1, np.int64)
    for i in prange(nq):
        gi = qg[i]
        best = np.int64(1) << 62
        arg = -1
        for j in range(nr):
            if use_groups and rg[j] == gi:
                continue
            d = _pair(q, i, r, j, args)
            if d < best:
                best = d
                arg = j
        if arg >= 0:
            dist[i] = best
            index[i] = arg
    return dist, index


def metric_collect(
    q, r, nq, nr, qg, rg, use_groups, triangle, below, tie, need, capacity, n_threads, args
):
    """:func:`collect` of a metric: every pair below ``below`` and per thread the first
    ``need`` at ``tie``, as rows ``(distance, i, j)`` (unused rows: -1)."""
    found = np.full((n_threads, capacity, 3), -1, np.int64)
    for t in prange(n_threads):
        n_found = 0
        n_tied = 0
        for i in range(t, nq, n_threads):
            gi = qg[i]
            for j in range(i + 1 if triangle else 0, nr):
                if use_groups and rg[j] == gi:
                    continue
                d = _pair(q, i, r, j, args)
                if d < below or (d == tie and n_tied < need):
                    if d == tie:
                        n_tied += 1
                    found[t, n_found, 0] = d
                    found[t, n_found, 1] = i
                    found[t, n_found, 2] = j
                    n_found += 1
    return found


_DRIVERS = {
    "histogram": metric_histogram,
    "row_histograms": metric_row_histograms,
    "nearest": metric_nearest,
    "collect": metric_collect,
}
_PAIRS = {
    "fused": fused_pair,
    "cosine": cosine_pair,
    "l1": l1_pair,
    "l2": l2_pair,
    "weighted": weighted_pair,
}
_BOUND: dict = {}


def metric_kernel(driver: str, pair: str, parallel: bool):
    """Driver ``driver`` compiled with distance ``pair`` (threaded or not), made on first use.

    Each copy has a name of its own (``metric_histogram_fused_serial``...) so that numba's
    on-disk cache keeps the compilations apart, as for :func:`_serial`.
    """
    key = (driver, pair, parallel)
    if key not in _BOUND:
        f = _DRIVERS[driver]
        name = f"{f.__name__}_{pair}" + ("" if parallel else "_serial")
        scope = dict(f.__globals__, _pair=_PAIRS[pair])
        copy = pytypes.FunctionType(f.__code__, scope, name, f.__defaults__, f.__closure__)
        copy.__qualname__ = name
        copy.__doc__ = f.__doc__
        _BOUND[key] = njit(parallel=parallel, cache=True)(copy)
    return _BOUND[key]
