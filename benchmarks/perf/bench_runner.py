"""Runner performance: the whole command against a bare script of the same library calls.

Run explicitly (about five minutes on two cores)::

    python benchmarks/perf/bench_runner.py [--repeat 5]          # whole command (default)
    python benchmarks/perf/bench_runner.py --stages [--images 200]  # hashing stage only

Whole command (what a user waits for), every process fresh, measured in one run with the
configurations interleaved ``--repeat`` times; each ratio is the median over repetitions of the
ratio of neighbouring runs (the load of a shared machine drifts between repetitions):

* ``hash-harness run --no-cache --quiet`` (default suite: 14 edits x 5 algorithms; all cores,
  every report written) on the 17 embedded images and on the 330 ``skimage_tiles``;
* the floor: a bare script (:data:`BARE`) making the same library calls - decode each source
  file once, crop its tiles, apply each edit, hash the original and each edit with each
  algorithm (identity edits are not hashed twice, as in the harness) - in a 2-process pool,
  and nothing else: no cache, statistics or reports;
  targets (the floor issue): harness / bare <= 1.3 at 17 images, <= 1.15 at 330 tiles;
* ``hash-harness run --quiet`` of the default suite with a warm cache against the cold run
  that filled it: target <= 0.3;
* the CPU seconds of hash-harness's main process (:data:`TIMED`): the work outside the hash
  libraries (imports, statistics, reports), which a busy machine inflates far less than
  wall-clock time.

Stages (``--stages``): N distinct images x 4 transforms (identity, JPEG q50, half-size resize,
90% centre crop) x 5 algorithms (aHash, dHash, pHash, wHash, PDQ), in this process:

* bare loop against ``hash_corpus`` with 1 worker: overhead (target <= 1.15);
* parallel efficiency t(1) / (2 t(2)) on the images repeated ``--copies`` times
  (target >= 0.85);
* hashing stage with a warm cache / cold (target < 0.10).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
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


#: The floor: the same decode, edit and hash calls as ``hash-harness run`` in a 2-process pool.
BARE = r"""
import sys
from multiprocessing import Pool

from datasets_benign import open_dataset
from datasets_benign.decode import load_rgb
from harness.core.errors import HashExcluded
from harness.suite import load_suite

SUITE = load_suite(sys.argv[1])
CHAINS = [c for c in SUITE.transforms if c.id != "identity"]


def hash_all(image):
    out = []
    for algo in SUITE.algorithms:
        try:
            out.append(algo.hash(image).tobytes())
        except HashExcluded:  # PDQ's quality gate
            out.append(None)
    return out


def task(job):
    path, records = job
    source = load_rgb(path)
    hashes = []
    for image_id, crop in records:
        image = source if crop is None else source.crop(crop)
        hashes.append(hash_all(image))
        for chain in CHAINS:
            hashes.append(hash_all(chain.apply(image, suite_seed=SUITE.seed, image_id=image_id)))
    return hashes


if __name__ == "__main__":
    jobs = {}
    for r in open_dataset(sys.argv[2]).records:
        jobs.setdefault(r.path, []).append((r.id, r.crop))
    with Pool(2) as pool:
        n = sum(len(h) for h in pool.imap(task, jobs.items()))
    print(n, "columns hashed", file=sys.stderr)
"""


#: ``hash-harness`` that appends its main process's CPU seconds (all its threads, not its
#: workers) to the file named first: the work a run does outside the hash libraries, which a
#: busy machine inflates far less than wall-clock time.
TIMED = r"""
import atexit, resource, sys

if __name__ == "__main__":
    def cpu():
        use = resource.getrusage(resource.RUSAGE_SELF)
        with open(log, "a") as f:
            f.write(f"{use.ru_utime + use.ru_stime}\n")

    atexit.register(cpu)
    log, sys.argv = sys.argv[1], ["hash-harness", *sys.argv[2:]]
    from harness.cli import console_main

    console_main()
