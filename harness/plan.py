"""Cache planning: which cells and thumbnails each image still needs, and the merge of cached
and computed ones.

A fully cached image (every hash and its original's thumbnail: edited copies' thumbnails are
kept only for gallery candidates, so a copy without one is no work to do) becomes no task at
all, so it is never decoded;
one missing anything is decoded once and only its missing columns are computed. Each finished
image is written to the cache in one transaction, so a killed run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from datasets_benign import Dataset, ImageRecord
from harness.algorithms import HashAlgorithm
from harness.columns import Columns
from harness.hashing import ImageOutcome, Task
from transforms import Chain


class Plan:
    """The tasks of a run (``tasks``, with the dataset index of each in ``task_index``) and the
    merge of their outcomes with what the cache ``store`` (None: no cache) holds."""

    def __init__(
        self,
        dataset: Dataset,
        chains: tuple[Chain, ...],
        algorithms: tuple[HashAlgorithm, ...],
        seed: int,
        store: Any,
        escape: Sequence[int] = (),
    ) -> None:
        self.records, self.chains, self.algorithms, self.seed = (
            dataset.records,
            chains,
            algorithms,
            seed,
        )
        self.layout = Columns.of(chains)
        self.store = store
        #: Escape threshold per algorithm (see :class:`~harness.hashing.Task`).
        self.escape = tuple(escape)
        # Per image only the cached file info is kept; cached cells are read again when the image
        # is merged, so memory does not grow with the number of cached hashes.
        self.cached: list[Any] = []
        self.tasks: list[Task] = []
        #: Dataset index of each task.
        self.task_index: list[int] = []
        if store is None:
            self.tasks = [Task(r, escape=self.escape) for r in self.records]
            self.task_index = list(range(len(self.records)))
            self.cached = [None] * len(self.records)
            return
        from harness import store as store_mod

        self.env = store_mod.transform_environment()
        self.algo_keys = [store_mod.algorithm_key(a) for a in algorithms]
        # Content-derived file keys, computed once (each reads the whole file).
        self.file_keys = [store_mod.file_key(r) for r in self.records]
        for i, record in enumerate(self.records):
            info = store.file(self.file_keys[i])
            self.cached.append(info)
            task = self._task(record, info)
            if task is not None:
                self.tasks.append(task)
                self.task_index.append(i)

    def _task(self, record: ImageRecord, info: Any) -> Task | None:
        """What ``record`` still needs (None: nothing, it is served whole from the cache)."""
        if info is None:
            return Task(record, escape=self.escape)
        columns = range(len(self.layout))
        every = {(c, a) for c in columns for a in range(len(self.algorithms))}
        cached = self._cells(record, info)
        cells = frozenset(every - set(cached))
        original = self.layout.ORIGINAL
        faults = len(self.store.faults)
        thumbnails = self.store.thumbnails(info.sha256, self._columns(record))
        if len(self.store.faults) > faults:  # a damaged thumbnail (now dropped): make it again
            return Task(record, escape=self.escape)
        thumbnail = original not in thumbnails
        if not cells and not thumbnail:
            return None
        originals = tuple(
            value if status == "ok" else None
            for status, value, _ in (
                cached.get((original, a), (None, None, None)) for a in range(len(self.algorithms))
            )
        )
        return Task(record, cells, thumbnail, self.escape, originals)

    def _cells(self, record: ImageRecord, info: Any) -> dict[tuple[int, int], Any]:
        return self.store.hashes(info.sha256, self._columns(record), self.algo_keys)

    def _columns(self, record: ImageRecord) -> list[str]:
        from harness import store as store_mod

        return store_mod.column_keys(self.chains, self.seed, record.id, self.env)

    def cached_thumbnails(self, i: int, sha256: str) -> dict[int, bytes]:
        """Thumbnails of image ``i`` (decoded pixels ``sha256``) in the cache, read on demand
        (never all held in memory)."""
        if self.store is None:
            return {}
        return dict(self.store.thumbnails(sha256, self._columns(self.records[i])))

    def outcomes(
        self, computed: Iterator[tuple[int, ImageOutcome]]
    ) -> Iterator[tuple[int, ImageOutcome, bool]]:
        """``(dataset index, outcome, came whole from the cache)``: first the fully cached
        images, then the computed ones as they finish, merged with their cached cells (the
        caller then :meth:`save` s each)."""
        self._fresh = fresh = set(self.task_index)
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
            yield i, out, False

    def _merge(
        self, out: ImageOutcome, record: ImageRecord, info: Any, cells: dict[tuple[int, int], Any]
    ) -> None:
        if out.sha256 is None and not out.failures:  # fully cached: nothing was decoded
            out.sha256, out.size, out.grey_std = info.sha256, info.size, info.grey_std
            out.frames = info.frames
        if not out.hashes:
            out.hashes = [[None] * len(self.algorithms) for _ in range(len(self.layout))]
        for (c, a), (status, value, reason) in cells.items():
            if status == "ok":
                out.hashes[c][a] = value
            else:
                out.exclusions.append(
                    {
                        "image": record.id,
                        "transform": self.layout.name(c),
                        "algorithm": self.algorithms[a].id,
                        "reason": reason,
                    }
                )
        # Keep exclusions in (column, algorithm) order whether they came from the cache or not.
        order = self.layout.index()
        algo_order = {a.id: k for k, a in enumerate(self.algorithms)}
        out.exclusions.sort(
            key=lambda e: (order.get(e["transform"], 0), algo_order.get(e["algorithm"], 0))
        )

    def save(self, i: int, out: ImageOutcome) -> None:
        """Write image ``i``'s computed cells and thumbnails to the cache in one transaction
        (resumable); nothing for an image that came whole from the cache or was not decoded."""
        if self.store is None or out.sha256 is None or i not in self._fresh:
            return
        from harness import store as store_mod

        record = self.records[i]
        columns = self._columns(record)
        excluded = {(e["transform"], e["algorithm"]): e["reason"] for e in out.exclusions}
        cells: list[tuple[str, str, str, bytes | None, str | None]] = []
        for c, row in enumerate(out.hashes):
            column = self.layout.name(c)
            for a, value in enumerate(row):
                key = self.algo_keys[a]
                if key is None:
                    continue  # never cached (see HashAlgorithm.cacheable)
                if value is not None:
                    cells.append((columns[c], key, "ok", value, None))
                elif (column, self.algorithms[a].id) in excluded:
                    reason = excluded[(column, self.algorithms[a].id)]
                    cells.append((columns[c], key, "excluded", None, reason))
        thumbnails = [(columns[c], t) for c, t in enumerate(out.thumbnails) if t is not None]
        info = store_mod.FileInfo(out.sha256 or "", out.size or (0, 0), out.grey_std, out.frames)
        self.store.put(self.file_keys[i], info, cells, thumbnails)
