"""A policy reading its parts' hashes: the whole ``run --no-cache --suite policies`` with and
without sharing, in one run.

Run explicitly (about three minutes on two cores)::

    python benchmarks/perf/bench_sharing.py [--suite policies] [--repeat 2]
    python benchmarks/perf/bench_sharing.py --stage     # the hashing pass alone

Each configuration is the whole command in a fresh process (all cores, every report written),
interleaved ``--repeat`` times; the best wall-clock time of each is kept (the least disturbed on
a shared machine) and their ratio printed, with the CPU seconds of the hash calls the run block
reports (``run.cost``: each unit's cost as if alone, so the same in both up to noise).

* shared: ``hash-harness run --no-cache`` as shipped - each distinct unit, turned picture and
  PDQ quality computed once per picture (:mod:`harness.algorithms.shared`);
* not shared: the same command with every value made again for each unit that reads it
  (what every policy did before: ``pdq & phash`` hashed PDQ and pHash again), by a patch of
  the memo in the benchmark's process only.

Both results.json files are compared without their ``run`` block: they must be byte-identical.

The hashing pass alone (``--stage``, in this process, one worker, no cache: where the saving
is, without the statistics and reports that take most of a small run) is timed the same way,
shared and not shared interleaved, with the CPU seconds of the pass.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The CLI with the memo patched to keep nothing: every read makes its value again.
NOT_SHARED = r"""
import sys
from harness.algorithms import shared

get = shared._Ledger.get
shared._Ledger.get = lambda self, key, make, keep=True: get(self, key, make, keep=False)

from harness.cli import main

sys.exit(main(sys.argv[1:]))
"""
SHARED = "import sys\nfrom harness.cli import main\n\nsys.exit(main(sys.argv[1:]))\n"


def run(code: str, suite: str, out: Path) -> float:
    argv = ["run", "--suite", suite, "--no-cache", "--quiet", "--out", str(out)]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *argv], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def not_shared() -> object:
    """Patch the memo to keep nothing (as :data:`NOT_SHARED`); returns the original."""
    from harness.algorithms import shared

    get = shared._Ledger.get
    shared._Ledger.get = lambda self, key, make, keep=True: get(self, key, make, keep=False)  # type: ignore[method-assign]
    return get


def hashing_pass(suite_name: str, repeat: int) -> None:
    """Wall and CPU seconds of the hashing pass alone, shared and not, interleaved."""
    from harness.algorithms import shared
    from harness.pipeline import hash_suite
    from harness.suite import load_suite

    suite = load_suite(suite_name)
    best: dict[str, tuple[float, float]] = {}
    for _ in range(repeat):
        for name in ("not shared", "shared"):
            original = not_shared() if name == "not shared" else None
            try:
                wall, cpu = time.perf_counter(), time.process_time()
                hash_suite(suite, None, workers=1, quiet=True)
                took = (time.perf_counter() - wall, time.process_time() - cpu)
            finally:
                if original is not None:
                    shared._Ledger.get = original  # type: ignore[method-assign]
            best[name] = min(best.get(name, took), took)
    print(f"hashing pass of --suite {suite_name}, 1 worker, no cache (best of {repeat}):")
    for name, (wall, cpu) in best.items():
        print(f"  {name:10s} {wall:7.1f} s wall {cpu:7.1f} s CPU")
    print(f"  shared / not shared: {best['shared'][0] / best['not shared'][0]:.2f} (wall)")


def without_run(path: Path) -> bytes:
    doc = json.loads(path.read_text())
    doc.pop("run", None)
    return json.dumps(doc, sort_keys=True).encode()


def hash_cpu(path: Path) -> float:
    """Sum over units of the CPU seconds of their hash calls (``run.cost``)."""
    rows = json.loads(path.read_text())["run"]["cost"]["algorithms"]
    return sum(r["n"] * r["median_ms"] / 1e3 for r in rows if r.get("status") == "measured")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="policies")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--stage", action="store_true", help="the hashing pass alone")
    args = parser.parse_args()
    if args.stage:
        hashing_pass(args.suite, args.repeat)
        return
    times: dict[str, list[float]] = {"not shared": [], "shared": []}
    with tempfile.TemporaryDirectory(prefix="hash-harness-bench-") as tmp:
        outs = {name: Path(tmp) / name.replace(" ", "-") for name in times}
        for _ in range(args.repeat):
            for name, code in (("not shared", NOT_SHARED), ("shared", SHARED)):
                times[name].append(run(code, args.suite, outs[name]))
        same = without_run(outs["shared"] / "results.json") == without_run(
            outs["not shared"] / "results.json"
        )
        print(f"hash-harness run --no-cache --suite {args.suite} (best of {args.repeat}):")
        for name in times:
            cpu = hash_cpu(outs[name] / "results.json")
            print(
                f"  {name:10s} {min(times[name]):7.1f} s wall"
                f"  (all: {', '.join(f'{t:.1f}' for t in times[name])});"
                f" run.cost medians x calls {cpu:.1f} CPU s"
            )
        ratio = min(times["shared"]) / min(times["not shared"])
        print(f"  shared / not shared: {ratio:.2f}")
        print(f"  results.json identical apart from the run block: {same}")
        if not same:
            raise SystemExit("results differ")


if __name__ == "__main__":
    main()
