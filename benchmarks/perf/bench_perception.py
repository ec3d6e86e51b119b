"""Side by side with Thorn's ``perception`` benchmarking on identical work (wall-clock ratio).

Run explicitly; the first run builds perception's own virtual environment (a few minutes; its
``pdqhash`` compiles from source)::

    python benchmarks/perf/bench_perception.py [--venv /tmp/perception-venv] [--repeats 2]
        [--copies K]

Identical work for both: the 17 embedded public-domain images (written once as PNG), 4 transforms
(identity, JPEG q50, half-size resize, centre crop keeping 90% of each side) and 5 hashers
(aHash, dHash, pHash, wHash at 64 bits; PDQ). perception runs its documented pipeline
(``BenchmarkImageDataset.transform`` -> ``compute_hashes`` -> ``compute_threshold_recall``);
hash-harness runs ``hash-harness run`` with the same suite (no cache, 2 workers, all reports
written). Each is timed end to end as a fresh process, best of ``--repeats``, with its peak
resident memory.

``--copies K`` writes each image K times, copy k cropped by k pixels at the top left (distinct
pixels, no duplicates), for the same comparison at a size where start-up costs no longer dominate.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

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


def wall(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock seconds and peak resident memory (MB) of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return elapsed, usage.ru_maxrss / 1024


def runs(label: str, measured: list[tuple[float, float]]) -> tuple[float, str]:
    best = min(t for t, _ in measured)
    rss = max(m for _, m in measured)
    times = ", ".join(f"{t:.2f}" for t, _ in measured)
    return best, f"{label:<24} best {best:7.2f} s   runs {times}   peak RSS {rss:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=str(Path(tempfile.gettempdir()) / "perception-venv"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--copies", type=int, default=1, help="copies of each image (see above)")
    args = parser.parse_args()
    perception_python = ensure_venv(Path(args.venv))
    from datasets_benign import open_dataset

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        n = 0
        for record in open_dataset("skimage").records:
            image = record.load()
            for k in range(args.copies):
                copy = image.crop((k, k, image.width, image.height)) if k else image
                copy.save(folder / f"{record.id}_{k:03d}.png")
                n += 1
        script = Path(tmp) / "perception_bench.py"
        script.write_text(PERCEPTION_SCRIPT)
        suite = Path(tmp) / "suite.toml"
        suite.write_text(SUITE.format(folder=folder))
        theirs, ours = [], []
        for k in range(args.repeats):
            theirs.append(
                wall([str(perception_python), str(script), str(folder), str(Path(tmp) / f"p{k}")])
            )
            ours.append(
                wall(
                    [
                        sys.executable,
                        "-m",
                        "harness",
                        "run",
                        "--suite",
                        str(suite),
                        "--out",
                        str(Path(tmp) / f"h{k}"),
                        "--no-cache",
                        "--quiet",
                        "--workers",
                        "2",
                    ]
                )
            )
    print(f"work: {n} images x 4 transforms x 5 hashers (aHash, dHash, pHash, wHash 64-bit; PDQ)")
    best_theirs, line = runs("perception benchmarking", theirs)
    print(line)
    best_ours, line = runs("hash-harness run", ours)
    print(line)
    print(f"speed-up (perception / hash-harness): {best_theirs / best_ours:.2f}x (target >= 3)")


if __name__ == "__main__":
    main()
