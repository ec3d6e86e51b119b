"""Throughput of the all-pairs Hamming histogram kernel, in pairs per second.

Run explicitly (not part of the test suite)::

    python benchmarks/perf/bench_kernels.py --n 20000 --bits 64 256

Random hashes from a seeded generator; each configuration is timed once after a warm-up on a small
slice. Report ratios between kernels measured in the same run, never absolute times across runs:
the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from harness import kernels


def measure(n: int, n_bits: int, block: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    packed = np.packbits(rng.integers(0, 2, size=(n, n_bits), dtype=np.uint8).astype(bool), axis=1)
    kernels.all_pairs_histogram(packed[:256], n_bits, block=block)  # warm-up
    start = time.perf_counter()
    hist = kernels.all_pairs_histogram(packed, n_bits, block=block)
    elapsed = time.perf_counter() - start
    pairs = n * (n - 1) // 2
    if int(hist.sum()) != pairs:
        raise RuntimeError("histogram does not account for every pair")
    return {"pairs": pairs, "seconds": elapsed, "pairs_per_s": pairs / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="number of hashes")
    parser.add_argument("--bits", type=int, nargs="+", default=[64, 256], help="hash lengths")
    parser.add_argument("--block", type=int, default=kernels.DEFAULT_BLOCK, help="rows per block")
    args = parser.parse_args()
    print(f"{'kernel':<10} {'bits':>5} {'N':>8} {'pairs':>14} {'seconds':>9} {'pairs/s':>10}")
    for n_bits in args.bits:
        r = measure(args.n, n_bits, args.block)
        print(
            f"{'numpy':<10} {n_bits:>5} {args.n:>8} {r['pairs']:>14,} {r['seconds']:>9.2f} "
            f"{r['pairs_per_s']:>10.3g}"
        )


if __name__ == "__main__":
    main()
