"""One picture's hashes within a hashing pass, shared by every unit that needs them.

A suite listing ``pdq``, ``phash`` and ``pdq & phash`` hashes each picture with PDQ and pHash
once: the fusion reads its parts' hashes from :class:`SharedHashes` (``memo.hash(part)``)
instead of computing them again, a dihedral policy hashes each turned picture once whatever
reads it, and a quality gate reads the PDQ quality the PDQ hash was computed with. Everything
is keyed by what determines it (the unit's id, how the picture was derived from the one being
hashed), so a shared value is the value each unit would have computed alone; units that are
not ``cacheable`` (an external command) are asked every time, as they would be.

Cost: each value records the CPU time spent making it, less the time of the values it read
that were made while it ran, and which values it read. A unit's cost is the CPU time of
everything it needed, counted once: the time it would take alone on this picture. A part
shared by several units is counted in full for each of them, so the units' costs can add up to
more than the pass spent; that is the figure a platform deploying one of them would pay.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

    from harness.algorithms.base import HashAlgorithm

try:  # CPU of child processes (external hashers) counts towards their hash calls
    import resource

    def cpu_seconds() -> float:
        """CPU seconds of this process (every thread) and of its waited-for children."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

except ImportError:  # pragma: no cover - Windows has no resource module

    def cpu_seconds() -> float:
        return time.process_time()


@dataclass
class _Entry:
    value: Any
    error: BaseException | None
    #: CPU seconds spent making the value, less the values made while it was made.
    own: float
    #: Every value it read (directly or through others).
    reads: frozenset[Hashable]


@dataclass
class _Frame:
    reads: set[Hashable] = field(default_factory=set)
    nested: float = 0.0  # CPU seconds of values made while this one was made


@dataclass
class _Ledger:
    """The values made for one picture (and the pictures derived from it), shared by its
    :class:`SharedHashes` views."""

    entries: dict[Hashable, _Entry] = field(default_factory=dict)
    frames: list[_Frame] = field(default_factory=list)
    fresh: Any = field(default_factory=itertools.count)

    def get(self, key: Hashable, make: Callable[[], Any], keep: bool = True) -> Hashable:
        """The key under which the value is kept, made with ``make`` unless known (or when not
        ``keep``: made again under a key of its own)."""
        if not keep:
            key = (key, "call", next(self.fresh))
        entry = self.entries.get(key)
        if entry is None:
            frame = _Frame()
            self.frames.append(frame)
            start = cpu_seconds()
            try:
                value, error = make(), None
            except Exception as exc:  # kept: every unit that reads it fails the same way
                value, error = None, exc
            spent = cpu_seconds() - start
            self.frames.pop()
            entry = _Entry(value, error, spent - frame.nested, frozenset(frame.reads))
            self.entries[key] = entry
            if self.frames:
                self.frames[-1].nested += spent
        if self.frames:
            self.frames[-1].reads |= {key, *entry.reads}
        return key

    def value(self, key: Hashable) -> Any:
        entry = self.entries[key]
        if entry.error is not None:
            raise entry.error
        return entry.value

    def cost(self, key: Hashable) -> float:
        """CPU seconds of the value and of everything it read, each counted once."""
        entry = self.entries[key]
        return entry.own + sum(self.entries[k].own for k in entry.reads - {key})


class SharedHashes:
    """The values computed from one picture in a hashing pass: hashes by unit, derived pictures
    (a turned or cropped copy) and intermediate results (PDQ's bits and quality).

    Parameters
    ----------
    image : PIL.Image.Image
        The picture hashed.
    """

    def __init__(self, image: Image.Image, _ledger: _Ledger | None = None, _path: tuple = ()):
        self.image = image
        self._ledger = _ledger if _ledger is not None else _Ledger()
        self._path = _path

    def value(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per picture for ``key`` (what determines the value)."""
        return self._ledger.value(self._ledger.get((*self._path, "value", key), make))

    def view(self, key: Hashable, make: Callable[[Image.Image], Image.Image]) -> SharedHashes:
        """The shared values of the picture ``make(image)``; ``key`` names the derivation (the
        same key, the same pixels)."""
        path = (*self._path, "view", key)
        image = self._ledger.value(self._ledger.get(path, lambda: make(self.image)))
        return SharedHashes(image, self._ledger, path)

    def hash_and_cost(self, algo: HashAlgorithm) -> tuple[npt.NDArray[np.uint8], float]:
        """``algo``'s packed hash of the picture and its CPU seconds alone (see the module);
        raises what the hash raised (:class:`~harness.core.errors.HashExcluded`...)."""
        name = (*self._path, "hash", type(algo).__qualname__, algo.id)
        key = self._ledger.get(name, lambda: algo.hash_shared(self), keep=algo.cacheable)
        return self._ledger.value(key), self._ledger.cost(key)

    def hash(self, algo: HashAlgorithm) -> npt.NDArray[np.uint8]:
        """``algo``'s packed hash of the picture, computed once (see :meth:`hash_and_cost`)."""
        return self.hash_and_cost(algo)[0]


__all__ = ["SharedHashes", "cpu_seconds"]
