"""Hashing one source image: decode, apply every chain, hash each column with every algorithm.

Everything computed from pixels is computed here, while they are in memory: the hashes, the
image's facts (pixel sha256, size, grey-level sd, frames), small JPEG thumbnails for the report's
galleries (so no report decodes an image again) and the CPU time of each hash call (the run's cost
per hash). Within one column every unit's hash is computed once, whoever reads it: a fusion
reads its parts' hashes, a dihedral policy the turned pictures' (see
:mod:`harness.algorithms.shared`, which also says how a shared part's CPU time is counted).
Thumbnails are made of the original and only of the edited copies that can be a gallery pick:
those that escaped (for some algorithm, farther from their original than its escape threshold,
the suite's default); a copy that matched under every algorithm gets none.

Runs in a worker process or in-process; never raises for a bad image: decode, transform and hash
errors become failure records with the stage and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datasets_benign import ImageRecord
from datasets_benign.decode import pixel_sha256
from harness.algorithms import HashAlgorithm
from harness.algorithms.shared import SharedHashes
from harness.columns import Columns
from harness.core.errors import HarnessError, HashExcluded, ImageTooLargeError
from transforms import Chain

#: Longer side of the galleries' thumbnails, in pixels.
THUMBNAIL = 160


@dataclass(frozen=True)
class Task:
    """One image's work: everything (``cells`` None), or only the ``cells`` ``(column,
    algorithm)`` the cache lacks; the original's thumbnail when ``thumbnail``.

    ``escape[a]`` is algorithm ``a``'s escape threshold (empty: no edited copy's thumbnail);
    ``originals[a]`` the original's cached hash, to measure computed copies against when the
    original's cell is not computed again."""

    record: ImageRecord
    cells: frozenset[tuple[int, int]] | None = None
    thumbnail: bool = True
    escape: tuple[int, ...] = ()
    originals: tuple[bytes | None, ...] = ()


@dataclass
class ImageOutcome:
    """Everything computed for one source image.

    ``hashes[c][a]`` is the packed hash of column ``c`` (see :class:`~harness.columns.Columns`)
    under algorithm ``a``, or None when that step failed or was not asked for;
    ``thumbnails[c]`` the column's JPEG bytes (None when not made); ``cpu[a]`` the CPU
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
    thumbnails: list[bytes | None] = field(default_factory=list)
    cpu: list[list[float]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    exclusions: list[dict[str, str]] = field(default_factory=list)


def _reason(exc: BaseException) -> str:
    """A failure reason: harness errors already read as one; others get their type prefixed."""
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {text}"


def _is_identity(chain: Chain) -> bool:
    return all(step.name == "identity" for step in chain.steps)


def make_thumbnail(image: Any) -> bytes | None:
    """The galleries' JPEG of ``image``; None when it cannot be made (a gallery never fails a
    run). Kept as raw bytes (a quarter smaller than base64) until a report embeds it."""
    from transforms.codec import thumbnail_jpeg

    try:
        return thumbnail_jpeg(image, THUMBNAIL)
    except Exception:
        return None


def distance(algorithm: HashAlgorithm, original: bytes, edited: bytes) -> int:
    """Distance of one edited copy (the query) to its original under ``algorithm``'s metric."""
    from harness.kernels import hamming

    query, reference = (np.frombuffer(h, dtype=np.uint8)[None] for h in (edited, original))
    return int(hamming(query, reference, algorithm.metric())[0])


def escaped(
    algorithms: Sequence[HashAlgorithm],
    escape: Sequence[int],
    originals: Sequence[bytes | None],
    edited: Sequence[bytes | None],
) -> list[tuple[int, int]]:
    """``(algorithm, distance)`` for each algorithm under which the edited copy (hashes
    ``edited``) is farther than ``escape[a]`` from its original (hashes ``originals``)."""
    out = []
    for a, (algo, limit) in enumerate(zip(algorithms, escape, strict=True)):
        original, copy = originals[a], edited[a]
        if original is not None and copy is not None:
            d = distance(algo, original, copy)
            if d > limit:
                out.append((a, d))
    return out


def hash_task(
    task: Task, chains: Sequence[Chain], algorithms: Sequence[HashAlgorithm], suite_seed: int
) -> ImageOutcome:
    """:func:`hash_image` of a :class:`Task` (what the worker pool and Dask run)."""
    return hash_image(
        task.record,
        chains,
        algorithms,
        suite_seed,
        task.cells,
        thumbnail=task.thumbnail,
        escape=task.escape,
        originals=task.originals,
    )


def hash_image(
    record: ImageRecord,
    chains: Sequence[Chain],
    algorithms: Sequence[HashAlgorithm],
    suite_seed: int,
    needed: frozenset[tuple[int, int]] | None = None,
    *,
    thumbnail: bool = True,
    escape: Sequence[int] = (),
    originals: Sequence[bytes | None] = (),
) -> ImageOutcome:
    """Decode ``record``, apply every chain, hash the original and each edit with every algorithm.

    With ``needed`` (cells ``(column, algorithm)``), only those are computed - the rest come
    from the cache - and chains with nothing to compute are not applied. The original's
    thumbnail is made when ``thumbnail``; an edited copy's only when it escaped under some
    algorithm ``a`` (distance above ``escape[a]``; no ``escape``: never), measured against the
    original's hash computed here or, when the original's cell is not computed, ``originals[a]``.
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
    hasher = _ColumnHasher(out, algorithms, layout, needed)
    reference: list[bytes | None] | None = None
    no_cache = [None] * len(algorithms)
    for c in range(len(layout)):
        if not hasher.wanted(c) and not (c == layout.ORIGINAL and thumbnail):
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
        hasher.hash_column(image, c, identity)
        if c == layout.ORIGINAL:
            if thumbnail:
                out.thumbnails[c] = make_thumbnail(image)
            continue
        if reference is None:  # cached hashes stand in for the original's cells not computed
            pairs = zip(out.hashes[layout.ORIGINAL], originals or no_cache, strict=True)
            reference = [h if h is not None else o for h, o in pairs]
        if escape and escaped(algorithms, escape, reference, out.hashes[c]):
            out.thumbnails[c] = make_thumbnail(image)
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

    def _hash(self, memo: SharedHashes, a: int) -> tuple[bytes | None, str | None, str | None]:
        try:
            value, seconds = memo.hash_and_cost(self.algorithms[a])
        except HashExcluded as exc:
            return None, str(exc), None
        except Exception as exc:
            return None, None, _reason(exc)
        self.out.cpu[a].append(seconds)
        return value.tobytes(), None, None

    def hash_column(self, image: Any, c: int, identity: bool) -> None:
        out, column = self.out, self.layout.name(c)
        memo = SharedHashes(image)  # each part hashed once for every unit that reads it
        for a, algo in enumerate(self.algorithms):
            if self.needed is not None and (c, a) not in self.needed:
                continue
            if identity and algo.cacheable and a in self.of_original:
                value, excluded, error = self.of_original[a]
            else:
                value, excluded, error = self._hash(memo, a)
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
