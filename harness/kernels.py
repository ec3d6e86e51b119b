"""Hamming distances on packed bits: histograms, nearest impostors and close pairs, at scale.

Hashes are rows of a ``uint8`` array of shape ``(n, n_bytes)`` as produced by :func:`numpy.packbits`
(padding bits are zero in every row, so they never add to a distance); any ``n_bits`` works.
Distances are integers in ``[0, n_bits]``; histograms have ``n_bits + 1`` bins.

Every function that visits many pairs has two backends with identical results:

``"numba"``
    compiled, multi-threaded kernels in :mod:`harness._compiled`; about 2e9 pairs/s on two cores
    for 64-bit hashes (``benchmarks/perf/bench_kernels.py``).
``"numpy"``
    the plain reference the tests check the compiled kernels against, in row blocks.
``"auto"`` (default)
    numpy up to :data:`SMALL_PAIRS` (pairs of 64-bit words), numba beyond: importing numba and
    loading its cached kernels costs about 0.5 s once per process, more than numpy needs for a
    corpus of a few hundred images. Once a process has loaded them, numba at any size.

Neither materialises an ``N x N`` matrix: memory is ``O(N)`` plus, for numpy, one block of rows.
Group labels skip pairs: two rows with the same label are never compared (the same source image,
tiles of one photograph, known near-duplicates).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

UInt8Array = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.int64]
Backend = Literal["auto", "numba", "numpy"]
#: A non-Hamming distance: ``metric(queries, references)`` -> int64 matrix of distance levels
#: (0 = identical). Algorithms that are not bit hashes supply one; kernels then take the
#: blockwise numpy path with it.
Metric = Callable[[npt.NDArray[np.uint8], npt.NDArray[np.uint8]], npt.NDArray[np.int64]]

#: Rows per block of the numpy reference; block x N x n_bytes (rounded up to words) bytes of
#: scratch.
DEFAULT_BLOCK = 64
#: Largest call the "auto" backend leaves to numpy, in pairs of 64-bit words (a pair of
#: 256-bit hashes counts 4): numpy's popcounts of words run at about 2e8 pairs/s for 64-bit
#: hashes and 3e7 for 256-bit, so at most 40-70 ms per call, and runs on a few hundred images
#: never pay for numba's start-up (330 tiles: 0.6 s of statistics with numpy, 0.9 s with
#: numba's import and kernels).
SMALL_PAIRS = 1 << 23
#: Largest pair count a compiled kernel runs on one thread (about 2 ms for 64-bit hashes):
#: below it, starting the thread team costs more than it saves (see ``_compiled._serial``).
PARALLEL_PAIRS = 1 << 22


def _as_packed(x: npt.ArrayLike) -> UInt8Array:
    arr = np.asarray(x)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"packed hashes must be a 2-D uint8 array, got {arr.dtype} {arr.shape}")
    return arr


def _words(x: UInt8Array) -> npt.NDArray[np.uint64]:
    """Rows padded with zero bytes to whole 64-bit words, as a contiguous uint64 array."""
    pad = -x.shape[1] % 8
    if pad:
        x = np.pad(x, ((0, 0), (0, pad)))
    return np.ascontiguousarray(x).view(np.uint64)


def _int64(x: npt.ArrayLike) -> IntArray:
    """``x`` as an int64 array (no copy when it is one already)."""
    return np.asarray(x, dtype=np.int64)


def _labels(groups: npt.ArrayLike | None, n: int, what: str) -> npt.NDArray[np.int64]:
    if groups is None:
        return np.zeros(n, dtype=np.int64)
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"{what} must have one label per row ({n}), got shape {g.shape}")
    # Any hashable labels (ids, strings) become small integers for the kernels.
    return np.unique(g, return_inverse=True)[1].astype(np.int64).reshape(n)


def _cross_labels(
    query_groups: npt.ArrayLike | None,
    reference_groups: npt.ArrayLike | None,
    nq: int,
    nr: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], bool]:
    if (query_groups is None) != (reference_groups is None):
        raise ValueError("give both query_groups and reference_groups, or neither")
    if query_groups is None or reference_groups is None:
        return np.zeros(nq, np.int64), np.zeros(nr, np.int64), False
    both = _labels(
        np.concatenate([np.asarray(query_groups), np.asarray(reference_groups)]), nq + nr, "groups"
    )
    return both[:nq], both[nq:], True


def _compiled_kernel(name: str, n_pairs: int) -> tuple[Callable[..., Any], int]:
    """The compiled kernel ``name`` for ``n_pairs`` pairs and the thread count to give it:
    the serial copy on one thread for small inputs, else the parallel one on numba's threads."""
    import numba

    from harness import _compiled

    if n_pairs <= PARALLEL_PAIRS:
        return getattr(_compiled, f"{name}_serial"), 1
    return getattr(_compiled, name), int(numba.get_num_threads())


