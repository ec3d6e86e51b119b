"""All-pairs Hamming histogram throughput: compiled (numba) kernel vs the numpy reference.

Run explicitly (not part of the test suite)::

    python benchmarks/perf/bench_kernels.py     # N = 20,000 and 100,000; 64 and 256 bits
    python benchmarks/perf/bench_kernels.py --n 20000 --bits 64

Random hashes from a seeded generator. The compiled kernel is warmed up (compiled) on a small slice,
then timed over all ``N(N-1)/2`` pairs. The numpy reference is far slower, so it is timed on the
first ``--numpy-rows`` rows against all later rows; both give pairs per second, and the ratio of
the two, measured in the same run, is what to compare across machines (the machine is shared and
noisy, absolute times are not). Peak memory is the process's maximum resident set size after
the compiled runs, with every input array held.

Targets (DESIGN and the statistics issue): >= 2e9 pairs/s for 64-bit and >= 5e8 for 256-bit on
two cores; peak memory for N = 100,000 under 1 GB.
"""

from __future__ import annotations

import argparse
import resource
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20_000, 100_000], help="hash counts")
    parser.add_argument("--bits", type=int, nargs="+", default=[64, 256], help="hash lengths")
    parser.add_argument("--numpy-rows", type=int, default=256, help="rows timed for numpy")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
