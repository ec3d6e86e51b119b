"""Corpus -> transforms -> hashes, in parallel processes, deterministic whatever the worker count.

Each source image is decoded once; each transform chain is applied to it once; every edited image
is handed to every algorithm. Work is spread over processes (pdqhash and imagehash hold the GIL),
one image per task, and results are put back in dataset order, so 1 and N workers give identical
output. A bad image never stops the run: decode, transform and hash errors become failure records
with the stage and the reason.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from datasets_benign import Dataset, ImageRecord
from datasets_benign.decode import pixel_sha256
from harness.algorithms import HashAlgorithm
from harness.errors import HarnessError, HashExcluded
from transforms import Chain


@dataclass
class ImageOutcome:
    """Everything computed for one source image.

    ``hashes[c][a]`` is the packed hash of column ``c`` (0 = the original, ``1 + t`` = transform
    chain ``t``) under algorithm ``a``, or None when that step failed.
    """

    image_id: str
    sha256: str | None = None
    size: tuple[int, int] | None = None
    #: Standard deviation of the grey levels: near 0 for a flat (degenerate) image.
    grey_std: float | None = None
    hashes: list[list[bytes | None]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    exclusions: list[dict[str, str]] = field(default_factory=list)


def _reason(exc: BaseException) -> str:
    """A failure reason: harness errors already read as one; others get their type prefixed."""
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {text}"


def hash_image(
    record: ImageRecord,
    chains: Sequence[Chain],
    algorithms: Sequence[HashAlgorithm],
    suite_seed: int,
) -> ImageOutcome:
    """Decode ``record``, apply every chain, hash the original and each edit with every algorithm.

    Never raises for a bad image: errors become failure records in the outcome.
    """
    out = ImageOutcome(record.id)
    empty: list[bytes | None] = [None] * len(algorithms)
    try:
        original = record.load()
    except Exception as exc:  # any decoder error is the image's failure, not the run's
        out.failures.append({"image": record.id, "stage": "decode", "error": _reason(exc)})
        out.hashes = [list(empty) for _ in range(1 + len(chains))]
        return out
    # A manifest's sha256 is of the whole file's pixels; a tile (crop) has its own.
    known = record.sha256 if record.crop is None else None
    out.sha256 = known or pixel_sha256(original)
    out.size = original.size
    out.grey_std = float(np.asarray(original.convert("L"), dtype=np.float64).std())

    def hash_all(image: Any, column: str) -> list[bytes | None]:
        row: list[bytes | None] = []
        for algo in algorithms:
            try:
                row.append(algo.hash(image).tobytes())
            except HashExcluded as exc:
                row.append(None)
                out.exclusions.append(
                    {
                        "image": record.id,
                        "transform": column,
                        "algorithm": algo.id,
                        "reason": str(exc),
                    }
                )
            except Exception as exc:
                row.append(None)
                out.failures.append(
                    {
                        "image": record.id,
                        "stage": "hash",
                        "transform": column,
                        "algorithm": algo.id,
                        "error": _reason(exc),
                    }
                )
        return row

    out.hashes.append(hash_all(original, "original"))
    for chain in chains:
        try:
            edited = chain.apply(original, suite_seed=suite_seed, image_id=record.id)
        except Exception as exc:
            out.failures.append(
                {
                    "image": record.id,
                    "stage": "transform",
                    "transform": chain.id,
                    "error": _reason(exc),
                }
            )
            out.hashes.append(list(empty))
            continue
        out.hashes.append(hash_all(edited, chain.id))
    return out


# Per-process work description, set once per worker by the pool initializer so that chains and
# algorithms are pickled once per process rather than once per image.
_WORK: tuple[tuple[Chain, ...], tuple[HashAlgorithm, ...], int] | None = None


def _init_worker(
    chains: tuple[Chain, ...], algorithms: tuple[HashAlgorithm, ...], seed: int
) -> None:
    global _WORK  # per-process state is the point of a pool initializer
    _WORK = (chains, algorithms, seed)


def _hash_in_worker(record: ImageRecord) -> ImageOutcome:
    if _WORK is None:
        raise RuntimeError("worker used before initialisation")
    return hash_image(record, *_WORK)


def iter_outcomes(
    records: Sequence[ImageRecord],
    chains: tuple[Chain, ...],
    algorithms: tuple[HashAlgorithm, ...],
    seed: int,
    workers: int,
) -> Iterator[ImageOutcome]:
    """Outcomes in the order of ``records``, computed in ``workers`` processes (1 = in-process)."""
    if workers <= 1:
        for record in records:
            yield hash_image(record, chains, algorithms, seed)
        return
    # spawn: no inherited locks or threads, same behaviour on every platform.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(chains, algorithms, seed),
    ) as pool:
        yield from pool.map(_hash_in_worker, records)


@dataclass
class HashedCorpus:
    """Packed hashes of every image and edit, as arrays ready for the distance kernels.

    ``packed[a]`` has shape ``(1 + n_chains, n_images, n_bytes)``; ``ok[a]`` is the matching
    boolean mask of successfully computed hashes.
    """

    image_ids: list[str]
    sha256: list[str | None]
    sizes: list[tuple[int, int] | None]
    packed: list[npt.NDArray[np.uint8]]
    ok: list[npt.NDArray[np.bool_]]
    failures: list[dict[str, str]]
    exclusions: list[dict[str, str]] = field(default_factory=list)
    grey_std: list[float | None] = field(default_factory=list)

    @property
    def decoded(self) -> npt.NDArray[np.bool_]:
        """Images whose pixels were decoded (a decode failure leaves ``sha256`` unset)."""
        return np.array([s is not None for s in self.sha256], dtype=bool)


class Progress:
    """Periodic progress lines on stderr (silent when ``quiet``)."""

    def __init__(self, total: int, quiet: bool, label: str = "images") -> None:
        self.total, self.quiet, self.label = total, quiet, label
        self.start = time.monotonic()
        self.last = 0.0
        self.done = 0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.quiet or (now - self.last < 1.0 and self.done < self.total):
            return
        self.last = now
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        print(
            f"  hashed {self.done}/{self.total} {self.label} "
            f"({rate:.1f}/s, {elapsed:.0f}s elapsed, ETA {eta:.0f}s)",
            file=sys.stderr,
            flush=True,
        )


def hash_corpus(
    dataset: Dataset,
    chains: tuple[Chain, ...],
    algorithms: tuple[HashAlgorithm, ...],
    *,
    seed: int,
    workers: int = 1,
    on_image: Callable[[], None] | None = None,
) -> HashedCorpus:
    """Hash every image of ``dataset`` and every edit of it with every algorithm."""
    n, columns = len(dataset.records), 1 + len(chains)
    packed = [np.zeros((columns, n, a.n_bytes), dtype=np.uint8) for a in algorithms]
    ok = [np.zeros((columns, n), dtype=bool) for _ in algorithms]
    ids, shas, sizes, failures, exclusions, stds = [], [], [], [], [], []
    outcomes = iter_outcomes(dataset.records, chains, algorithms, seed, workers)
    for i, outcome in enumerate(outcomes):
        ids.append(outcome.image_id)
        shas.append(outcome.sha256)
        sizes.append(outcome.size)
        failures.extend(outcome.failures)
        exclusions.extend(outcome.exclusions)
        stds.append(outcome.grey_std)
        for c, row in enumerate(outcome.hashes):
            for a, value in enumerate(row):
                if value is not None:
                    packed[a][c, i] = np.frombuffer(value, dtype=np.uint8)
                    ok[a][c, i] = True
        if on_image is not None:
            on_image()
    return HashedCorpus(ids, shas, sizes, packed, ok, failures, exclusions, stds)