def _check_bins(n_bits: int, n_bytes: int, metric: Metric | None) -> None:
    """Hamming distances of ``n_bytes``-byte rows reach ``8 * n_bytes`` minus the zero padding:
    a smaller ``n_bits`` (levels of a non-Hamming hash passed without its metric) would count
    outside the histogram."""
    if metric is None and n_bits < 8 * n_bytes - 7:
        raise ValueError(
            f"n_bits={n_bits} is too small for {n_bytes}-byte hashes; pass the algorithm's "
            "metric for hashes that are not bit strings."
        )


def _compiled_for(backend: str, metric: Metric | None, n_pairs: int, n_bytes: int) -> bool:
    """Whether to run the compiled kernel on ``n_pairs`` pairs of ``n_bytes``-byte rows: never
    for a custom metric or ``"numpy"``."""
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
    if metric is not None or backend == "numpy":
        return False
    # Once this process has loaded the compiled kernels (a larger call did), they are the
    # cheaper choice at any size.
    large = n_pairs * -(-n_bytes // 8) > SMALL_PAIRS
    return backend == "numba" or large or "harness._compiled" in sys.modules


def hamming(a: npt.ArrayLike, b: npt.ArrayLike, metric: Metric | None = None) -> IntArray:
    """Row-wise distances between ``a[i]`` and ``b[i]``; shapes ``(n, n_bytes)`` -> ``(n,)``."""
    a, b = _as_packed(a), _as_packed(b)
    if metric is not None:
        return np.array(
            [int(metric(a[i : i + 1], b[i : i + 1])[0, 0]) for i in range(len(a))], np.int64
        )
    return _int64(np.bitwise_count(a ^ b).sum(axis=1))


def pairwise(a: npt.ArrayLike, b: npt.ArrayLike) -> IntArray:
    """Full distance matrix ``(len(a), len(b))``; for small inputs and tests only."""
    a, b = _as_packed(a), _as_packed(b)
    return _int64(np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=2))


def hamming_unpacked(a: npt.ArrayLike, b: npt.ArrayLike) -> IntArray:
    """Reference implementation on unpacked boolean rows, used by the tests."""
    return _int64(np.count_nonzero(np.asarray(a, bool) != np.asarray(b, bool), axis=-1))


def _blocks(
    q: npt.NDArray[np.unsignedinteger[Any]],
    r: npt.NDArray[np.unsignedinteger[Any]],
    qg: npt.NDArray[np.int64],
    rg: npt.NDArray[np.int64],
    use_groups: bool,
    triangle: bool,
    block: int,
    metric: Metric | None = None,
) -> Iterator[tuple[int, IntArray, npt.NDArray[np.bool_]]]:
    """numpy reference: yield ``(start, distances, keep)`` per block of query rows."""
    if metric is None:  # popcount of 64-bit words: one per word instead of one per byte
        q, r = _words(q), _words(r)
    for start in range(0, len(q), block):
        stop = min(start + block, len(q))
        if metric is not None:
            d = np.asarray(metric(q[start:stop], r), dtype=np.int64)
        else:
            d = np.bitwise_count(q[start:stop, None, :] ^ r[None, :, :])
            d = d[:, :, 0].astype(np.int64) if d.shape[2] == 1 else d.sum(axis=2, dtype=np.int64)
        keep = np.ones(d.shape, dtype=bool)
        if triangle:
            keep &= np.arange(len(r))[None, :] > np.arange(start, stop)[:, None]
        if use_groups:
            keep &= qg[start:stop, None] != rg[None, :]
        yield start, d, keep


