"""Corpus -> transforms -> hashes, in parallel processes, deterministic whatever the worker count.

Each source image is decoded once; each transform chain is applied to it once; every edited image is
handed to every algorithm. Work is spread over processes (pdqhash and imagehash hold the GIL), one
image per task, taken as each finishes and written at its dataset index, so 1 and N workers give
identical output and one slow image never idles the other workers. A bad image never stops the run:
decode, transform and hash errors become failure records with the stage and the reason.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from datasets_benign import Dataset, ImageRecord
from datasets_benign.decode import pixel_sha256
from harness.algorithms import HashAlgorithm
from harness.errors import HarnessError, HashExcluded, ImageTooLargeError
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
    #: Frames in the file when it has more than one (the first is the one evaluated).
    frames: int = 1
    hashes: list[list[bytes | None]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    exclusions: list[dict[str, str]] = field(default_factory=list)


def _reason(exc: BaseException) -> str:
    """A failure reason: harness errors already read as one; others get their type prefixed."""
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {text}"


def _is_identity(chain: Chain) -> bool:
    return all(step.name == "identity" for step in chain.steps)


def hash_image(
    record: ImageRecord,
    chains: Sequence[Chain],
    algorithms: Sequence[HashAlgorithm],
    suite_seed: int,
    needed: frozenset[tuple[int, int]] | None = None,
) -> ImageOutcome:
    """Decode ``record``, apply every chain, hash the original and each edit with every algorithm.

    With ``needed`` (cells ``(column, algorithm)``, column 0 = the original), only those are
    computed - the rest come from the cache - and chains with no needed cell are not applied.
    An identity chain's pixels are the original's, so its cells repeat the original's outcome
    (hash, exclusion or failure) instead of hashing the same pixels again - except for
    algorithms that are not ``cacheable`` (external hashers), which are asked again so that the
    identity control still tests their determinism.
    Never raises for a bad image: errors become failure records in the outcome.
    """
    out = ImageOutcome(record.id)
    empty: list[bytes | None] = [None] * len(algorithms)
    try:
        original = record.load()
    except Exception as exc:  # any decoder error is the image's failure, not the run's
        failure = {"image": record.id, "stage": "decode", "error": _reason(exc)}
        if isinstance(exc, ImageTooLargeError):
            failure["kind"] = "decompression_bomb"  # the dataset's policy decides what it is
        out.failures.append(failure)
        out.hashes = [list(empty) for _ in range(1 + len(chains))]
        return out
    # A manifest's sha256 is of the whole file's pixels under the default (viewer) decode
    # policy; a tile (crop), a shrunk image or another policy has its own.
    known = (
        record.sha256
        if record.crop is None and record.max_side is None and record.decode == "viewer"
        else None
    )
    out.sha256 = known or pixel_sha256(original)
    out.size = original.size
    out.frames = int(original.info.get("frames", 1))
    out.grey_std = float(np.asarray(original.convert("L"), dtype=np.float64).std())
    # The original's outcome per algorithm: (hash, exclusion reason, failure reason).
    of_original: dict[int, tuple[bytes | None, str | None, str | None]] = {}

    def hash_one(image: Any, algo: HashAlgorithm) -> tuple[bytes | None, str | None, str | None]:
        try:
            return algo.hash(image).tobytes(), None, None
        except HashExcluded as exc:
            return None, str(exc), None
        except Exception as exc:
            return None, None, _reason(exc)

    def hash_all(image: Any, column: str, c: int, identity: bool) -> list[bytes | None]:
        row: list[bytes | None] = []
        for a, algo in enumerate(algorithms):
            if needed is not None and (c, a) not in needed:
                row.append(None)
                continue
            if identity and algo.cacheable and a in of_original:
                value, excluded, error = of_original[a]
            else:
                value, excluded, error = hash_one(image, algo)
            if c == 0:
                of_original[a] = (value, excluded, error)
            row.append(value)
            if excluded is not None:
                out.exclusions.append(
                    {
                        "image": record.id,
                        "transform": column,
                        "algorithm": algo.id,
                        "reason": excluded,
                    }
                )
            if error is not None:
                out.failures.append(
                    {
                        "image": record.id,
                        "stage": "hash",
                        "transform": column,
                        "algorithm": algo.id,
                        "error": error,
                    }
                )
        return row

    out.hashes.append(hash_all(original, "original", 0, identity=False))
    for c, chain in enumerate(chains, start=1):
        if needed is not None and not any(cell[0] == c for cell in needed):
            out.hashes.append(list(empty))
            continue
        if _is_identity(chain):
            out.hashes.append(hash_all(original, chain.id, c, identity=True))
            continue
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
        out.hashes.append(hash_all(edited, chain.id, c, identity=False))
    return out


# Per-process work description, set once per worker by the pool initializer so that chains and
# algorithms are pickled once per process rather than once per image.
_WORK: tuple[tuple[Chain, ...], tuple[HashAlgorithm, ...], int] | None = None


def _init_worker(
    chains: tuple[Chain, ...], algorithms: tuple[HashAlgorithm, ...], seed: int
) -> None:
    global _WORK  # per-process state is the point of a pool initializer
    _WORK = (chains, algorithms, seed)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: Any) -> None:
    """End this worker when the run's process dies. A pool worker waits for its next task
    forever, so after a ``kill -9`` of the run it (and the fork server it keeps alive) would
    otherwise stay behind, holding memory, for every killed run."""
    parent.join()  # returns when the parent's sentinel closes, i.e. when it has died
    os._exit(1)


def _hash_in_worker(task: tuple[ImageRecord, frozenset[tuple[int, int]] | None]) -> ImageOutcome:
    if _WORK is None:
        raise RuntimeError("worker used before initialisation")
    record, needed = task
    chains, algorithms, seed = _WORK
    return hash_image(record, chains, algorithms, seed, needed)


Task = tuple[ImageRecord, frozenset[tuple[int, int]] | None]


def _as_completed(
    pool: ProcessPoolExecutor, tasks: Sequence[Task], window: int
) -> Iterator[tuple[int, ImageOutcome]]:
    """``(task index, outcome)`` as tasks finish, with at most ``window`` in flight.

    Completion order, not task order: one huge image never holds back the results behind it,
    so the other workers stay busy and progress keeps moving (the caller puts outcomes back in
    dataset order). One image per task keeps every core busy when images differ in cost, and
    memory stays bounded however many images there are (``Executor.map`` would submit them all).
    """
    pending: dict[Future[ImageOutcome], int] = {}
    queue = iter(enumerate(tasks))

    def refill() -> None:
        for index, task in itertools.islice(queue, window - len(pending)):
            pending[pool.submit(_hash_in_worker, task)] = index

    refill()
    while pending:
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            index = pending.pop(future)
            refill()
            yield index, future.result()


def _context() -> Any:
    """Worker start method: forkserver where available - workers are forked from a clean server
    process that imported the hashing stack once (start-up drops from about a second per
    worker to milliseconds), with no locks or threads inherited from the parent; spawn elsewhere.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["harness.runner", "harness.algorithms", "transforms"])
        return ctx
    return multiprocessing.get_context("spawn")