"""


def _seconds(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def whole_command(repeat: int) -> None:
    """The whole ``hash-harness run`` against the bare script, and warm cache against cold."""
    suite = Path(__file__).resolve().parent.parent / "suites" / "default.toml"
    times: dict[str, list[float]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bare.py"
        script.write_text(BARE)
        (Path(tmp) / "timed.py").write_text(TIMED)
        cpu = {d: Path(tmp) / f"cpu-{d}.txt" for d in ("skimage", "skimage_tiles")}
        run = [sys.executable, str(Path(tmp) / "timed.py")]
        run_suite = ["run", "--suite", str(suite), "--quiet"]
        out = str(Path(tmp) / "out")
        for k in range(repeat):
            for dataset in ("skimage", "skimage_tiles"):
                pair = {
                    f"harness {dataset}": [
                        *(*run, str(cpu[dataset]), *run_suite),
                        *("--dataset", dataset, "--no-cache", "--out", out),
                    ],
                    f"bare {dataset}": [sys.executable, str(script), str(suite), dataset],
                }
                for name in sorted(pair, reverse=k % 2 == 1):  # alternate which goes first
                    times.setdefault(name, []).append(_seconds(pair[name]))
            cache = ["--cache", str(Path(tmp) / f"cache{k}.sqlite"), "--out", out]
            cached = [*run, os.devnull, *run_suite, *cache]
            times.setdefault("cold", []).append(_seconds(cached))
            times.setdefault("warm", []).append(_seconds(cached))
        main_cpu = {d: [float(x) for x in f.read_text().split()] for d, f in cpu.items()}

    def ratio(a: str, b: str) -> float:
        """Median over repetitions of the ratio of neighbouring runs: on a shared machine the
        load drifts between repetitions far more than between two neighbouring runs."""
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    med = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"whole command, default suite, cpus {os.cpu_count()}, medians of {repeat}; load "
        f"average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after:"
    )
    for dataset, n, target in (("skimage", 17, 1.3), ("skimage_tiles", 330, 1.15)):
        h, b = f"harness {dataset}", f"bare {dataset}"
        r = ratio(h, b)
        verdict = "met" if r <= target else "NOT met"
        print(
            f"  {n:>3} images ({dataset}): hash-harness run --no-cache {med[h]:6.2f} s, bare "
            f"script {med[b]:6.2f} s   ratio {r:.2f} (target <= {target}: {verdict}); "
            f"hash-harness's main process {statistics.median(main_cpu[dataset]):.2f} s of CPU"
        )
    r = ratio("warm", "cold")
    verdict = "met" if r <= 0.3 else "NOT met"
    print(
        f"  fully cached run {med['warm']:.2f} s / cold run {med['cold']:.2f} s: ratio {r:.2f} "
        f"(target <= 0.3: {verdict})"
    )
    for name, t in times.items():
        print(f"    {name}: " + ", ".join(f"{x:.2f}" for x in t))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--stages", action="store_true", help="the hashing stage only")
    parser.add_argument("--dataset", default="skimage_tiles", help="(--stages)")
    parser.add_argument("--images", type=int, default=200, help="(--stages)")
    parser.add_argument("--copies", type=int, default=4, help="(--stages) parallel test copies")
    args = parser.parse_args()
    if args.stages:
        stages(args.dataset, args.images, args.copies)
    else:
        whole_command(args.repeat)


def stages(dataset: str, images: int, copies: int) -> None:
    data = open_dataset(f"{dataset}[{images}]")
    chains = tuple(parse_chain(t) for t in TRANSFORMS)
    algos = tuple(make_algorithm(a) for a in ALGORITHMS)
    # The harness treats identity as a column of its own, like any edit; the bare loop does too.
    hash_corpus(data, chains[:1], algos[:1], seed=0)  # warm imports and numba/pdqhash caches
    t_bare = bare(data.records, chains, algos, 0)
    t_one = timed(data, chains[1:], algos, workers=1)  # original column + 3 edits = 4 columns
    many = dataclasses.replace(
        data,
        records=tuple(
            dataclasses.replace(r, id=f"{k}/{r.id}") for k in range(copies) for r in data.records
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
        f"x{copies} images: 1 worker {t_many_one:.2f} s, 2 workers {t_many_two:.2f} s   "
        f"parallel efficiency {t_many_one / (2 * t_many_two):.3f} (target >= 0.85)"
    )
    print(
        f"cache cold / warm         {t_cold:8.2f} / {t_warm:.2f} s   warm/cold {t_warm / t_cold:.3f} (target < 0.10)"
    )


if __name__ == "__main__":
    main()
