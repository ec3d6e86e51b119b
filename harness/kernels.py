"""Hamming distances on packed bits: XOR + popcount, accumulated into histograms blockwise.

Hashes are rows of a ``uint8`` array of shape ``(n, n_bytes)`` as produced by :func:`numpy.packbits`
(padding bits are zero in every row, so they never add to a distance). Distances are integers in
``[0, n_bits]``; histograms have ``n_bits + 1`` bins. No function here materialises an ``N x N``
matrix: all-pairs work proceeds in row blocks whose memory is ``block x N x n_bytes``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

UInt8Array = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.int64]

#: Rows per block; block x N x n_bytes bytes of XOR scratch (about 32 MB for N = 10^5, 64-bit).
DEFAULT_BLOCK = 64


def _as_packed(x: npt.ArrayLike) -> UInt8Array:
    arr = np.asarray(x)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"packed hashes must be a 2-D uint8 array, got {arr.dtype} {arr.shape}")
    return arr


def hamming(a: npt.ArrayLike, b: npt.ArrayLike) -> IntArray:
    """Row-wise distances between ``a[i]`` and ``b[i]``; shapes ``(n, n_bytes)`` -> ``(n,)``."""
    a, b = _as_packed(a), _as_packed(b)
    return np.bitwise_count(a ^ b).sum(axis=1, dtype=np.int64)


def pairwise(a: npt.ArrayLike, b: npt.ArrayLike) -> IntArray:
    """Full distance matrix ``(len(a), len(b))``; for small inputs and tests only."""
    a, b = _as_packed(a), _as_packed(b)
    return np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=2, dtype=np.int64)


def _bincount(d: IntArray, n_bits: int) -> IntArray:
    return np.bincount(d.ravel(), minlength=n_bits + 1).astype(np.int64)


def all_pairs_histogram(
    x: npt.ArrayLike,
    n_bits: int,
    groups: npt.ArrayLike | None = None,
    block: int = DEFAULT_BLOCK,
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
        Rows per block.

    Returns
    -------
    hist : int64 array, shape (n_bits + 1,)
        ``hist[d]`` = number of pairs at distance ``d``; sums to ``n(n-1)/2`` minus skipped pairs.
    """
    x = _as_packed(x)
    g = None if groups is None else np.asarray(groups)
    hist = np.zeros(n_bits + 1, dtype=np.int64)
    n = len(x)
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = x[start:stop]
        rest = x[start + 1 :]  # columns j > start; the upper triangle is masked below
        d = np.bitwise_count(rows[:, None, :] ^ rest[None, :, :]).sum(axis=2, dtype=np.int64)
        i = np.arange(start, stop)[:, None]
        j = np.arange(start + 1, n)[None, :]
        keep = j > i
        if g is not None:
            keep &= g[start:stop, None] != g[None, start + 1 :]
        hist += _bincount(d[keep], n_bits)
    return hist


def cross_histogram(
    queries: npt.ArrayLike,
    references: npt.ArrayLike,
    n_bits: int,
    query_groups: npt.ArrayLike | None = None,
    reference_groups: npt.ArrayLike | None = None,
    block: int = DEFAULT_BLOCK,
) -> IntArray:
    """Histogram of distances over all ``(query, reference)`` pairs.

    Pairs whose group labels are equal are skipped: with the source image as the label this counts
    "edited copy vs every *other* original", the deployment case of an upload against a database.
    """
    q, r = _as_packed(queries), _as_packed(references)
    if (query_groups is None) != (reference_groups is None):
        raise ValueError("give both query_groups and reference_groups, or neither")
    qg = None if query_groups is None else np.asarray(query_groups)
    rg = None if reference_groups is None else np.asarray(reference_groups)
    hist = np.zeros(n_bits + 1, dtype=np.int64)
    for start in range(0, len(q), block):
        stop = min(start + block, len(q))
        d = np.bitwise_count(q[start:stop, None, :] ^ r[None, :, :]).sum(axis=2, dtype=np.int64)
        if qg is not None and rg is not None:
            d = d[qg[start:stop, None] != rg[None, :]]
        hist += _bincount(d, n_bits)
    return hist


def hamming_unpacked(a: npt.ArrayLike, b: npt.ArrayLike) -> IntArray:
    """Reference implementation on unpacked boolean rows, used by the tests."""
    return np.count_nonzero(np.asarray(a, bool) != np.asarray(b, bool), axis=-1).astype(np.int64)


def pairs_within(
    x: npt.ArrayLike, threshold: int, limit: int = 100, block: int = DEFAULT_BLOCK
) -> list[tuple[int, int, int]]:
    """Pairs ``(i, j, distance)`` with ``i < j`` and distance ``<= threshold``, closest first.

    At most ``limit`` pairs are returned (ties broken by ``i`` then ``j``), so that a corpus with
    millions of collisions still yields a short list to review.
    """
    x = _as_packed(x)
    found: list[tuple[int, int, int]] = []
    n = len(x)
    for start in range(0, n, block):
        stop = min(start + block, n)
        d = np.bitwise_count(x[start:stop, None, :] ^ x[None, start + 1 :, :]).sum(
            axis=2, dtype=np.int64
        )
        ii, jj = np.nonzero(d <= threshold)
        for bi, bj in zip(ii.tolist(), jj.tolist(), strict=True):
            i, j = start + bi, start + 1 + bj
            if j > i:
                found.append((int(d[bi, bj]), i, j))
        if len(found) > 4 * limit:  # keep memory bounded on collision-heavy corpora
            found = sorted(found)[:limit]
    return [(i, j, dist) for dist, i, j in sorted(found)[:limit]]
