"""Peak memory of the threshold statistics stage at two corpus sizes: it must grow linearly.

Run explicitly::

    python benchmarks/perf/bench_statistics.py [--sizes 10000 50000] [--resamples 1000]

Each size runs in a fresh process on synthetic 64-bit hashes (random originals, two edits
flipping 3 and 12 bits, one percent of the heavy edits gated) and measures the stage a run and
``hash-harness threshold`` perform per algorithm: each image's impostor histograms against the
calibration and held-out images, the calibrated threshold at two targets with BCa bootstrap
intervals by source image, and a given threshold scored on every image. Printed: the process's
resident memory before the stage, its peak during it (``ru_maxrss``), and the ratio of the peaks
between the largest and smallest size. Five times the images in linear memory gives a ratio
near 5; the old all-at-once BCa jackknife (``n x (n - 1)`` arrays) grew with the square.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CHILD = """
import json, resource, sys, time
import numpy as np
from harness.thresholds import AlgorithmHashes, recommend, score_at, split_images

n, resamples = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
bits = rng.random((n, 64)) < 0.5
edited, gated = [], np.zeros((2, n), bool)
for c, flips in enumerate((3, 12)):
    e = bits.copy()
    cols = np.argsort(rng.random((n, 64)), axis=1)[:, :flips]
    np.put_along_axis(e, cols, ~np.take_along_axis(e, cols, axis=1), axis=1)
    edited.append(np.packbits(e, axis=1))
gated[1, rng.random(n) < 0.01] = True
data = AlgorithmHashes(
    n_bits=64,
    originals=np.packbits(bits, axis=1),
    originals_ok=np.ones(n, bool),
    edited=np.stack(edited),
    edited_ok=~gated,
    edited_gated=gated,
    groups=np.arange(n),
    chain_ids=("light", "heavy"),
)
ids = [f"img{i:06d}" for i in range(n)]
calibration = split_images(ids, 0.5, seed=0)
with open("/proc/self/statm") as fh:
    before = int(fh.read().split()[1]) * resource.getpagesize() / 2**20
start = time.monotonic()
ev = data.evidence(calibration)
answers = [recommend(ev, f, resamples=resamples) for f in (1e-3, 1e-6)]
fixed = score_at(ev, 10, resamples=resamples)
elapsed = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"n": n, "before_mib": before, "peak_mib": peak, "seconds": elapsed,
                  "threshold": answers[0]["threshold"], "status": answers[1]["status"],
                  "fpr_boot": fixed["fpr"]["bootstrap_ci95"]}))
"""


def measure(n: int, resamples: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(resamples)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        started = time.monotonic()
        row = measure(n, args.resamples)
        rows.append(row)
        print(
            f"{n:>7,} images: RSS before the stage {row['before_mib']:7.1f} MiB, peak "
            f"{row['peak_mib']:7.1f} MiB; stage {row['seconds']:6.1f} s "
            f"(process {time.monotonic() - started:.1f} s); threshold at 1e-3: "
            f"{row['threshold']}, 1e-6: {row['status']}"
        )
    small, large = rows[0], rows[-1]
    ratio = large["peak_mib"] / small["peak_mib"]
    growth = large["n"] / small["n"]
    print(
        f"peak RSS ratio {ratio:.2f} for {growth:g}x the images "
        f"({'linear: below 8' if ratio < 8 else 'NOT linear: 8 or more'})"
    )
    if ratio >= 8:
        sys.exit(1)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
