"""Cost of the flagged-share answer: exact curve + beta-binomial fit + bootstrap refits.

Run explicitly (not part of the test suite)::

    python benchmarks/perf/bench_flagged.py            # 1,000, 10,000 and 100,000 images
    python benchmarks/perf/bench_flagged.py --n 10000

Per-image match counts are drawn from a seeded BetaBinomial(N - 1, 0.05, 300), which is what a
clip-art corpus at PDQ <= 31 looks like (about a quarter of images with a match). Timed:
:func:`harness.flagged.flagged_share` at the default sizes (1e6, 1e7): the measured curve with
its 1,000 bootstrap resamples, the fit, and its 200 bootstrap refits, best of three. For
reference 20 refits are timed vectorised and one scipy optimisation per resample;
their ratio, measured in the same run, is what to compare across machines.

Target (flagged-share issue): under one second at 10,000 images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import betabinom

from harness import flagged


def _counts(n: int, seed: int = 0) -> flagged.MatchCounts:
    rng = np.random.default_rng(seed)
    m = betabinom.rvs(n - 1, 0.05, 300.0, size=n, random_state=rng).astype(np.int64)
    return flagged.MatchCounts(m, np.full(n, n - 1, np.int64), np.ones(n, bool))


def _best(fn, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(n: int) -> str:
    """One line: the whole answer's time, and refit cost vectorised against one by one."""
    counts = _counts(n)
    total = _best(lambda: flagged.flagged_share(counts))
    m, pool, _, weight = flagged._distinct(counts)
    fit = flagged.fit_beta_binomial(m, pool, weight)
    w = np.random.default_rng(1).multinomial(n, weight / n, size=20).astype(float)
    vectorised = _best(lambda: flagged._refits(m, pool, w, fit)) / len(w)
    start = time.perf_counter()
    for row in w:
        flagged.fit_beta_binomial(m, pool, row, (fit.a, fit.b))
    one_by_one = (time.perf_counter() - start) / len(w)
    return (
        f"N={n:>7,}: {counts.n_matched:,} matched queries, {len(m):,} distinct counts; "
        f"curve + fit + {flagged.MODEL_RESAMPLES} refits {total:.3f} s; per refit "
        f"{vectorised * 1e3:.2f} ms vectorised vs {one_by_one * 1e3:.2f} ms one scipy "
        f"optimisation each ({one_by_one / vectorised:.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    for n in args.n:
        print(measure(n))


if __name__ == "__main__":
    main()