def prestart_workers() -> None:
    """Start the fork server now, so that its imports run on another core while this process
    is still importing the statistics and report stack; the pool later forks from it at once."""
    if _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def iter_outcomes(
    tasks: Sequence[Task],
    chains: tuple[Chain, ...],
    algorithms: tuple[HashAlgorithm, ...],
    seed: int,
    workers: int,
    executor: Any = None,
) -> Iterator[tuple[int, ImageOutcome]]:
    """``(index in tasks, outcome)`` as each finishes, computed in-process (1 worker), in
    ``workers`` processes, or on a Dask cluster when ``executor`` is a ``distributed.Client``. With
    no tasks (everything came from the cache) no process is started."""
    if not tasks:
        return
    if executor is not None:
        from harness.distributed import dask_outcomes

        yield from dask_outcomes(executor, tasks, chains, algorithms, seed)
        return
    if workers <= 1:
        for index, (record, needed) in enumerate(tasks):
            yield index, hash_image(record, chains, algorithms, seed, needed)
        return
    ctx = _context()
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(chains, algorithms, seed),
    ) as pool:
        yield from _as_completed(pool, tasks, window=16 * workers)


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
    #: Hash cells computed (not read from the cache), failed attempts included.
    hashes_computed: int = 0
    #: Frame count per image (1 for single-frame files; the first frame is evaluated).
    frames: list[int] = field(default_factory=list)

    @property
    def decoded(self) -> npt.NDArray[np.bool_]:
        """Images whose pixels were decoded (a decode failure leaves ``sha256`` unset)."""
        return np.array([s is not None for s in self.sha256], dtype=bool)


