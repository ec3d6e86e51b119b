"""Hashing one source image: decode, apply every chain, hash each column with every algorithm.

Everything computed from pixels is computed here, while they are in memory: the hashes, the
image's facts (pixel sha256, size, grey-level sd, frames), a small JPEG thumbnail of each column
for the report's galleries (so no report decodes an image again) and the CPU time of each hash
call (the run's cost per hash). Runs in a worker process or in-process; never raises for a bad
image: decode, transform and hash errors become failure records with the stage and the reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datasets_benign import ImageRecord
from datasets_benign.decode import pixel_sha256
from harness.algorithms import HashAlgorithm
from harness.columns import Columns
from harness.core.errors import HarnessError, HashExcluded, ImageTooLargeError
from transforms import Chain

#: Longer side of the galleries' thumbnails, in pixels.
THUMBNAIL = 160

try:  # CPU of child processes (external hashers) counts towards their hash calls
    import resource

    def _cpu() -> float:
        """CPU seconds of this process (every thread) and of its waited-for children."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

except ImportError:  # pragma: no cover - Windows has no resource module

    def _cpu() -> float:
        return time.process_time()


@dataclass(frozen=True)
class Task:
    """One image's work: everything (``cells`` None), or only the ``cells`` ``(column,
    algorithm)`` and ``thumbnails`` (columns) the cache lacks."""

    record: ImageRecord
    cells: frozenset[tuple[int, int]] | None = None
    thumbnails: frozenset[int] | None = None


