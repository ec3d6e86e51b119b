"""Runner performance: harness overhead, parallel efficiency, cache hits (ratios in one run).

Run explicitly (about three minutes on two cores)::

    python benchmarks/perf/bench_runner.py [--dataset skimage_tiles] [--images 200]
        [--suites default algorithms]

Work: N distinct images x 4 transforms (identity, JPEG q50, half-size resize, 90% centre crop)
x 5 algorithms (aHash, dHash, pHash, wHash, PDQ). Measured in the same process, one after another:

* bare loop: decode, transform, hash with the libraries directly - the floor;
* harness, 1 worker, no cache: ``hash_corpus`` (the hashing stage of a run);
  overhead = harness / bare (target <= 1.15);
* harness, 2 workers, no cache: parallel efficiency = t(1) / (2 t(2)) (target >= 0.85), on the
  images repeated ``--repeat`` times so that the two worker processes' start-up (about a second:
  Python, Pillow, scipy, pdqhash imports) is small against the work, as in any real run;
* harness, 1 worker, cold cache then warm cache: warm / cold (target < 0.10);
* the whole ``hash-harness run`` command (fresh processes, 2 workers, every report written) on
  the embedded corpus with each of ``--suites``, with an empty cache and then again: warm / cold.
  A repeated run still evaluates and writes every report (about 3 s of imports, statistics and
  plots), so this ratio is under 0.10 only when hashing is most of the first run - as in the
  20-algorithm ``algorithms`` suite, and in any corpus of real size.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from datasets_benign import open_dataset
from harness.algorithms import make_algorithm
from harness.runner import hash_corpus
from harness.store import HashStore
from transforms import parse_chain

TRANSFORMS = ("identity", "jpeg(quality=50)", "resize(scale=0.5)", "crop(keep_area=0.81)")
ALGORITHMS = ("average_hash", "dhash", "phash", "whash", "pdq(quality_gate=0)")


def bare(records, chains, algos, seed) -> float:
    start = time.perf_counter()
    for record in records:
        image = record.load()
        for chain in chains:
            edited = chain.apply(image, suite_seed=seed, image_id=record.id)
            for algo in algos:
                algo.hash(edited)
    return time.perf_counter() - start


def timed(data, chains, algos, **kw) -> float:
    start = time.perf_counter()
    hash_corpus(data, chains, algos, seed=0, **kw)
    return time.perf_counter() - start


def command(suite: Path, cache: Path, out: Path) -> float:
    """Seconds for one ``hash-harness run`` as a fresh process, with its own cache file."""
    cmd = [sys.executable, "-m", "harness", "run", "--suite", str(suite), "--quiet"]
    start = time.perf_counter()
    subprocess.run([*cmd, "--cache", str(cache), "--out", str(out)], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="skimage_tiles")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument(
        "--repeat", type=int, default=4, help="copies of the images for the parallel test"
    )
    parser.add_argument(
        "--suites",
        nargs="*",
        default=["default", "algorithms"],
        help="suites in benchmarks/suites/ for the whole-command cache test",
    )
    args = parser.parse_args()
    data = open_dataset(f"{args.dataset}[{args.images}]")
    chains = tuple(parse_chain(t) for t in TRANSFORMS)
    algos = tuple(make_algorithm(a) for a in ALGORITHMS)
    # The harness treats identity as a column of its own, like any edit; the bare loop does too.
    hash_corpus(data, chains[:1], algos[:1], seed=0)  # warm imports and numba/pdqhash caches
    t_bare = bare(data.records, chains, algos, 0)
    t_one = timed(data, chains[1:], algos, workers=1)  # original column + 3 edits = 4 columns
    many = dataclasses.replace(
        data,
        records=tuple(
            dataclasses.replace(r, id=f"{k}/{r.id}")
            for k in range(args.repeat)
            for r in data.records
        ),
    )
    t_many_one = timed(many, chains[1:], algos, workers=1)
    t_many_two = timed(many, chains[1:], algos, workers=2)
    with tempfile.TemporaryDirectory() as tmp, HashStore(Path(tmp) / "c.sqlite") as store:
        t_cold = timed(data, chains[1:], algos, workers=1, store=store)
        t_warm = timed(data, chains[1:], algos, workers=1, store=store)
    n = len(data.records)
    print(
        f"work: {n} images x {len(TRANSFORMS)} columns x {len(ALGORITHMS)} algorithms; cpus {os.cpu_count()}"
    )
    print(f"bare library loop         {t_bare:8.2f} s")
    print(
        f"harness, 1 worker         {t_one:8.2f} s   overhead ratio {t_one / t_bare:.3f} (target <= 1.15)"
    )
    print(
        f"x{args.repeat} images: 1 worker {t_many_one:.2f} s, 2 workers {t_many_two:.2f} s   "
        f"parallel efficiency {t_many_one / (2 * t_many_two):.3f} (target >= 0.85)"
    )
    print(
        f"cache cold / warm         {t_cold:8.2f} / {t_warm:.2f} s   warm/cold {t_warm / t_cold:.3f} (target < 0.10)"
    )
    suites = Path(__file__).resolve().parent.parent / "suites"
    for name in args.suites:
        with tempfile.TemporaryDirectory() as tmp:
            cache, suite = Path(tmp) / "c.sqlite", suites / f"{name}.toml"
            cold = command(suite, cache, Path(tmp) / "cold")
            warm = command(suite, cache, Path(tmp) / "warm")
        print(
            f"hash-harness run --suite {name}: cold {cold:.2f} s, warm {warm:.2f} s   "
            f"warm/cold {warm / cold:.3f} (target < 0.10)"
        )


if __name__ == "__main__":
    main()
