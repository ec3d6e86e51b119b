"""Hash quality and corpus hygiene: are the bits informative, are "different" images different?

Hash quality (per algorithm, over the evaluated originals): per-bit balance, bit correlations,
constant and degenerate hashes, groups of identical hashes, and how far the distribution of
distances between different images is from Binomial(n_bits, 1/2), the ideal of independent fair
bits.

Hygiene: exact pixel duplicates and near duplicates (one chosen algorithm within a chosen distance)
are found before any collision is counted. Near duplicates are joined into groups; pairs inside a
group never count as negatives, and every such pair is listed in the results for review.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from harness import kernels
from harness.kernels import Metric
from harness.metrics import summary

#: Duplicate-hash groups listed per algorithm.
GROUP_LIMIT = 20
#: Most varying bits whose pairwise correlations are computed: the matrix is bits x bits
#: (4096 bits: 128 MB of float64); longer hashes get no ``bit_correlation``.
CORRELATED_BITS = 4096


def hash_quality(
    packed: npt.NDArray[np.uint8],
    n_bits: int,
    ids: Sequence[str],
    groups: npt.ArrayLike,
    metric: Metric | None = None,
) -> dict[str, Any]:
    """Quality statistics of one algorithm's hashes of distinct images (rows of ``packed``).

    For hashes compared by a ``metric`` (not bit strings) only the distance distribution and the
    identical-hash groups are meaningful; bit statistics are left out.
    """
    n = len(packed)
    out: dict[str, Any] = {"n_hashes": n, "n_bits": n_bits}
    if n == 0:
        return {**out, "status": "undefined"}
    if metric is not None:
        hist = kernels.all_pairs_histogram(packed, n_bits, groups, metric=metric)
        return {
            **out,
            "status": "not a bit hash: distance distribution only",
            "identical_hash_groups": _identical(packed, ids),
            "distances": summary(hist),
        }
    bits = np.unpackbits(packed, axis=1, count=n_bits).astype(np.float64)
    ones = bits.mean(axis=0)
    constant = np.flatnonzero((ones == 0) | (ones == 1))
    out["bit_balance"] = {
        "mean_abs_deviation": float(np.abs(ones - 0.5).mean()),
        "min_fraction_ones": float(ones.min()),
        "max_fraction_ones": float(ones.max()),
        "constant_bits": constant.tolist(),
    }
    varying = np.setdiff1d(np.arange(n_bits), constant)
    if n >= 3 and 2 <= len(varying) <= CORRELATED_BITS:
        corr: npt.NDArray[np.float64] = np.asarray(np.corrcoef(bits[:, varying], rowvar=False))
        off = np.abs(corr[~np.eye(len(varying), dtype=bool)])
        out["bit_correlation"] = {
            "mean_abs": float(off.mean()),
            "max_abs": float(off.max()),
            "pairs_above_0.5": int((off > 0.5).sum() // 2),
            "note": f"over {n} hashes; with few hashes chance correlations are large",
        }
    weight = bits.sum(axis=1)
    out["degenerate"] = [
        {"image": ids[int(i)], "ones": int(weight[i])}
        for i in np.flatnonzero((weight == 0) | (weight == n_bits))
    ]
    out["identical_hash_groups"] = _identical(packed, ids)
    hist = kernels.all_pairs_histogram(packed, n_bits, groups)
    out["distances"] = {**summary(hist), **_binomial_fit(hist, n_bits)}
    return out


def _identical(packed: npt.NDArray[np.uint8], ids: Sequence[str]) -> dict[str, Any]:
    by_hash: dict[bytes, list[str]] = defaultdict(list)
    for i, row in enumerate(packed):
        by_hash[row.tobytes()].append(ids[i])
    same = sorted((g for g in by_hash.values() if len(g) > 1), key=lambda g: (-len(g), g))
    return {"count": len(same), "groups": same[:GROUP_LIMIT]}


def _binomial_fit(hist: npt.NDArray[np.int64], n_bits: int) -> dict[str, Any]:
    """Mean and sd against Binomial(n_bits, 1/2), and the Kolmogorov-Smirnov distance."""
    n = int(hist.sum())
    ideal = {"ideal_mean": n_bits / 2, "ideal_sd": float(np.sqrt(n_bits) / 2)}
    if n == 0:
        return {**ideal, "sd": None, "ks_distance": None}
    d = np.arange(n_bits + 1)
    mean = float((d * hist).sum() / n)
    sd = float(np.sqrt(((d - mean) ** 2 * hist).sum() / n))
    ks = float(np.abs(np.cumsum(hist) / n - fair_binomial_cdf(n_bits)).max())
    return {**ideal, "sd": sd, "ks_distance": ks}


def fair_binomial_cdf(n_bits: int) -> npt.NDArray[np.float64]:
    """``scipy.stats.binom.cdf(d, n_bits, 0.5)`` for ``d = 0 .. n_bits``, bit for bit.

    scipy.stats computes it with the ufunc below (1 at the top of the support); calling that
    directly spares every run the 0.5-0.8 s import of scipy.stats.
    """
    try:
        from scipy.special._ufuncs import _binom_cdf
    except ImportError:  # a scipy without it: the public route
        from scipy.stats import binom

        return np.asarray(binom.cdf(np.arange(n_bits + 1), n_bits, 0.5), dtype=np.float64)
    below = _binom_cdf(np.arange(n_bits, dtype=np.float64), n_bits, 0.5)
    return np.append(below, 1.0)


def near_duplicate_groups(
    packed: npt.NDArray[np.uint8],
    max_distance: int,
    limit: int = 10_000,
    metric: Metric | None = None,
    groups: npt.NDArray[np.int64] | None = None,
    confirm: Callable[[int, int], bool] | None = None,
) -> tuple[npt.NDArray[np.int64], list[tuple[int, int, int]]]:
    """Merge groups of rows linked by a chain of pairs within ``max_distance`` (union-find).

    ``groups`` are the labels to start from (default: every row its own); rows already sharing
    a label are not compared. ``confirm(i, j)``, when given, must also hold for a pair to link
    (a second hash agreeing, so that a loose first threshold does not merge unrelated images).
    Returns the merged label of each row (the smallest label of its merged group) and the
    linking pairs ``(i, j, distance)``, at most ``limit``, closest first.
    """
    labels = np.arange(len(packed), dtype=np.int64) if groups is None else np.asarray(groups)
    parent = {int(g): int(g) for g in labels}

    def find(g: int) -> int:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    links = kernels.pairs_within(packed, max_distance, limit, groups=labels, metric=metric)
    if confirm is not None:
        links = [(i, j, d) for i, j, d in links if confirm(i, j)]
    for i, j, _ in links:
        a, b = find(int(labels[i])), find(int(labels[j]))
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([find(int(g)) for g in labels], dtype=np.int64), links
