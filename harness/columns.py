"""The column layout of a run's hashes: the original, then one column per transform chain.

Every per-image array of a run (packed hashes, success masks, gated copies, thumbnails) has one
row per column in this order; :class:`Columns` names them so that no module repeats the
"0 = original, 1 + t = chain t" arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Name of the original's column (as in failure and exclusion records).
ORIGINAL_NAME = "original"


@dataclass(frozen=True)
class Columns:
    """Column names of a run: ``"original"`` and each chain id, in suite order."""

    chain_ids: tuple[str, ...]

    #: Index of the original's column.
    ORIGINAL = 0

    @classmethod
    def of(cls, chains: Sequence[Any]) -> Columns:
        """The layout of ``chains`` (anything with an ``id``: transform chains)."""
        return cls(tuple(str(c.id) for c in chains))

    def __len__(self) -> int:
        return 1 + len(self.chain_ids)

    @staticmethod
    def chain(t: int) -> int:
        """Column of chain ``t`` (its index in the suite's transforms)."""
        return 1 + t

    @staticmethod
    def chain_of(column: int) -> int:
        """Chain index of an edited ``column`` (not the original's)."""
        return column - 1

    @property
    def edits(self) -> slice:
        """Every chain's column, for slicing a per-column array."""
        return slice(1, None)

    def name(self, column: int) -> str:
        """``"original"`` or the chain id of ``column`` (as failure and exclusion records say)."""
        return ORIGINAL_NAME if column == self.ORIGINAL else self.chain_ids[column - 1]

    @property
    def names(self) -> list[str]:
        return [self.name(c) for c in range(len(self))]

    def index(self) -> dict[str, int]:
        """Column of each name (the original's and every chain id)."""
        return {name: c for c, name in enumerate(self.names)}
