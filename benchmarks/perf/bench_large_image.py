"""Head-of-line blocking: one 40-megapixel image among 200 small ones, 2 workers.

Run explicitly (a few minutes on two cores)::

    python benchmarks/perf/bench_large_image.py [--small 200] [--megapixels 40]

Measured in one run, one after another, with the same transforms and algorithms:

* ``t_large``: the large image alone, 1 worker (in-process);
* ``t_small``: the small images alone, 1 worker;
* ``t_both``: all of them with 2 worker processes, the large image first in dataset order
  (the worst case for results taken in dataset order).

Target: ``t_both <= (t_large + t_small / 2) * 1.15`` - while one worker is busy with the large
image the other gets through the small ones - and progress lines keep appearing meanwhile
(the longest gap between two progress lines is printed; lines come every 5 s when the output
is not a terminal).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from datasets_benign import folder_dataset
from harness.algorithms import make_algorithm
from harness.progress import Progress
from harness.runner import hash_corpus
from transforms import parse_chain

TRANSFORMS = ("identity", "jpeg(quality=50)", "resize(scale=0.5)", "crop(keep_area=0.81)")
ALGORITHMS = ("average_hash", "dhash", "phash", "whash", "pdq(quality_gate=0)")


def _picture(width: int, height: int, seed: int) -> Image.Image:
    """Smooth colour waves plus noise: cheap to make at 40 megapixels, costly to hash."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, rng.uniform(2, 9) * np.pi, width, dtype=np.float32)
    y = np.linspace(0, rng.uniform(2, 9) * np.pi, height, dtype=np.float32)
    base = (np.sin(x)[None, :] + np.cos(y)[:, None]) * 60 + 128
    noise = rng.integers(0, 24, size=(height, width), dtype=np.uint8)
    channels = [np.clip(base + k * 20, 0, 255).astype(np.uint8) + noise for k in range(3)]
    return Image.fromarray(np.dstack(channels), mode="RGB")


class _Lines:
    """A non-terminal stream that remembers when each progress line was written."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def write(self, text: str) -> None:
        if text.strip():
            self.times.append(time.monotonic())
            sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--megapixels", type=float, default=40.0)
    args = parser.parse_args()
    chains = tuple(parse_chain(t) for t in TRANSFORMS)
    algos = tuple(make_algorithm(a) for a in ALGORITHMS)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("large", "small", "both"):
            (root / name).mkdir()
        side = int((args.megapixels * 1e6 / 1.5) ** 0.5)
        large = _picture(int(side * 1.5), side, seed=0)
        print(
            f"large image: {large.width}x{large.height} ({large.width * large.height / 1e6:.1f} MP)"
        )
        large.save(root / "large" / "0000_large.png", compress_level=1)
        large.save(root / "both" / "0000_large.png", compress_level=1)
        del large
        for i in range(args.small):
            small = _picture(320, 240, seed=1 + i)
            small.save(root / "small" / f"{i:04d}.png")
            small.save(root / "both" / f"{i + 1:04d}.png")

        def timed(folder: str, workers: int, stream: object = None) -> float:
            data = folder_dataset(root / folder)
            progress = Progress(len(data.records), quiet=stream is None, stream=stream)
            start = time.perf_counter()
            with progress.running():
                hash_corpus(data, chains, algos, seed=0, workers=workers, on_image=progress.step)
            return time.perf_counter() - start

        t_large = timed("large", 1)
        print(f"t_large (1 worker): {t_large:.1f} s")
        t_small = timed("small", 1)
        print(f"t_small (1 worker, {args.small} images): {t_small:.1f} s")
        lines = _Lines()
        start = time.monotonic()
        t_both = timed("both", 2, lines)
        gaps = np.diff([start, *lines.times])
        bound = (t_large + t_small / 2) * 1.15
        print(
            f"t_both (2 workers): {t_both:.1f} s; bound (t_large + t_small/2) * 1.15 = {bound:.1f} s"
        )
        print(
            f"ratio t_both / (t_large + t_small/2) = {t_both / (t_large + t_small / 2):.3f} (target <= 1.15)"
        )
        print(f"progress lines: {len(lines.times)}, longest gap {gaps.max():.1f} s")
        print("PASS" if t_both <= bound else "FAIL")


if __name__ == "__main__":
    main()
