"""Distances that are not plain Hamming: float vectors (L1, L2, cosine) and weighted Hamming.

Every report counts distances as integer levels, so a real-valued distance ``d`` in ``[0, D]`` is
binned to ``round(d / D * levels)`` of ``levels`` (``D`` = 2 for cosine distance ``1 - cos``,
1 for weighted Hamming as a fraction of the total weight, the declared ``max_distance`` for L1
and L2, beyond which everything is level ``levels``). :meth:`VectorMetric.describe` is what
results record as the algorithm's ``distance``, binning included.

Vectors are stored as little-endian float32 (4 bytes per dimension) in the packed rows the
pipeline keeps for every hash. The arithmetic is :class:`harness.kernels.VectorPlan`'s: each
pair's terms are summed in one fixed order, in numpy blocks and in the compiled kernels alike,
so both give the same levels bit for bit.

:class:`Measured` is the one declaration of such a distance (measure, bits or dims, levels,
range, weights) that both hashes configured outside the harness use: an external hasher answering
over the protocol and a vendor's hash file imported by ``hash-harness score``, so the same vectors
give the same levels whichever way they arrive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.algorithms.base import OperatingThreshold
from harness.core.errors import InvalidParameterError
from harness.core.params import check_choice, check_int, check_real, shown
from harness.kernels import Metric, VectorPlan

VECTOR_DISTANCES = ("l1", "l2", "cosine")
#: Smallest max_distance of l1 / l2: below it float32 distances cannot be binned meaningfully.
MIN_MAX_DISTANCE = 1e-6
DISTANCES = ("hamming", "weighted_hamming", *VECTOR_DISTANCES)
#: Longest hash made outside the harness that is scored: bits of a bit hash, numbers of a
#: vector. Checked before a hash is stored; results keep a histogram over every distance level.
MAX_LENGTH = 65536
#: Default Hamming thresholds of a hash declared only by its length, where hashes of that length
#: have a usual operating point: the built-in 64-bit hashes' and PDQ's. Other lengths: 10%.
USUAL_HAMMING = {
    64: OperatingThreshold(10, "as the built-in 64-bit hashes: <= 10 of 64 bits, the usual start"),
    256: OperatingThreshold(31, "as PDQ, the usual 256-bit hash: <= 31 of 256 bits (Meta)"),
}

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

    def plan(self) -> VectorPlan:
        """The distance as the kernels compute it (numpy and compiled, equal bit for bit)."""
        return VectorPlan(self.kind, self.levels, self.max_distance, self.weights)

    def raw(self, queries: Rows, references: Rows) -> npt.NDArray[np.float64]:
        """Real-valued distances, shape ``(nq, nr)``."""
        return self.plan().distances(queries, references)

    def __call__(self, queries: Rows, references: Rows) -> Levels:
        return self.plan()(queries, references)


def parse_vector(values: Any, dims: int | None) -> npt.NDArray[np.float32]:
    """``values`` (decoded JSON) as a float32 vector of ``dims`` numbers (any length when None).

    Raises
    ------
    ValueError
        Saying what is wrong, worded to follow "the vector ...": not a list of numbers, the wrong
        length, or a value that is not a finite float32 (NaN, infinite, beyond float32's range).
    """
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise ValueError("is not a list of numbers")
    if not values:
        raise ValueError("is empty")
    if len(values) > MAX_LENGTH:
        raise ValueError(f"has {len(values)} numbers; at most {MAX_LENGTH} are scored")
    if dims is not None and len(values) != dims:
        raise ValueError(f"has {len(values)} numbers, declared dims={dims}")
    with np.errstate(over="ignore"):
        vector = np.asarray(values, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(vector))
    if bad.size:
        raise ValueError(
            f"has a value that is not a finite float32 (number {bad[0] + 1}: {values[bad[0]]!r})"
        )
    return vector


@dataclass(frozen=True)
class Measured:
    """How two answers of a hash made outside the harness are compared (a mixin of adapters).

    ``measure`` is "hamming" (``bits``), "weighted_hamming" (``bits`` with one weight per bit,
    as PHASER offers) or a float-vector distance "l1", "l2", "cosine" (``dims`` numbers per image),
    real-valued distances binned to ``levels`` (see the module docstring; ``max_distance`` is the
    L1 / L2 distance mapped to the last level). Call :meth:`check_measure` on construction.
    """

    bits: int = 64
    measure: str = "hamming"
    dims: int = 0
    levels: int = 1000
    max_distance: float = 0.0
    weights: tuple[float, ...] = ()

    def check_measure(self, owner: str) -> None:
        """Refuse parameters that do not fit together (``owner`` names the adapter)."""
        check_choice("measure", self.measure, owner=owner, choices=DISTANCES)
        vector = self.measure in VECTOR_DISTANCES
        check_int(
            "dims", self.dims, owner=owner, min_value=1 if vector else 0, max_value=MAX_LENGTH
        )
        if self.dims and not vector:
            raise InvalidParameterError(
                f"{owner}: dims is for vector measures ({', '.join(VECTOR_DISTANCES)}); "
                f"a {self.measure} hash declares bits."
            )
        check_int("levels", self.levels, owner=owner, min_value=1, max_value=100_000)
        needs_range = self.measure in ("l1", "l2")
        if needs_range and not self.max_distance:
            raise InvalidParameterError(
                f"{owner}: {self.measure} needs max_distance (score: --max-distance D), the "
                f"distance binned to the last of the {self.levels} levels."
            )
        m = check_real(
            "max_distance",
            self.max_distance,
            owner=owner,
            min_value=0.0,
            max_value=1e12,
            min_open=needs_range,
        )
        if needs_range and m < MIN_MAX_DISTANCE:
            raise InvalidParameterError(
                f"{owner}: max_distance {m:g} is below {MIN_MAX_DISTANCE:g}: every pair would "
                "land on the last level; give the largest distance that still matters."
            )
        object.__setattr__(self, "max_distance", m)
        if m and not needs_range:
            raise InvalidParameterError(
                f"{owner}: max_distance is for l1 and l2 (cosine runs to 2, weighted Hamming to "
                "1 of the total weight)."
            )
        weights = tuple(self.weights) if isinstance(self.weights, list | tuple) else (None,)
        if self.measure == "weighted_hamming":
            ok = (
                len(weights) == self.bits
                and all(
                    isinstance(w, int | float) and not isinstance(w, bool) and 0 <= w < math.inf
                    for w in weights
                )
                and sum(weights) > 0  # type: ignore[arg-type]
            )
            if not ok:
                raise InvalidParameterError(
                    f"{owner}: weighted_hamming needs weights=[...], {self.bits} non-negative "
                    f"numbers (one per bit) with a positive sum. Got {shown(self.weights)} "
                    "instead."
                )
        elif weights:
            raise InvalidParameterError(f"{owner}: weights are for measure='weighted_hamming'.")
        object.__setattr__(self, "weights", tuple(float(w) for w in weights))  # type: ignore[arg-type]

    @property
    def vector(self) -> bool:
        """Whether answers are float vectors rather than bits."""
        return self.measure in VECTOR_DISTANCES

    @property
    def n_bits(self) -> int:
        return 32 * self.dims if self.vector else self.bits

    def operating_thresholds(self) -> tuple[OperatingThreshold, ...]:
        """The usual threshold of a Hamming hash of this length (:data:`USUAL_HAMMING`);
        otherwise 10% of the levels, with that as its source (recorded in the results)."""
        usual = USUAL_HAMMING.get(self.bits) if self.measure == "hamming" else None
        if usual:
            return (usual,)
        what = f"{self.bits}-bit Hamming" if self.measure == "hamming" else self.measure
        levels = self.n_levels
        return (
            OperatingThreshold(
                round(0.1 * levels),
                f"no usual value for {what}: 10% of the {levels} {self.level_unit}",
            ),
        )

    @property
    def n_levels(self) -> int:
        return self.bits if self.measure == "hamming" else self.levels

    @property
    def level_unit(self) -> str:
        return "bits" if self.measure == "hamming" else "levels"

    @property
    def always_shown(self) -> tuple[str, ...]:
        return ("label", "dims", "measure") if self.vector else ("label", "bits")

    def metric(self) -> Metric | None:
        if self.measure == "hamming":
            return None
        top = {"cosine": 2.0, "weighted_hamming": 1.0}.get(self.measure, self.max_distance)
        return VectorMetric(self.measure, self.levels, top, self.weights)

    @property
    def distance(self) -> str:
        """What results record: the measure and, for real-valued ones, the binning."""
        metric = self.metric()
        return "hamming" if metric is None else metric.describe()  # type: ignore[attr-defined]

    def pack(self, answer: npt.NDArray[Any]) -> Rows:
        """One answer (bits, or a float vector) as the packed row the pipeline keeps."""
        return vector_row(answer) if self.vector else np.packbits(answer.astype(bool))


__all__ = [
    "DISTANCES",
    "VECTOR_DISTANCES",
    "Measured",
    "VectorMetric",
    "as_vectors",
    "parse_vector",
    "vector_row",
]
