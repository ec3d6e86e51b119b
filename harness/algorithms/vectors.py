"""Distances that are not plain Hamming: float vectors (L1, L2, cosine) and weighted Hamming.

Every report counts distances as integer levels, so a real-valued distance ``d`` in ``[0, D]`` is
binned to ``round(d / D * levels)`` of ``levels`` (``D`` = 2 for cosine distance ``1 - cos``,
1 for weighted Hamming as a fraction of the total weight, the declared ``max_distance`` for L1
and L2, beyond which everything is level ``levels``). :meth:`VectorMetric.describe` is what
results record as the algorithm's ``distance``, binning included.

Vectors are stored as little-endian float32 (4 bytes per dimension) in the packed rows the
pipeline keeps for every hash; the metrics work on blocks of rows with matrix products, and L1
in chunks of references so memory stays ``O(block x chunk x dims)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

VECTOR_DISTANCES = ("l1", "l2", "cosine")
DISTANCES = ("hamming", "weighted_hamming", *VECTOR_DISTANCES)
#: Floats per L1 scratch block (about 32 MB).
L1_SCRATCH = 1 << 22

Rows = npt.NDArray[np.uint8]
Levels = npt.NDArray[np.int64]


def as_vectors(rows: Rows) -> npt.NDArray[np.float64]:
    """Packed rows of little-endian float32 -> float64 vectors, shape ``(n, dims)``."""
    return np.ascontiguousarray(rows).view("<f4").astype(np.float64)


def vector_row(values: npt.ArrayLike) -> Rows:
    """A float vector as one packed row (little-endian float32 bytes)."""
    return np.frombuffer(np.asarray(values, dtype="<f4").tobytes(), np.uint8).copy()


@dataclass(frozen=True)
class VectorMetric:
    """``metric(queries, references)`` -> int64 levels for one distance and binning.

    Parameters
    ----------
    kind : {"weighted_hamming", "l1", "l2", "cosine"}
    levels : int
        Levels of the binned distance (histograms have ``levels + 1`` bins).
    max_distance : float
        The distance that maps to ``levels`` (2 for cosine, 1 for weighted Hamming).
    weights : tuple of float
        Per-bit weights of weighted Hamming (MSB-first bit order of the packed rows).
    """

    kind: str
    levels: int
    max_distance: float
    weights: tuple[float, ...] = ()

    def describe(self) -> str:
        what = {
            "cosine": "cosine distance (1 - cos) in [0, 2]",
            "l1": f"L1 distance in [0, {self.max_distance:g}] (larger: the last level)",
            "l2": f"L2 distance in [0, {self.max_distance:g}] (larger: the last level)",
            "weighted_hamming": "weighted Hamming as a fraction of the total weight, in [0, 1]",
        }[self.kind]
        step = self.max_distance / self.levels
        return f"{what}, binned to {self.levels} levels of {step:g}: level = round(d / {step:g})"

    def raw(self, queries: Rows, references: Rows) -> npt.NDArray[np.float64]:
        """Real-valued distances, shape ``(nq, nr)``."""
        if self.kind == "weighted_hamming":
            w = np.asarray(self.weights, dtype=np.float64)
            q = np.unpackbits(queries, axis=1)[:, : len(w)].astype(np.float64)
            r = np.unpackbits(references, axis=1)[:, : len(w)].astype(np.float64)
            # sum_k w_k [q_k != r_k] = q.w + r.w - 2 (q*w).r for 0/1 entries
            d = (q @ w)[:, None] + (r @ w)[None, :] - 2.0 * (q * w) @ r.T
            return d / w.sum()
        a, b = as_vectors(queries), as_vectors(references)
        if self.kind == "cosine":
            na = np.linalg.norm(a, axis=1, keepdims=True)
            nb = np.linalg.norm(b, axis=1, keepdims=True)
            a = np.divide(a, na, out=np.zeros_like(a), where=na > 0)
            b = np.divide(b, nb, out=np.zeros_like(b), where=nb > 0)
            d = 1.0 - a @ b.T
            # Two zero vectors are identical; a zero vector against another is orthogonal.
            both_zero = (na == 0) & (nb.T == 0)
            return np.where(both_zero, 0.0, d)
        if self.kind == "l2":
            sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
            return np.sqrt(np.maximum(sq, 0.0))
        chunk = max(1, L1_SCRATCH // max(1, len(a) * a.shape[1]))
        return np.concatenate(
            [
                np.abs(a[:, None, :] - b[None, start : start + chunk, :]).sum(axis=2)
                for start in range(0, len(b), chunk)
            ]
            or [np.zeros((len(a), 0))],
            axis=1,
        )

    def __call__(self, queries: Rows, references: Rows) -> Levels:
        d = self.raw(queries, references)
        levels = np.rint(d / self.max_distance * self.levels)
        return np.clip(levels, 0, self.levels).astype(np.int64)


__all__ = [
    "DISTANCES",
    "VECTOR_DISTANCES",
    "VectorMetric",
    "as_vectors",
    "vector_row",
]