def all_pairs_histogram(
    x: npt.ArrayLike,
    n_bits: int,
    groups: npt.ArrayLike | None = None,
    block: int = DEFAULT_BLOCK,
    *,
    backend: Backend = "auto",
    metric: Metric | None = None,
) -> IntArray:
    """Histogram of distances over all unordered pairs ``i < j`` of rows of ``x``.

    Parameters
    ----------
    x : uint8 array, shape (n, n_bytes)
    n_bits : int
        Hash length; the histogram has ``n_bits + 1`` bins.
    groups : array of shape (n,), optional
        Pairs whose rows share a group label are skipped (e.g. tiles of one source photo).
    block : int
        Rows per block of the numpy backend.
    backend : {"auto", "numba", "numpy"}

    Returns
    -------
    hist : int64 array, shape (n_bits + 1,)
        ``hist[d]`` = number of pairs at distance ``d``; sums to ``n(n-1)/2`` minus skipped pairs.
    """
    x = _as_packed(x)
    _check_bins(n_bits, x.shape[1], metric)
    g = _labels(groups, len(x), "groups")
    n_pairs = len(x) * (len(x) - 1) // 2
    if _compiled_for(backend, metric, n_pairs, x.shape[1]):
        kernel, threads = _compiled_kernel("histogram", n_pairs)
        w = _words(x)
        return _int64(kernel(w, w, g, g, groups is not None, True, n_bits + 1, threads))
    hist = np.zeros(n_bits + 1, dtype=np.int64)
    for _, d, keep in _blocks(x, x, g, g, groups is not None, True, block, metric):
        hist += np.bincount(d[keep], minlength=n_bits + 1)
    return hist


def cross_histogram(
    queries: npt.ArrayLike,
    references: npt.ArrayLike,
    n_bits: int,
    query_groups: npt.ArrayLike | None = None,
    reference_groups: npt.ArrayLike | None = None,
    block: int = DEFAULT_BLOCK,
    *,
    per_query: bool = False,
    backend: Backend = "auto",
    metric: Metric | None = None,
) -> IntArray:
    """Histogram of distances over all ``(query, reference)`` pairs.

    Pairs whose group labels are equal are skipped: with the source image as the label this counts
    "edited copy vs every *other* original", the deployment case of an upload against a database.
    With ``per_query`` the result has one histogram per query row, shape ``(n_queries,
    n_bits + 1)``; that is what resampling by source image needs.
    """
    q, r = _as_packed(queries), _as_packed(references)
    _check_bins(n_bits, q.shape[1], metric)
    qg, rg, use_groups = _cross_labels(query_groups, reference_groups, len(q), len(r))
    if _compiled_for(backend, metric, len(q) * len(r), q.shape[1]):
        qw, rw = _words(q), _words(r)
        if per_query:
            rows, _ = _compiled_kernel("row_histograms", len(q) * len(r))
            return _int64(rows(qw, rw, qg, rg, use_groups, n_bits + 1))
        kernel, threads = _compiled_kernel("histogram", len(q) * len(r))
        return _int64(kernel(qw, rw, qg, rg, use_groups, False, n_bits + 1, threads))
    bins = n_bits + 1
    out = np.zeros((len(q), bins) if per_query else bins, dtype=np.int64)
    for start, d, keep in _blocks(q, r, qg, rg, use_groups, False, block, metric):
        if per_query:  # one bincount for the block: row k's distances go to bins k*bins + d
            flat = (np.arange(len(d))[:, None] * bins + d)[keep]
            out[start : start + len(d)] = np.bincount(flat, minlength=len(d) * bins).reshape(
                len(d), bins
            )
        else:
            out += np.bincount(d[keep], minlength=bins)
    return out


def nearest_impostor(
    queries: npt.ArrayLike,
    references: npt.ArrayLike,
    query_groups: npt.ArrayLike | None = None,
    reference_groups: npt.ArrayLike | None = None,
    block: int = DEFAULT_BLOCK,
    *,
    backend: Backend = "auto",
    metric: Metric | None = None,
) -> tuple[IntArray, IntArray]:
    """Distance to, and index of, the closest reference of another group, per query.

    This is the retrieval view: a query is falsely matched at threshold ``t`` when its closest
    *incorrect* reference lies within ``t``. Ties go to the lowest reference index; a query with
    no eligible reference gets distance and index ``-1``.
    """
    q, r = _as_packed(queries), _as_packed(references)
    qg, rg, use_groups = _cross_labels(query_groups, reference_groups, len(q), len(r))
    if _compiled_for(backend, metric, len(q) * len(r), q.shape[1]):
        kernel, _ = _compiled_kernel("nearest", len(q) * len(r))
        dist, index = kernel(_words(q), _words(r), qg, rg, use_groups)
        return _int64(dist), _int64(index)
    dist = np.full(len(q), -1, dtype=np.int64)
    index = np.full(len(q), -1, dtype=np.int64)
    for start, d, keep in _blocks(q, r, qg, rg, use_groups, False, block, metric):
        masked = np.where(keep, d, np.iinfo(np.int64).max)
        arg = masked.argmin(axis=1)
        rows = np.arange(len(d))
        has = keep.any(axis=1)
        dist[start : start + len(d)][has] = masked[rows, arg][has]
        index[start : start + len(d)][has] = arg[has]
    return dist, index


