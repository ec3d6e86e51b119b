"""Side by side with Thorn's ``perception`` benchmarking, and both against the floor.

Run explicitly; the first run builds perception's own virtual environment (a few minutes; its
``pdqhash`` compiles from source)::

    python benchmarks/perf/bench_perception.py [--venv /tmp/perception-venv] [--repeats 3]
        [--copies 1 20]

The workload: the 17 embedded public-domain images (written once as PNG), 4 transforms (identity,
JPEG q50, half-size resize, centre crop keeping 90% of each side) and 5 hashers (aHash, dHash,
pHash, wHash at 64 bits; PDQ). ``--copies K`` writes each image K times, copy k cropped by k
pixels at the top left (distinct pixels, no duplicates): the default measures K = 1 and K = 20
(17 and 340 images), where start-up costs dominate and where they no longer do.

Three programs do it, each timed end to end as a fresh process, interleaved ``--repeats``
times (the order rotates); each ratio is the median over repetitions of the ratio of
neighbouring runs (the load of a shared machine drifts between repetitions):

* perception runs its documented pipeline (``BenchmarkImageDataset.transform`` ->
  ``compute_hashes`` -> ``compute_threshold_recall``);
* ``hash-harness run`` runs the same suite (no cache, 2 workers, every report written);
* the floor: ``bench_runner.BARE``, a bare script making hash-harness's library calls for the
  same suite (decode, edit, hash) in a 2-process pool and nothing else. perception's time over
  the floor's is the best ratio any harness calling these libraries could show against
  perception on this machine; there is no pass/fail on it.

The work is not identical, and the output says so (:data:`DIFFERENCES`). Memory is the peak,
over the run, of the summed proportional set size (PSS: a page shared by k processes counts
1/k to each) of the process and all its descendants, sampled every 50 ms from ``/proc``:
hash-harness's worker processes count, as do perception's threads (one process).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from bench_runner import BARE

PERCEPTION_SCRIPT = textwrap.dedent(
    """
    import glob, os, sys
    import albumentations as A
    import cv2
    from perception import benchmarking, hashers
    from perception.hashers.image.pdq import PDQHash

    src, work = sys.argv[1], sys.argv[2]
    dataset = benchmarking.BenchmarkImageDataset.from_tuples(
        files=[(fp, "skimage") for fp in sorted(glob.glob(os.path.join(src, "*.png")))])

    def resize_half(image, **kwargs):
        h, w = image.shape[:2]
        return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)

    def crop_90(image, **kwargs):
        h, w = image.shape[:2]
        dh, dw = round(h * 0.05), round(w * 0.05)
        return image[dh:h - dh, dw:w - dw]

    transforms = {"noop": A.NoOp(p=1), "jpeg50": A.ImageCompression(quality_range=(50, 50), p=1),
                  "resize0.5": resize_half, "crop0.9": crop_90}
    transformed = dataset.transform(transforms=transforms, storage_dir=os.path.join(work, "t"), errors="raise")
    hashes = transformed.compute_hashes(hashers={
        "ahash": hashers.AverageHash(hash_size=8), "dhash": hashers.DHash(hash_size=8),
        "phash": hashers.PHash(hash_size=8), "whash": hashers.WaveletHash(hash_size=8), "pdq": PDQHash()})
    print(hashes.compute_threshold_recall(precision_threshold=99.9).reset_index().to_string())
    """
)

SUITE = """
name = "perception-comparison"
version = 1
dataset = "{folder}"
algorithms = ["average_hash", "dhash", "phash", "whash", "pdq(quality_gate=0)"]
transforms = ["identity", "jpeg(quality=50)", "resize(scale=0.5, filter='box')", "crop(keep_area=0.81)"]
bootstrap_resamples = 0
"""

#: What the two tools do differently for the same workload (printed with the results).
DIFFERENCES = (
    "hashers: perception's aHash, dHash, pHash and wHash are its own OpenCV/numpy "
    "implementations (its wHash a cheaper float32 variant), not imagehash's bits; PDQ is "
    "pdqhash in both",
    "files: perception decodes the source PNG once per edit and writes every edit, the "
    "identity included, as a JPEG (OpenCV's default quality 95), then decodes each JPEG once "
    "per hasher (its JPEG q50 edit is q50 then q95 on disk); hash-harness decodes each source "
    "once and hashes the edits in memory",
    "parallelism: perception hashes in 5 threads of one process (most of these libraries "
    "release the GIL); hash-harness and the floor in 2 worker processes",
    "statistics: perception computes recall at 99.9% precision; hash-harness every statistic "
    "and report of a run (bootstrap off, as in the suite above); the floor none",
)


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "perception[benchmarking]", "pdqhash"], check=True)
    # The benchmarking extra drags in opencv-python-headless, whose cv2 lacks img_hash.
    subprocess.run(
        [*pip, "--force-reinstall", "--no-deps", "opencv-contrib-python-headless>=4.10.0,<5.0.0"],
        check=True,
    )
    return python


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it, from the parent ids in ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _pss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kb / 1024


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock seconds and peak PSS (MB) of the process tree of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, _pss_mb(_descendants(proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if code != 0:
        raise subprocess.CalledProcessError(code, cmd)
    return elapsed, peak


def write_images(folder: Path, copies: int) -> int:
    from datasets_benign import open_dataset

    folder.mkdir()
    n = 0
    for record in open_dataset("skimage").records:
        image = record.load()
        for k in range(copies):
            copy = image.crop((k, k, image.width, image.height)) if k else image
            copy.save(folder / f"{record.id}_{k:03d}.png")
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=str(Path(tempfile.gettempdir()) / "perception-venv"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--copies", type=int, nargs="+", default=[1, 20], help="copies of each image (see above)"
    )
    args = parser.parse_args()
    perception_python = ensure_venv(Path(args.venv))
    load_before = os.getloadavg()[0]
    times: dict[tuple[int, str], list[float]] = {}
    memory: dict[tuple[int, str], list[float]] = {}
    sizes: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bare.py").write_text(BARE)
        (root / "perception_bench.py").write_text(PERCEPTION_SCRIPT)
        commands: dict[int, dict[str, list[str]]] = {}
        for copies in args.copies:
            folder = root / f"images{copies}"
            sizes[copies] = write_images(folder, copies)
            suite = root / f"suite{copies}.toml"
            suite.write_text(SUITE.format(folder=folder))
            commands[copies] = {
                "perception": [
                    str(perception_python),
                    str(root / "perception_bench.py"),
                    str(folder),
                    str(root / f"p{copies}"),
                ],
                "hash-harness": [
                    sys.executable,
                    *("-m", "harness", "run", "--suite", str(suite), "--out"),
                    str(root / f"h{copies}"),
                    *("--no-cache", "--quiet", "--workers", "2"),
                ],
                "floor": [sys.executable, str(root / "bare.py"), str(suite), str(folder)],
            }
        for k in range(args.repeats):
            for copies, cmds in commands.items():
                names = list(cmds)
                for name in names[k % 3 :] + names[: k % 3]:  # rotate which goes first
                    t, mb = measure(cmds[name])
                    times.setdefault((copies, name), []).append(t)
                    memory.setdefault((copies, name), []).append(mb)

    def ratio(copies: int, a: str, b: str) -> float:
        pairs = zip(times[copies, a], times[copies, b], strict=True)
        return statistics.median(x / y for x, y in pairs)

    print(
        f"work: 4 transforms x 5 hashers (aHash, dHash, pHash, wHash 64-bit; PDQ) per image; "
        f"cpus {os.cpu_count()}; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after; medians of {args.repeats}"
    )
    print("what differs in the work:")
    for line in DIFFERENCES:
        print(textwrap.fill(line, 96, initial_indent="  - ", subsequent_indent="    "))
    for copies, n in sizes.items():
        print(f"{n} images:")
        for name in ("perception", "hash-harness", "floor"):
            t, mb = times[copies, name], memory[copies, name]
            print(
                f"  {name:<13} {statistics.median(t):7.2f} s  peak PSS of the process tree "
                f"{max(mb):5.0f} MB   runs " + ", ".join(f"{x:.2f}" for x in t)
            )
        print(
            f"  perception / hash-harness {ratio(copies, 'perception', 'hash-harness'):.2f}x;  "
            f"floor-limited best (perception / floor) {ratio(copies, 'perception', 'floor'):.2f}x;"
            f"  hash-harness / floor {ratio(copies, 'hash-harness', 'floor'):.2f}"
        )


if __name__ == "__main__":
    main()
