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

A hash that is not a bit string passes its ``metric`` (distance levels, see :data:`Metric`).
A metric with a :meth:`plan` (:class:`FusedPlan`: fusions of Hamming parts and dihedral
minima; :class:`VectorPlan`: cosine, L1, L2 and weighted Hamming) has compiled kernels too,
with the numpy path below :data:`SMALL_METRIC_PAIRS` pairs; any other metric runs in numpy
blocks. Compiled and numpy levels are equal bit for bit: integer arithmetic for the Hamming
plans, and for float distances the same operations in the same order in both (see
:meth:`VectorPlan.distances`; no fused or reordered arithmetic).

Neither materialises an ``N x N`` matrix: memory is ``O(N)`` plus, for numpy, one block of rows.
Group labels skip pairs: two rows with the same label are never compared (the same source image,
tiles of one photograph, known near-duplicates).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

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
#: Largest call the "auto" backend leaves to numpy for a metric with a compiled plan, in pairs:
#: numpy computes such distances at about 1e6-3e7 pairs/s (``bench_kernels.py --metrics``),
#: so a few hundred images (the cells' nearest impostors: edits x images^2) stay below a
#: second without numba.
SMALL_METRIC_PAIRS = 1 << 20


@dataclass(frozen=True)
class FusedPlan:
    """A metric the compiled kernels compute from Hamming parts: the minimum over each part's
    reference orientations (dihedral: 8, else 1), put on a common integer grid, combined by
    ``rule``.

    ``slots`` has one ``(first byte, bytes, orientations, num, den)`` per part: the part's
    query hash is at ``first byte`` of the row, its reference orientations follow each other
    from there, and its distance ``d`` counts ``ceil(d * num / den)`` on the grid. ``flags``
    is the byte where one usable flag per part begins (a rule deciding on the parts that
    remain, OR: an unusable part is at ``grid``), or None.
    """

    slots: tuple[tuple[int, int, int, int, int], ...]
    rule: Literal["max", "min", "sum"]
    grid: int
    flags: int | None = None
    pair: ClassVar[str] = "fused"

    def __post_init__(self) -> None:
        if any(n_orient not in (1, 8) for _, _, n_orient, _, _ in self.slots):
            raise ValueError(f"a part has 1 orientation or 8 (dihedral), got {self.slots}")

    @property
    def n_levels(self) -> int:
        return self.grid * (len(self.slots) if self.rule == "sum" else 1)

    def prepare(self, rows: UInt8Array) -> tuple[Any, ...]:
        """``(words, usable)``: every slot's orientations padded to whole 64-bit words."""
        words = [
            _words(rows[:, first + o * size : first + (o + 1) * size])
            for first, size, n_orient, _, _ in self.slots
            for o in range(n_orient)
        ]
        usable = (
            rows[:, self.flags : self.flags + len(self.slots)]
            if self.flags is not None
            else np.ones((len(rows), len(self.slots)), np.uint8)
        )
        return np.ascontiguousarray(np.concatenate(words, axis=1)), np.ascontiguousarray(usable)

    def args(self) -> tuple[Any, ...]:
        table, first = [], 0
        for _, size, n_orient, num, den in self.slots:
            n_words = -(-size // 8)
            table.append((first, n_words, n_orient, num, den))
            first += n_words * n_orient
        rule = ("max", "min", "sum").index(self.rule)
        return np.array(table, np.int64), rule, self.flags is not None, self.grid


#: Independent partial sums per float distance (see :meth:`VectorPlan.distances`).
LANES = 4


@dataclass(frozen=True)
class VectorPlan:
    """Float distances binned to integer levels: ``clip(rint(d / top * levels), 0, levels)``.

    ``kind`` is ``"cosine"`` (``1 - cos``; two zero vectors at 0, a zero vector against
    another at 1), ``"l1"`` or ``"l2"`` of rows of little-endian float32, or
    ``"weighted_hamming"`` of packed bits (the weight of the differing bits over the total
    weight, ``weights`` MSB first).
    """

    kind: str
    levels: int
    top: float
    weights: tuple[float, ...] = ()

    @property
    def pair(self) -> str:
        return "weighted" if self.kind == "weighted_hamming" else self.kind

    @property
    def n_levels(self) -> int:
        return self.levels

    def prepare(self, rows: UInt8Array) -> tuple[Any, ...]:
        """``(bytes,)`` for weighted Hamming; else ``(float64 vectors, all-zero flags)``, the
        vectors scaled to unit length for cosine."""
        if self.kind == "weighted_hamming":
            return (np.ascontiguousarray(rows),)
        v = np.ascontiguousarray(rows).view("<f4").astype(np.float64)
        norm = np.sqrt((v * v).sum(axis=1))
        zero = norm == 0
        if self.kind == "cosine":
            v = np.divide(v, norm[:, None], out=np.zeros_like(v), where=~zero[:, None])
        return v, zero.astype(np.uint8)

    def _table(self) -> tuple[npt.NDArray[np.float64], float]:
        """``table[b, x]``: the weight of the set bits of byte value ``x`` at byte ``b``; and
        the total weight."""
        w = np.asarray(self.weights, dtype=np.float64)
        padded = np.zeros(-(-len(w) // 8) * 8)
        padded[: len(w)] = w
        bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(bool)
        table = np.zeros((len(padded) // 8, 256))
        for k in range(8):  # bit by bit, MSB first: the same sums whichever backend reads them
            table += np.where(bits[None, :, k], padded.reshape(-1, 8)[:, k, None], 0.0)
        return table, float(w.sum())

    def args(self) -> tuple[Any, ...]:
        if self.kind == "weighted_hamming":
            table, total = self._table()
            return table, total, float(self.top), self.levels
        return float(self.top), self.levels

    def distances(
        self, queries: UInt8Array, references: UInt8Array, paired: bool = False
    ) -> npt.NDArray[np.float64]:
        """The real-valued distances in numpy, shape ``(nq, nr)`` (or ``(n,)`` of the pairs
        ``(queries[i], references[i])`` when ``paired``): vectorised over pairs, and for each
        pair the compiled kernels' operations in their order (weighted Hamming: byte by byte;
        vectors: dimensions ``m, m + 4, ...`` summed in order into lane ``m``, then ``(lane0 +
        lane1) + (lane2 + lane3)``)."""
        q, r = self.prepare(queries), self.prepare(references)

        def column(x: npt.NDArray[Any], y: npt.NDArray[Any], k: int) -> tuple[Any, Any]:
            """Column ``k`` of both sides, shaped to meet every pair."""
            return (x[:, k], y[:, k]) if paired else (x[:, k, None], y[None, :, k])

        acc = np.zeros(len(queries) if paired else (len(queries), len(references)))
        if self.kind == "weighted_hamming":
            table, total = self._table()
            for b in range(q[0].shape[1]):
                x, y = column(q[0], r[0], b)
                acc += table[b][x ^ y]
            return acc / total
        (qv, qz), (rv, rz) = q, r
        step = np.empty_like(acc)

        def lane(m: int) -> npt.NDArray[np.float64]:
            """Terms of dimensions m, m + 4, ... summed in order (the compiled lanes)."""
            total = np.zeros_like(acc)
            for k in range(m, qv.shape[1], LANES):
                x, y = column(qv, rv, k)
                if self.kind == "cosine":
                    np.multiply(x, y, out=step)
                else:
                    np.subtract(x, y, out=step)
                    if self.kind == "l1":
                        np.abs(step, out=step)
                    else:
                        np.multiply(step, step, out=step)
                total += step
            return total

        acc = lane(0) + lane(1)
        acc += lane(2) + lane(3)  # (lane0 + lane1) + (lane2 + lane3)
        if self.kind == "cosine":
            x, y = (qz, rz) if paired else (qz[:, None], rz[None, :])
            return np.where((x == 1) & (y == 1), 0.0, 1.0 - acc)
        return np.sqrt(acc) if self.kind == "l2" else acc

    def __call__(
        self, queries: UInt8Array, references: UInt8Array, paired: bool = False
    ) -> IntArray:
        """Distance levels, shape ``(nq, nr)`` (``(n,)`` when ``paired``)."""
        levels = np.rint(self.distances(queries, references, paired) / self.top * self.levels)
        return np.clip(levels, 0, self.levels).astype(np.int64)


Plan = FusedPlan | VectorPlan


def plan_of(metric: Metric | None) -> Plan | None:
    """The compiled plan of ``metric``: what its ``plan()`` method returns (None for Hamming,
    a metric without that method, or one whose ``plan()`` returns None)."""
    planner = getattr(metric, "plan", None)
    return planner() if callable(planner) else None


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
    """Whether to run a compiled kernel on ``n_pairs`` pairs of ``n_bytes``-byte rows: never
    for ``"numpy"`` or a metric without a compiled plan."""
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
    if backend == "numpy" or (metric is not None and plan_of(metric) is None):
        return False
    # Once this process has loaded the compiled kernels (a larger call did), they are the
    # cheaper choice at any size.
    if backend == "numba" or "harness._compiled" in sys.modules:
        return True
    if metric is not None:
        return n_pairs > SMALL_METRIC_PAIRS
    return n_pairs * -(-n_bytes // 8) > SMALL_PAIRS


def _planned(
    driver: str, metric: Metric | None, n_bins: int | None, n_pairs: int
) -> tuple[Plan, Callable[..., Any], int, tuple[Any, ...]]:
    """``(plan, kernel, threads, args)`` of ``metric``'s compiled ``driver`` (see
    :func:`harness._compiled.metric_kernel`) for ``n_pairs`` pairs into ``n_bins`` bins."""
    import numba

    from harness import _compiled

    plan = plan_of(metric)
    if plan is None:  # pragma: no cover - _compiled_for rules it out
        raise TypeError(f"{metric!r} has no compiled plan")
    if n_bins is not None and n_bins <= plan.n_levels:
        raise ValueError(f"{n_bins} bins cannot hold this metric's {plan.n_levels + 1} levels")
    parallel = n_pairs > PARALLEL_PAIRS
    threads = int(numba.get_num_threads()) if parallel else 1
    return plan, _compiled.metric_kernel(driver, plan.pair, parallel), threads, plan.args()


def hamming(a: npt.ArrayLike, b: npt.ArrayLike, metric: Metric | None = None) -> IntArray:
    """Row-wise distances between ``a[i]`` and ``b[i]``; shapes ``(n, n_bytes)`` -> ``(n,)``."""
    a, b = _as_packed(a), _as_packed(b)
    plan = plan_of(metric)
    if isinstance(plan, VectorPlan):  # all rows at once, each pair's sum in the kernels' order
        return plan(a, b, paired=True)
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
        if metric is not None:
            plan, kernel, threads, args = _planned("histogram", metric, n_bits + 1, n_pairs)
            p, n = plan.prepare(x), len(x)
            return _int64(
                kernel(p, p, n, n, g, g, groups is not None, True, n_bits + 1, threads, args)
            )
        kernel, threads = _compiled_kernel("histogram", n_pairs)
        w = _words(x)
        return _int64(kernel(w, w, g, g, groups is not None, True, n_bits + 1, threads))
    hist = np.zeros(n_bits + 1, dtype=np.int64)
    for _, d, keep in _blocks(x, x, g, g, groups is not None, True, block, metric):
        hist += np.bincount(d[keep], minlength=n_bits + 1)
    return hist


def all_pairs_row_histograms(
    x: npt.ArrayLike,
    n_bits: int,
    members: npt.ArrayLike,
    groups: npt.ArrayLike | None = None,
    block: int = DEFAULT_BLOCK,
    *,
    metric: Metric | None = None,
) -> IntArray:
    """Per row ``k``, the histogram of its unordered pairs ``{k, j}`` with ``members[j]``.

    Each pair ``i < j`` is at the distance :func:`all_pairs_histogram` gives it (row ``i`` the
    query) in both its rows, so an asymmetric metric's pair falls in one bin: with every row a
    member, the rows sum to twice that histogram. numpy blocks (the compiled kernels count per
    query row only).

    Returns
    -------
    rows : int64 array, shape (n, n_bits + 1)
    """
    x = _as_packed(x)
    _check_bins(n_bits, x.shape[1], metric)
    g = _labels(groups, len(x), "groups")
    m = np.asarray(members, dtype=bool)
    bins = n_bits + 1
    out = np.zeros(len(x) * bins, dtype=np.int64)
    for start, d, keep in _blocks(x, x, g, g, groups is not None, True, block, metric):
        i = np.arange(start, start + len(d))[:, None]
        j = np.arange(len(x))[None, :]
        out += np.bincount((i * bins + d)[keep & m[None, :]], minlength=len(out))  # row i
        out += np.bincount((j * bins + d)[keep & m[i]], minlength=len(out))  # row j
    return out.reshape(len(x), bins)


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
        if metric is not None:
            driver = "row_histograms" if per_query else "histogram"
            plan, kernel, threads, args = _planned(driver, metric, n_bits + 1, len(q) * len(r))
            sides = (plan.prepare(q), plan.prepare(r), len(q), len(r), qg, rg, use_groups)
            if per_query:
                return _int64(kernel(*sides, n_bits + 1, args))
            return _int64(kernel(*sides, False, n_bits + 1, threads, args))
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
        if metric is not None:
            plan, kernel, _, args = _planned("nearest", metric, None, len(q) * len(r))
            dist, index = kernel(
                plan.prepare(q), plan.prepare(r), len(q), len(r), qg, rg, use_groups, args
            )
        else:
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

    if metric is not None:  # the metric's kernels take the prepared rows and their counts
        plan, histogram, threads, args = _planned("histogram", metric, None, n_pairs)
        _, collect, _, _ = _planned("collect", metric, None, n_pairs)
        rows: tuple[Any, ...] = (plan.prepare(q), plan.prepare(r), len(q), len(r))
        extra: tuple[Any, ...] = (args,)
        n_bits = plan.n_levels
    else:
        histogram, threads = _compiled_kernel("histogram", n_pairs)
        collect, _ = _compiled_kernel("collect", n_pairs)
        rows = (_words(q), _words(r))
        n_bits, extra = 64 * rows[0].shape[1], ()
    hist = histogram(*rows, qg, rg, use_groups, triangle, n_bits + 1, threads, *extra)
    cumulative = np.cumsum(hist[: threshold + 1])
    if cumulative[-1] <= limit:  # everything within the threshold fits
        below, tie, need = threshold + 1, -1, 0
    else:  # the limit falls inside distance `tie`: keep all closer pairs, then the first ties
        tie = int(np.searchsorted(cumulative, limit))
        below = tie
        need = limit - (int(cumulative[tie - 1]) if tie else 0)
    capacity = min(int(cumulative[-1]), limit)
    pairs = collect(
        *rows, qg, rg, use_groups, triangle, below, tie, need, capacity, threads, *extra
    )
    pairs = pairs.reshape(-1, 3)
    pairs = pairs[pairs[:, 0] >= 0]
    ordered = sorted(map(tuple, pairs.tolist()))[:limit]
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