def _within(
    q: UInt8Array,
    r: UInt8Array,
    qg: npt.NDArray[np.int64],
    rg: npt.NDArray[np.int64],
    use_groups: bool,
    triangle: bool,
    threshold: int,
    limit: int,
    block: int,
    backend: Backend,
    metric: Metric | None = None,
) -> list[tuple[int, int, int]]:
    n_pairs = len(q) * (len(q) - 1) // 2 if triangle else len(q) * len(r)
    compiled = _compiled_for(backend, metric, n_pairs, q.shape[1])
    if limit <= 0 or threshold < 0:
        return []
    if not compiled:
        found: list[tuple[int, int, int]] = []
        for start, d, keep in _blocks(q, r, qg, rg, use_groups, triangle, block, metric):
            ii, jj = np.nonzero(keep & (d <= threshold))
            found += [(int(d[i, j]), start + int(i), int(j)) for i, j in zip(ii, jj, strict=True)]
            if len(found) > 4 * limit:  # keep memory bounded on collision-heavy corpora
                found = sorted(found)[:limit]
        return [(i, j, dist) for dist, i, j in sorted(found)[:limit]]

    qw, rw = _words(q), _words(r)
    n_bits = 64 * qw.shape[1]
    histogram, threads = _compiled_kernel("histogram", n_pairs)
    hist = histogram(qw, rw, qg, rg, use_groups, triangle, n_bits + 1, threads)
    cumulative = np.cumsum(hist[: threshold + 1])
    if cumulative[-1] <= limit:  # everything within the threshold fits
        below, tie, need = threshold + 1, -1, 0
    else:  # the limit falls inside distance `tie`: keep all closer pairs, then the first ties
        tie = int(np.searchsorted(cumulative, limit))
        below = tie
        need = limit - (int(cumulative[tie - 1]) if tie else 0)
    capacity = min(int(cumulative[-1]), limit)
    collect, threads = _compiled_kernel("collect", n_pairs)
    rows = collect(qw, rw, qg, rg, use_groups, triangle, below, tie, need, capacity, threads)
    rows = rows.reshape(-1, 3)
    rows = rows[rows[:, 0] >= 0]
    ordered = sorted(map(tuple, rows.tolist()))[:limit]
    return [(i, j, dist) for dist, i, j in ordered]


def pairs_within(
    x: npt.ArrayLike,
    threshold: int,
    limit: int = 100,
    block: int = DEFAULT_BLOCK,
    groups: npt.ArrayLike | None = None,
    *,
    backend: Backend = "auto",
    metric: Metric | None = None,
) -> list[tuple[int, int, int]]:
    """Pairs ``(i, j, distance)`` with ``i < j`` and distance ``<= threshold``, closest first.

    At most ``limit`` pairs are returned (ties broken by ``i`` then ``j``), so that a corpus with
    millions of collisions still yields a short list to review.
    """
    x = _as_packed(x)
    g = _labels(groups, len(x), "groups")
    return _within(x, x, g, g, groups is not None, True, threshold, limit, block, backend, metric)


def cross_pairs_within(
    queries: npt.ArrayLike,
    references: npt.ArrayLike,
    threshold: int,
    limit: int = 100,
    query_groups: npt.ArrayLike | None = None,
    reference_groups: npt.ArrayLike | None = None,
    block: int = DEFAULT_BLOCK,
    *,
    backend: Backend = "auto",
    metric: Metric | None = None,
) -> list[tuple[int, int, int]]:
    """Pairs ``(query, reference, distance)`` within ``threshold``, closest first, at most
    ``limit``: the edited uploads that would be flagged against the wrong database entry."""
    q, r = _as_packed(queries), _as_packed(references)
    qg, rg, use_groups = _cross_labels(query_groups, reference_groups, len(q), len(r))
    return _within(q, r, qg, rg, use_groups, False, threshold, limit, block, backend, metric)
