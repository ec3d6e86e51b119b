"""Corpus -> transforms -> hashes: the hashing pass of a run, as arrays ready for the kernels.

Each source image is decoded once; each transform chain is applied to it once; every edited image is
handed to every algorithm (:mod:`harness.hashing`), in worker processes (:mod:`harness.pool`),
through the cache (:mod:`harness.plan`); outcomes are written at their dataset index, so 1 and N
workers give identical output.
"""

from __future__ import annotations

import contextlib
from base64 import b64encode
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from datasets_benign import Dataset
from harness.algorithms import HashAlgorithm
from harness.columns import Columns
from harness.hashing import ImageOutcome, escaped
from harness.plan import Plan
from harness.pool import iter_outcomes
from transforms import Chain


@dataclass
class HashedCorpus:
    """Packed hashes of every image and edit, as arrays ready for the distance kernels.

    ``packed[a]`` has shape ``(columns, n_images, n_bytes)`` (:class:`~harness.columns.Columns`:
    the original, then each chain); ``ok[a]`` is the matching
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
    #: Per algorithm, the CPU seconds of every hash call this run made (none when cached).
    cpu: list[npt.NDArray[np.float64]] = field(default_factory=list)
    #: The galleries' thumbnails (see :class:`Thumbnails`); None for hashes scored from elsewhere.
    thumbnails: Thumbnails | None = None

    @property
    def decoded(self) -> npt.NDArray[np.bool_]:
        """Images whose pixels were decoded (a decode failure leaves ``sha256`` unset)."""
        return np.array([s is not None for s in self.sha256], dtype=bool)


class Thumbnails:
    """The galleries' thumbnails made in the hashing pass (JPEG bytes), bounded in memory.

    Every original's is kept: read from the cache on demand when there is one, else held.
    Of the edited copies, only those that can be a gallery pick are held: per (algorithm,
    transform), the :data:`~harness.evaluate.REVIEW_LIMIT` worst escapes so far, ranked as the
    cell's ``misses`` list ranks them (distance, then image id, both descending), so whatever
    the gallery picks from those lists - after setting apart the images corpus hygiene flags -
    is held, and the count never grows with the corpus. An exact duplicate of an earlier image
    (left out of the evaluation) takes no place.
    """

    def __init__(self, plan: Plan, escape: Sequence[int]) -> None:
        from harness.evaluate import REVIEW_LIMIT

        self._plan, self._escape, self._limit = plan, tuple(escape), REVIEW_LIMIT
        self._originals: dict[int, bytes] = {}
        #: Decoded pixels' sha256 of each image whose thumbnails are in the cache.
        self._stored: dict[int, str] = {}
        self._edited: dict[tuple[int, int], bytes] = {}
        #: Per (algorithm, edited column): ``(distance, image id, image)`` of the worst escapes.
        self._worst: dict[tuple[int, int], list[tuple[int, str, int]]] = {}
        #: First image (dataset index) with each pixel sha256.
        self._first: dict[str, int] = {}

    @property
    def held(self) -> int:
        """Edited copies' thumbnails held in memory."""
        return len(self._edited)

    def held_bytes(self) -> int:
        """Bytes of every thumbnail held in memory."""
        return sum(map(len, self._edited.values())) + sum(map(len, self._originals.values()))

    def keep(self, i: int, outcome: ImageOutcome) -> None:
        """Take image ``i``'s thumbnails (its hashes merged: computed and cached); an edited
        copy's that is not held is dropped from ``outcome``, so the cache does not store it."""
        plan, layout = self._plan, self._plan.layout
        made = outcome.thumbnails or [None] * len(layout)
        stored = plan.store is not None and plan.store.db is not None
        if stored and outcome.sha256 is not None:
            self._stored[i] = outcome.sha256
        elif (original := made[layout.ORIGINAL]) is not None:
            self._originals[i] = original
        if outcome.sha256 is None or not self._escape:
            return
        if plan.cached[i] is not None:  # escapes kept by an earlier run of the same suite
            cached = plan.cached_thumbnails(i, outcome.sha256)
            made = [m if m is not None else cached.get(c) for c, m in enumerate(made)]
        first = self._first_of(i, outcome.sha256)
        for c in range(1, len(layout)):
            thumbnail = made[c]
            if not first or thumbnail is None:
                continue
            hashes = outcome.hashes[c]
            for a, d in escaped(plan.algorithms, self._escape, outcome.hashes[0], hashes):
                self._push((a, c), (d, outcome.image_id, i))
            if self._is_held(i, c):
                self._edited[(i, c)] = thumbnail
        if outcome.thumbnails:
            for c in range(1, len(layout)):
                if (i, c) not in self._edited:
                    outcome.thumbnails[c] = None

    def _first_of(self, i: int, sha256: str) -> bool:
        """Whether image ``i`` is the first with its pixels so far; a later-arriving earlier
        image takes over (the copies it replaces leave the ranking)."""
        first = self._first.setdefault(sha256, i)
        if first <= i:
            return first == i
        self._first[sha256] = i
        for worst in self._worst.values():
            worst[:] = [w for w in worst if w[2] != first]
        self._release(first, range(1, len(self._plan.layout)))
        return True

    def _push(self, key: tuple[int, int], entry: tuple[int, str, int]) -> None:
        worst = self._worst.setdefault(key, [])
        worst.append(entry)
        worst.sort(reverse=True)
        if len(worst) > self._limit:
            _, _, image = worst.pop()
            self._release(image, [key[1]])

    def _is_held(self, i: int, c: int) -> bool:
        return any(w[2] == i for a in range(len(self._escape)) for w in self._worst.get((a, c), []))

    def _release(self, i: int, columns: Iterable[int]) -> None:
        for c in columns:
            if (i, c) in self._edited and not self._is_held(i, c):
                del self._edited[(i, c)]

    def get(self, i: int, column: int) -> str | None:
        """Data URI of image ``i``'s ``column``; None when it was not made, kept or read."""
        if column == self._plan.layout.ORIGINAL:
            found = self._originals.get(i)
            if found is None and i in self._stored:
                found = self._plan.cached_thumbnails(i, self._stored[i]).get(column)
        else:
            found = self._edited.get((i, column))
        return None if found is None else "data:image/jpeg;base64," + b64encode(found).decode()


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
    escape: Sequence[int] = (),
) -> HashedCorpus:
    """Hash every image of ``dataset`` and every edit of it with every algorithm.

    With a :class:`~harness.store.HashStore`, cells and thumbnails already in the cache are
    read, not computed (a fully cached image is not even decoded), and every finished image is
    written to the cache at once, so a killed run resumes where it stopped. ``on_image(cached)``
    is called after each image as it finishes; ``cached`` is True when nothing was computed.
    Thumbnails are made of every original and of the edited copies that escaped: farther than
    ``escape[a]`` from their original under algorithm ``a`` (the suite's default thresholds;
    empty: of no edited copy); only the gallery's candidates among them are kept
    (:class:`Thumbnails`).
    """
    n, columns = len(dataset.records), len(Columns.of(chains))
    packed = [np.zeros((columns, n, a.n_bytes), dtype=np.uint8) for a in algorithms]
    ok = [np.zeros((columns, n), dtype=bool) for _ in algorithms]
    cpu: list[list[npt.NDArray[np.float64]]] = [[] for _ in algorithms]
    outcomes: list[ImageOutcome | None] = [None] * n
    plan = Plan(dataset, chains, algorithms, seed, store, escape)
    thumbnails = Thumbnails(plan, escape)
    work = iter_outcomes(plan.tasks, chains, algorithms, seed, workers, executor)
    with contextlib.closing(work):  # however the loop ends (Ctrl-C too), workers stop now
        # Outcomes arrive in completion order; each is written at its dataset index, so the
        # result is the same for any worker count.
        for i, outcome, cached in plan.outcomes(work):
            for c, row in enumerate(outcome.hashes):
                for a, value in enumerate(row):
                    if value is not None:
                        packed[a][c, i] = np.frombuffer(value, dtype=np.uint8)
                        ok[a][c, i] = True
            for a, seconds in enumerate(outcome.cpu):
                cpu[a].append(np.asarray(seconds, dtype=np.float64))
            thumbnails.keep(i, outcome)
            plan.save(i, outcome)
            outcome.hashes, outcome.thumbnails = [], []  # now in the arrays, the cache or memory
            outcomes[i] = outcome
            if on_image is not None:
                on_image(cached)
    done = [o for o in outcomes if o is not None]
    computed = sum(
        columns * len(algorithms) if task.cells is None else len(task.cells) for task in plan.tasks
    )
    return HashedCorpus(
        image_ids=[o.image_id for o in done],
        sha256=[o.sha256 for o in done],
        sizes=[o.size for o in done],
        packed=packed,
        ok=ok,
        failures=[f for o in done for f in o.failures],
        exclusions=[e for o in done for e in o.exclusions],
        grey_std=[o.grey_std for o in done],
        hashes_computed=computed,
        frames=[o.frames for o in done],
        cpu=[np.concatenate(c) if c else np.zeros(0) for c in cpu],
        thumbnails=thumbnails,
    )
