"""Corpus -> transforms -> hashes: the hashing pass of a run, as arrays ready for the kernels.

Each source image is decoded once; each transform chain is applied to it once; every edited image is
handed to every algorithm (:mod:`harness.hashing`), in worker processes (:mod:`harness.pool`),
through the cache (:mod:`harness.plan`); outcomes are written at their dataset index, so 1 and N
workers give identical output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from datasets_benign import Dataset
from harness.algorithms import HashAlgorithm
from harness.columns import Columns
from harness.hashing import ImageOutcome
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
    """Each image's column thumbnails (JPEG data URIs made in the hashing pass): those the
    cache holds are read from it on demand, the rest are held in memory."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._held: dict[tuple[int, int], str] = {}
        #: Decoded pixels' sha256 of each image whose thumbnails are in the cache.
        self._stored: dict[int, str] = {}

    def keep(self, i: int, outcome: ImageOutcome) -> None:
        """Hold the thumbnails just made for image ``i`` unless the cache now has them."""
        store = self._plan.store
        if store is not None and store.db is not None and outcome.sha256 is not None:
            self._stored[i] = outcome.sha256
            return
        for c, uri in enumerate(outcome.thumbnails):
            if uri is not None:
                self._held[(i, c)] = uri

    def get(self, i: int, column: int) -> str | None:
        """Data URI of image ``i``'s ``column``; None when it could not be made or read."""
        if (i, column) in self._held:
            return self._held[(i, column)]
        if i not in self._stored:
            return None
        return self._plan.cached_thumbnails(i, self._stored[i]).get(column)


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

    With a :class:`~harness.store.HashStore`, cells and thumbnails already in the cache are
    read, not computed (a fully cached image is not even decoded), and every finished image is
    written to the cache at once, so a killed run resumes where it stopped. ``on_image(cached)``
    is called after each image as it finishes; ``cached`` is True when nothing was computed.
    """
    n, columns = len(dataset.records), len(Columns.of(chains))
    packed = [np.zeros((columns, n, a.n_bytes), dtype=np.uint8) for a in algorithms]
    ok = [np.zeros((columns, n), dtype=bool) for _ in algorithms]
    cpu: list[list[npt.NDArray[np.float64]]] = [[] for _ in algorithms]
    outcomes: list[ImageOutcome | None] = [None] * n
    plan = Plan(dataset, chains, algorithms, seed, store)
    thumbnails = Thumbnails(plan)
    work = iter_outcomes(plan.tasks, chains, algorithms, seed, workers, executor)
    # Outcomes arrive in completion order; each is written at its dataset index, so the result
    # is the same for any worker count.
    for i, outcome, cached in plan.outcomes(work):
        for c, row in enumerate(outcome.hashes):
            for a, value in enumerate(row):
                if value is not None:
                    packed[a][c, i] = np.frombuffer(value, dtype=np.uint8)
                    ok[a][c, i] = True
        for a, seconds in enumerate(outcome.cpu):
            cpu[a].append(np.asarray(seconds, dtype=np.float64))
        thumbnails.keep(i, outcome)
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
