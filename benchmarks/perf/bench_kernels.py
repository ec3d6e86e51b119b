"""All-pairs Hamming histogram throughput: compiled (numba) kernel vs the numpy reference.

Run explicitly (not part of the test suite)::

    python benchmarks/perf/bench_kernels.py     # N = 20,000 and 100,000; 64 and 256 bits
    python benchmarks/perf/bench_kernels.py --n 20000 --bits 64
    python benchmarks/perf/bench_kernels.py --metrics   # policies and vector metrics

Random hashes from a seeded generator. The compiled kernel is warmed up (compiled) on a small slice,
then timed over all ``N(N-1)/2`` pairs. The numpy reference is far slower, so it is timed on the
first ``--numpy-rows`` rows against all later rows; both give pairs per second, and the ratio of
the two, measured in the same run, is what to compare across machines (the machine is shared and
noisy, absolute times are not). Peak memory is the process's maximum resident set size after
the compiled runs, with every input array held.

Targets (DESIGN and the statistics issue): >= 2e9 pairs/s for 64-bit and >= 5e8 for 256-bit on
two cores; peak memory for N = 100,000 under 1 GB.

C reference: ``popcount_ref.c`` beside this file (XOR + popcount, four sub-histograms, the loop a
hand-written C kernel would use) is compiled with the system C compiler (``$CC``, default ``cc``;
``-O3 -march=native``, as numba also compiles for the host CPU) and called through ctypes on the
same array. Each N is timed one thread against one thread, alternating C and numba ``--repeat``
times; the best time of each is kept (the least disturbed by other processes on a shared machine).
Target (the floor issue): numba >= 0.8x of C for 64-bit hashes at N = 100,000.

Metrics (``--metrics``): the compiled kernels of :data:`METRICS` (fusions of PDQ and pHash,
dihedral pHash, cosine / L1 / L2 of 64-dimensional float32 vectors, weighted Hamming over 64
bits) against their numpy path, on random rows of the right layout (a third of them a few bits
or a small step from another row, so that distances spread). At each N the compiled all-pairs
histogram is timed over every pair when there are at most ``--all-pairs-max`` of them, else the
cross histogram of the first rows against all N (``--metric-pairs`` pairs: the reference side
at full size); numpy is timed on ``--numpy-rows`` rows against all N. Both histograms are
checked against each other on the rows numpy saw.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from harness import kernels


def _hashes(n: int, n_bits: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.packbits(rng.random((n, n_bits)) < 0.5, axis=1)


def compiled(packed: np.ndarray, n_bits: int) -> float:
    kernels.all_pairs_histogram(packed[:256], n_bits, backend="numba")  # compile / load from cache
    start = time.perf_counter()
    hist = kernels.all_pairs_histogram(packed, n_bits, backend="numba")
    elapsed = time.perf_counter() - start
    n = len(packed)
    if int(hist.sum()) != n * (n - 1) // 2:
        raise RuntimeError("histogram does not account for every pair")
    return n * (n - 1) / 2 / elapsed


def reference(packed: np.ndarray, n_bits: int, rows: int) -> float:
    """Pairs/s of the numpy backend on the first ``rows`` rows against every later row."""
    n = len(packed)
    rows = min(rows, n - 1)
    start = time.perf_counter()
    hist = kernels.cross_histogram(packed[:rows], packed, n_bits, backend="numpy")
    elapsed = time.perf_counter() - start
    # Every (row, column) pair is counted: rows * n of them, self-pairs included.
    if int(hist.sum()) != rows * n:
        raise RuntimeError("reference histogram does not account for every pair")
    return rows * n / elapsed


def c_reference() -> ctypes.CDLL:
    """Compile ``popcount_ref.c`` into a temporary shared library and load it."""
    source = Path(__file__).with_name("popcount_ref.c")
    lib = Path(tempfile.mkdtemp(prefix="hash-harness-bench-")) / "popcount_ref.so"
    compiler = os.environ.get("CC", "cc")
    flags = ["-O3", "-march=native", "-shared", "-fPIC"]
    subprocess.run([compiler, *flags, "-o", str(lib), str(source)], check=True)
    ref = ctypes.CDLL(str(lib))
    ref.all_pairs_hist64.restype = None
    ref.all_pairs_hist64.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    return ref


def against_c(ref: ctypes.CDLL, packed: np.ndarray, repeat: int) -> tuple[float, float]:
    """Best pairs/s of the C reference and of the numba kernel, one thread each, alternated."""
    words = kernels._words(packed)
    n = len(words)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        kernels.all_pairs_histogram(packed[:256], 64, backend="numba")  # compiled / loaded
        best_c = best_numba = float("inf")
        for _ in range(repeat):
            hist_c = np.zeros(65, np.int64)
            start = time.perf_counter()
            ref.all_pairs_hist64(words.ctypes.data, n, hist_c.ctypes.data)
            best_c = min(best_c, time.perf_counter() - start)
            start = time.perf_counter()
            hist = kernels.all_pairs_histogram(packed, 64, backend="numba")
            best_numba = min(best_numba, time.perf_counter() - start)
            if not np.array_equal(hist, hist_c):
                raise RuntimeError("numba and C histograms differ")
    finally:
        numba.set_num_threads(threads)
    pairs = n * (n - 1) / 2
    return pairs / best_c, pairs / best_numba


#: Metric kernels timed by ``--metrics``: (label, algorithm or vector measure).
METRICS = (
    ("dihedral(phash)", "dihedral(phash)"),
    ("pdq & phash", "pdq & phash"),
    ("pdq | phash", "pdq | phash"),
    ("pdq + phash", "pdq + phash"),
    ("cosine, 64 dims", ("cosine", 64)),
    ("L1, 64 dims", ("l1", 64)),
    ("L2, 64 dims", ("l2", 64)),
    ("weighted Hamming, 64 bits", ("weighted_hamming", 64)),
)


def _metric_rows(spec: object, n: int, seed: int = 0) -> tuple[np.ndarray, int, object]:
    """``(rows, levels, metric)`` of ``n`` random rows for a :data:`METRICS` entry."""
    from harness.algorithms import make_algorithm
    from harness.algorithms.vectors import VectorMetric

    rng = np.random.default_rng(seed)
    if isinstance(spec, str):
        unit = make_algorithm(spec)
        rows = rng.integers(0, 256, (n, unit.n_bytes), dtype=np.uint8)
        if getattr(unit, "partial", False):  # usable flags: mostly 1
            rows[:, -len(unit.parts) :] = rng.random((n, len(unit.parts))) < 0.9
        near = rng.random(n) < 0.3
        rows[near] = rows[rng.integers(0, n, int(near.sum()))] ^ (
            rng.random((int(near.sum()), unit.n_bytes)) < 0.02
        ).astype(np.uint8)
        if getattr(unit, "partial", False):
            rows[:, -len(unit.parts) :] &= 1
        return rows, unit.n_levels, unit.metric()
    kind, size = spec
    if kind == "weighted_hamming":
        weights = tuple(rng.uniform(0.1, 3.0, size).tolist())
        return _hashes(n, size, seed), 1000, VectorMetric(kind, 1000, 1.0, weights)
    v = rng.normal(size=(n, size)).astype("<f4")
    near = rng.random(n) < 0.3
    v[near] = v[rng.integers(0, n, int(near.sum()))] + 0.1 * rng.normal(
        size=(int(near.sum()), size)
    )
    top = {"cosine": 2.0, "l1": 80.0, "l2": 16.0}[kind]
    return np.ascontiguousarray(v).view(np.uint8), 1000, VectorMetric(kind, 1000, top)


def warm_up(rows: np.ndarray, levels: int, metric: object) -> None:
    """Compile (or load) the threaded and the serial kernels on a few rows."""
    small = kernels.PARALLEL_PAIRS
    try:
        for kernels.PARALLEL_PAIRS in (0, small):
            kernels.all_pairs_histogram(rows[:64], levels, backend="numba", metric=metric)
            kernels.cross_histogram(rows[:8], rows[:64], levels, backend="numba", metric=metric)
    finally:
        kernels.PARALLEL_PAIRS = small


def metrics(sizes: list[int], numpy_rows: int, all_pairs_max: int, cross_pairs: int) -> None:
    """Pairs/s of every :data:`METRICS` kernel, compiled and numpy, at each N in ``sizes``."""
    print(f"threads: {numba.get_num_threads()} (numba)")
    header = f"{'metric':<27} {'N':>7} {'compiled pairs/s':>17} {'timed over':>22}"
    print(f"{header} {'numpy pairs/s':>14} {'ratio':>6}")
    for label, spec in METRICS:
        for n in sizes:
            rows, levels, metric = _metric_rows(spec, n)
            warm_up(rows, levels, metric)
            all_pairs = n * (n - 1) // 2
            start = time.perf_counter()
            if all_pairs <= all_pairs_max:
                hist = kernels.all_pairs_histogram(rows, levels, backend="numba", metric=metric)
                pairs, what = all_pairs, "all pairs"
            else:
                q = max(1, cross_pairs // n)
                hist = kernels.cross_histogram(
                    rows[:q], rows, levels, backend="numba", metric=metric
                )
                pairs, what = q * n, f"{q} rows x N"
            fast = pairs / (time.perf_counter() - start)
            if int(hist.sum()) != pairs:
                raise RuntimeError(f"{label}: the histogram does not account for every pair")
            q = min(numpy_rows, n)
            start = time.perf_counter()
            slow_hist = kernels.cross_histogram(
                rows[:q], rows, levels, backend="numpy", metric=metric
            )
            slow = q * n / (time.perf_counter() - start)
            check = kernels.cross_histogram(rows[:q], rows, levels, backend="numba", metric=metric)
            if not np.array_equal(check, slow_hist):
                raise RuntimeError(f"{label}: compiled and numpy histograms differ")
            print(f"{label:<27} {n:>7} {fast:>17.3g} {what:>22} {slow:>14.3g} {fast / slow:>6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20_000, 100_000], help="hash counts")
    parser.add_argument("--bits", type=int, nargs="+", default=[64, 256], help="hash lengths")
    parser.add_argument("--numpy-rows", type=int, default=256, help="rows timed for numpy")
    parser.add_argument("--repeat", type=int, default=5, help="alternations against C")
    parser.add_argument("--metrics", action="store_true", help="policy and vector metrics")
    parser.add_argument("--all-pairs-max", type=int, default=10**9, help="--metrics only")
    parser.add_argument("--metric-pairs", type=int, default=2 * 10**8, help="--metrics only")
    args = parser.parse_args()
    if args.metrics:
        sizes = args.n if args.n != parser.get_default("n") else [10_000, 100_000]
        metrics(sizes, args.numpy_rows, args.all_pairs_max, args.metric_pairs)
        return
    print(f"threads: {numba.get_num_threads()} (numba)")
    configs = [(n, n_bits, _hashes(n, n_bits)) for n in args.n for n_bits in args.bits]
    fast = [compiled(packed, n_bits) for _, n_bits, packed in configs]
    # Measured before the numpy reference runs: its row blocks are the larger allocation.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    slow = [reference(packed, n_bits, args.numpy_rows) for _, n_bits, packed in configs]
    print(f"{'bits':>5} {'N':>8} {'numba pairs/s':>14} {'numpy pairs/s':>14} {'ratio':>7}")
    for (n, n_bits, _), f, s in zip(configs, fast, slow, strict=True):
        print(f"{n_bits:>5} {n:>8} {f:>14.3g} {s:>14.3g} {f / s:>7.0f}")
    print(f"peak resident memory with the compiled kernel (all inputs held): {peak_mb:.0f} MB")
    ref = c_reference()
    print("64-bit, one thread, numba vs the C reference (best of --repeat, alternated):")
    print(f"{'N':>8} {'C pairs/s':>14} {'numba pairs/s':>14} {'numba / C':>10}")
    for n, n_bits, packed in configs:
        if n_bits == 64:
            c, f = against_c(ref, packed, args.repeat)
            print(f"{n:>8} {c:>14.3g} {f:>14.3g} {f / c:>10.2f}")


if __name__ == "__main__":
    main()