class Progress:
    """Progress on stderr: a bar redrawn in place on a terminal, plain lines every few seconds
    otherwise (CI logs), nothing when ``quiet``.

    Images served whole from the cache are counted as done but not in the rate, so a resumed
    run's ETA is that of the work still to do, not of cache reads.
    """

    def __init__(
        self, total: int, quiet: bool, label: str = "images hashed", stream: Any = None
    ) -> None:
        self.total, self.quiet, self.label = total, quiet, label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.2 if self.tty else 5.0
        self.start = time.monotonic()
        self.last = -1e9
        self.done = 0
        self.cached = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @contextlib.contextmanager
    def running(self) -> Iterator[Progress]:
        """Within this block the line is also written when no item finishes for an interval
        (one huge image still in work), so a log never goes quiet while work goes on."""
        thread = threading.Thread(target=self._heartbeat, daemon=True)
        if not self.quiet:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            if thread.is_alive():
                thread.join()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.interval / 2):
            with self._lock:
                now = time.monotonic()
                if self.done < self.total and now - self.last >= self.interval:
                    self._write(now)

    def step(self, cached: bool = False) -> None:
        with self._lock:
            self.done += 1
            self.cached += cached
            now = time.monotonic()
            final = self.done >= self.total
            if self.quiet or (now - self.last < self.interval and not final):
                return
            self._write(now)

    def _write(self, now: float) -> None:
        final = self.done >= self.total
        self.last = now
        elapsed = now - self.start
        computed = self.done - self.cached
        rate = computed / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = "0s" if left == 0 else f"{left / rate:.0f}s" if rate > 0 else "?"
        from_cache = f"{self.cached} from cache, " if self.cached else ""
        text = (
            f"{self.done}/{self.total} {self.label} "
            f"({from_cache}{rate:.1f}/s, {elapsed:.0f}s, ETA {eta})"
        )
        if self.tty:
            width = 30
            filled = round(width * self.done / max(1, self.total))
            bar = "#" * filled + "." * (width - filled)
            # \x1b[K clears what a longer previous line left to the right of this one.
            self.stream.write(f"\r  [{bar}] {text}\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(f"  {text}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line for a later stage (an algorithm's statistics), with the elapsed time."""
        if not self.quiet:
            self.stream.write(f"  {text} ({time.monotonic() - self.start:.0f}s)\n")
            self.stream.flush()


def hash_corpus(
    dataset: Dataset,
    chains: tuple[Chain, ...],
    algorithms: tuple[HashAlgorithm, ...],
    *,
    seed: int,
    workers: int = 1,
    on_image: Callable[[bool], None] | None = None,
    store: Any = None,
    executor: Any = None,
) -> HashedCorpus:
    """Hash every image of ``dataset`` and every edit of it with every algorithm.

    With a :class:`~harness.store.HashStore`, cells already in the cache are read, not
    computed (a fully cached image is not even decoded), and every finished image is written
    to the cache at once, so a killed run resumes where it stopped. ``on_image(cached)`` is
    called after each image as it finishes; ``cached`` is True when nothing was computed.
    """
    n, columns = len(dataset.records), 1 + len(chains)
    packed = [np.zeros((columns, n, a.n_bytes), dtype=np.uint8) for a in algorithms]
    ok = [np.zeros((columns, n), dtype=bool) for _ in algorithms]
    outcomes: list[ImageOutcome | None] = [None] * n
    plan = _Plan(dataset, chains, algorithms, seed, store)
    work = iter_outcomes(plan.tasks, chains, algorithms, seed, workers, executor)
    # Outcomes arrive in completion order; each is written at its dataset index, so the result
    # is the same for any worker count.
    for i, outcome, cached in plan.outcomes(work):
        for c, row in enumerate(outcome.hashes):
            for a, value in enumerate(row):
                if value is not None:
                    packed[a][c, i] = np.frombuffer(value, dtype=np.uint8)
                    ok[a][c, i] = True
        outcome.hashes = []  # now in the arrays
        outcomes[i] = outcome
        if on_image is not None:
            on_image(cached)
    done = [o for o in outcomes if o is not None]
    ids = [o.image_id for o in done]
    shas = [o.sha256 for o in done]
    sizes = [o.size for o in done]
    stds = [o.grey_std for o in done]
    frames = [o.frames for o in done]
    failures = [f for o in done for f in o.failures]
    exclusions = [e for o in done for e in o.exclusions]
    computed = sum(
        columns * len(algorithms) if needed is None else len(needed) for _, needed in plan.tasks
    )
    return HashedCorpus(ids, shas, sizes, packed, ok, failures, exclusions, stds, computed, frames)


class _Plan:
    """Which cells each image still needs, and the merge of cached and computed cells."""

    def __init__(
        self,
        dataset: Dataset,
        chains: tuple[Chain, ...],
        algorithms: tuple[HashAlgorithm, ...],
        seed: int,
        store: Any,
    ) -> None:
        self.records, self.chains, self.algorithms, self.seed = (
            dataset.records,
            chains,
            algorithms,
            seed,
        )
        self.store = store
        # Per image only the cached file info is kept; cached cells are read again when the image
        # is merged, so memory does not grow with the number of cached hashes.
        self.cached: list[Any] = []
        self.tasks: list[Task] = []
        #: Dataset index of each task.
        self.task_index: list[int] = []
        if store is None:
            self.tasks = [(r, None) for r in self.records]
            self.task_index = list(range(len(self.records)))
            self.cached = [None] * len(self.records)
            return
        from harness import store as store_mod

        self.env = store_mod.transform_environment()
        self.algo_keys = [store_mod.algorithm_key(a) for a in algorithms]
        every = {(c, a) for c in range(1 + len(chains)) for a in range(len(algorithms))}
        # Content-derived file keys, computed once (each reads the whole file).
        self.file_keys = [store_mod.file_key(r) for r in self.records]
        for i, record in enumerate(self.records):
            info = store.file(self.file_keys[i])
            self.cached.append(info)
            if info is None:
                self.tasks.append((record, None))
                self.task_index.append(i)
                continue
            missing = every - set(self._cells(record, info))
            if missing:
                self.tasks.append((record, frozenset(missing)))
                self.task_index.append(i)

    def _cells(self, record: ImageRecord, info: Any) -> dict[tuple[int, int], Any]:
        return self.store.hashes(info.sha256, self._columns(record), self.algo_keys)

    def _columns(self, record: ImageRecord) -> list[str]:
        from harness import store as store_mod

        return store_mod.column_keys(self.chains, self.seed, record.id, self.env)

    def outcomes(
        self, computed: Iterator[tuple[int, ImageOutcome]]
    ) -> Iterator[tuple[int, ImageOutcome, bool]]:
        """``(dataset index, outcome, came whole from the cache)``: first the fully cached
        images, then the computed ones as they finish."""
        fresh = set(self.task_index)
        for i, record in enumerate(self.records):
            if i not in fresh:
                out = ImageOutcome(record.id)
                self._merge(out, record, self.cached[i], self._cells(record, self.cached[i]))
                yield i, out, True
        for t, out in computed:
            i = self.task_index[t]
            record, info = self.records[i], self.cached[i]
            if info is not None:
                self._merge(out, record, info, self._cells(record, info))
            if self.store is not None and out.sha256 is not None:
                self._save(out, i)  # one transaction per finished image: resumable
            yield i, out, False

    def _merge(
        self, out: ImageOutcome, record: ImageRecord, info: Any, cells: dict[tuple[int, int], Any]
    ) -> None:
        columns = self._columns(record)
        if out.sha256 is None and not out.failures:  # fully cached: nothing was decoded
            out.sha256, out.size, out.grey_std = info.sha256, info.size, info.grey_std
            out.frames = info.frames
        if not out.hashes:
            out.hashes = [[None] * len(self.algorithms) for _ in columns]
        for (c, a), (status, value, reason) in cells.items():
            if status == "ok":
                out.hashes[c][a] = value
            else:
                column = "original" if c == 0 else self.chains[c - 1].id
                out.exclusions.append(
                    {
                        "image": record.id,
                        "transform": column,
                        "algorithm": self.algorithms[a].id,
                        "reason": reason,
                    }
                )
        # Keep exclusions in (column, algorithm) order whether they came from the cache or not.
        order = {"original": 0, **{ch.id: c for c, ch in enumerate(self.chains, start=1)}}
        algo_order = {a.id: k for k, a in enumerate(self.algorithms)}
        out.exclusions.sort(
            key=lambda e: (order.get(e["transform"], 0), algo_order.get(e["algorithm"], 0))
        )

    def _save(self, out: ImageOutcome, i: int) -> None:
        from harness import store as store_mod

        record = self.records[i]
        columns = self._columns(record)
        excluded = {(e["transform"], e["algorithm"]): e["reason"] for e in out.exclusions}
        cells: list[tuple[str, str, str, bytes | None, str | None]] = []
        for c, row in enumerate(out.hashes):
            column = "original" if c == 0 else self.chains[c - 1].id
            for a, value in enumerate(row):
                key = self.algo_keys[a]
                if key is None:
                    continue  # never cached (see HashAlgorithm.cacheable)
                if value is not None:
                    cells.append((columns[c], key, "ok", value, None))
                elif (column, self.algorithms[a].id) in excluded:
                    reason = excluded[(column, self.algorithms[a].id)]
                    cells.append((columns[c], key, "excluded", None, reason))
        info = store_mod.FileInfo(out.sha256 or "", out.size or (0, 0), out.grey_std, out.frames)
        self.store.put(self.file_keys[i], info, cells)