@dataclass
class ImageOutcome:
    """Everything computed for one source image.

    ``hashes[c][a]`` is the packed hash of column ``c`` (see :class:`~harness.columns.Columns`)
    under algorithm ``a``, or None when that step failed or was not asked for;
    ``thumbnails[c]`` the column's JPEG data URI (None when not made); ``cpu[a]`` the CPU
    seconds of each hash call algorithm ``a`` made (cached and reused hashes cost nothing).
    """

    image_id: str
    sha256: str | None = None
    size: tuple[int, int] | None = None
    #: Standard deviation of the grey levels: near 0 for a flat (degenerate) image.
    grey_std: float | None = None
    #: Frames in the file when it has more than one (the first is the one evaluated).
    frames: int = 1
    hashes: list[list[bytes | None]] = field(default_factory=list)
    thumbnails: list[str | None] = field(default_factory=list)
    cpu: list[list[float]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    exclusions: list[dict[str, str]] = field(default_factory=list)


def _reason(exc: BaseException) -> str:
    """A failure reason: harness errors already read as one; others get their type prefixed."""
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {text}"


def _is_identity(chain: Chain) -> bool:
    return all(step.name == "identity" for step in chain.steps)


def thumbnail(image: Any) -> str | None:
    """The galleries' JPEG data URI of ``image``; None when it cannot be made (a gallery
    never fails a run)."""
    from transforms.codec import thumbnail_data_uri

    try:
        return thumbnail_data_uri(image, THUMBNAIL)
    except Exception:
        return None


def hash_task(
    task: Task, chains: Sequence[Chain], algorithms: Sequence[HashAlgorithm], suite_seed: int
) -> ImageOutcome:
    """:func:`hash_image` of a :class:`Task` (what the worker pool and Dask run)."""
    return hash_image(
        task.record, chains, algorithms, suite_seed, task.cells, thumbnails=task.thumbnails
    )


def hash_image(
    record: ImageRecord,
    chains: Sequence[Chain],
    algorithms: Sequence[HashAlgorithm],
    suite_seed: int,
    needed: frozenset[tuple[int, int]] | None = None,
    *,
    thumbnails: frozenset[int] | None = None,
) -> ImageOutcome:
    """Decode ``record``, apply every chain, hash the original and each edit with every algorithm.

    With ``needed`` (cells ``(column, algorithm)``), only those are computed - the rest come
    from the cache - and only ``thumbnails`` (columns; by default every column when ``needed``
    is None, none otherwise) are made; chains with nothing to compute are not applied.
    An identity chain's pixels are the original's, so its cells repeat the original's outcome
    (hash, exclusion or failure) instead of hashing the same pixels again - except for
    algorithms that are not ``cacheable`` (external hashers), which are asked again so that the
    identity control still tests their determinism.
    """
    layout = Columns.of(chains)
    out = ImageOutcome(
        record.id,
        hashes=[[None] * len(algorithms) for _ in range(len(layout))],
        thumbnails=[None] * len(layout),
        cpu=[[] for _ in algorithms],
    )
    try:
        original = record.load()
    except Exception as exc:  # any decoder error is the image's failure, not the run's
        failure = {"image": record.id, "stage": "decode", "error": _reason(exc)}
        if isinstance(exc, ImageTooLargeError):
            failure["kind"] = "decompression_bomb"  # the dataset's policy decides what it is
        out.failures.append(failure)
        return out
    _describe(out, record, original)
    if thumbnails is None:
        thumbnails = frozenset(range(len(layout))) if needed is None else frozenset()
    hasher = _ColumnHasher(out, algorithms, layout, needed)
    for c in range(len(layout)):
        if c not in thumbnails and not hasher.wanted(c):
            continue
        chain = None if c == layout.ORIGINAL else chains[layout.chain_of(c)]
        identity = chain is not None and _is_identity(chain)
        image = original
        if chain is not None and not identity:
            try:
                image = chain.apply(original, suite_seed=suite_seed, image_id=record.id)
            except Exception as exc:
                failure = {"image": record.id, "stage": "transform", "transform": chain.id}
                out.failures.append({**failure, "error": _reason(exc)})
                continue
        if c in thumbnails:
            reuse = identity and out.thumbnails[layout.ORIGINAL] is not None
            out.thumbnails[c] = out.thumbnails[layout.ORIGINAL] if reuse else thumbnail(image)
        hasher.hash_column(image, c, identity)
    return out


def _describe(out: ImageOutcome, record: ImageRecord, original: Any) -> None:
    """The decoded image's facts: pixel sha256, size, frames, grey-level sd."""
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


class _ColumnHasher:
    """Hashes one image's columns into ``out``, remembering the original's outcome per
    algorithm for the identity control."""

    def __init__(
        self,
        out: ImageOutcome,
        algorithms: Sequence[HashAlgorithm],
        layout: Columns,
        needed: frozenset[tuple[int, int]] | None,
    ) -> None:
        self.out, self.algorithms, self.layout, self.needed = out, algorithms, layout, needed
        self.columns = None if needed is None else {c for c, _ in needed}
        # The original's outcome per algorithm: (hash, exclusion reason, failure reason).
        self.of_original: dict[int, tuple[bytes | None, str | None, str | None]] = {}

    def wanted(self, c: int) -> bool:
        """Whether column ``c`` has any cell to compute."""
        return self.columns is None or c in self.columns

    def _hash(self, image: Any, a: int) -> tuple[bytes | None, str | None, str | None]:
        start = _cpu()
        try:
            value = self.algorithms[a].hash(image).tobytes()
        except HashExcluded as exc:
            return None, str(exc), None
        except Exception as exc:
            return None, None, _reason(exc)
        self.out.cpu[a].append(_cpu() - start)
        return value, None, None

    def hash_column(self, image: Any, c: int, identity: bool) -> None:
        out, column = self.out, self.layout.name(c)
        for a, algo in enumerate(self.algorithms):
            if self.needed is not None and (c, a) not in self.needed:
                continue
            if identity and algo.cacheable and a in self.of_original:
                value, excluded, error = self.of_original[a]
            else:
                value, excluded, error = self._hash(image, a)
            if c == self.layout.ORIGINAL:
                self.of_original[a] = (value, excluded, error)
            out.hashes[c][a] = value
            where = {"image": out.image_id, "transform": column, "algorithm": algo.id}
            if excluded is not None:
                out.exclusions.append({**where, "reason": excluded})
            if error is not None:
                out.failures.append(
                    {"image": out.image_id, "stage": "hash", **where, "error": error}
                )
