"""Rates from distance histograms, each with its count and a 95% Clopper-Pearson interval.

All functions are pure functions of integer histograms (``hist[d]`` = number of pairs at Hamming
distance ``d``). A pair "matches" at threshold ``t`` when its distance is ``<= t``. Rates are
fractions in [0, 1]. A rate over zero pairs is NaN with status ``"undefined"`` and an
:class:`~harness.errors.UndefinedMetricWarning`, never an exception.

The intervals treat pairs as independent trials. That is right for positives (one pair per source
image and edit) and optimistic for negatives, where every image takes part in many pairs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import binomtest

from harness.errors import UndefinedMetricWarning

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Rate:
    """``k`` events out of ``n`` trials, with a two-sided exact (Clopper-Pearson) interval."""

    k: int
    n: int
    value: float
    ci95: tuple[float, float]
    status: str = "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "n": self.n,
            "value": None if math.isnan(self.value) else self.value,
            "ci95": [None if math.isnan(c) else c for c in self.ci95],
            "status": self.status,
        }


def rate(k: int, n: int) -> Rate:
    """Proportion ``k / n`` with its 95% Clopper-Pearson interval.

    With ``k == 0`` the upper bound is the exact one-sided-at-2.5% zero-event bound, which for large
    ``n`` is close to the "rule of three" (``3.7 / n``).
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        warnings.warn("rate over zero trials is undefined", UndefinedMetricWarning, stacklevel=2)
        return Rate(0, 0, math.nan, (math.nan, math.nan), status="undefined")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=CONFIDENCE, method="exact")
    return Rate(int(k), int(n), k / n, (float(ci.low), float(ci.high)))


def matches_at(hist: npt.ArrayLike, threshold: int) -> tuple[int, int]:
    """``(pairs with distance <= threshold, all pairs)`` from a histogram."""
    h = np.asarray(hist, dtype=np.int64)
    if threshold < 0:
        return 0, int(h.sum())
    return int(h[: threshold + 1].sum()), int(h.sum())


def rate_at(hist: npt.ArrayLike, threshold: int) -> Rate:
    """Match rate at ``threshold``: the TPR for positive pairs, the FPR for negative pairs."""
    return rate(*matches_at(hist, threshold))


def histogram(distances: npt.ArrayLike, n_bits: int) -> npt.NDArray[np.int64]:
    """Histogram with ``n_bits + 1`` integer bins of a 1-D array of distances."""
    d = np.asarray(distances, dtype=np.int64)
    return np.bincount(d, minlength=n_bits + 1).astype(np.int64)


def summary(hist: npt.ArrayLike) -> dict[str, float | int | None]:
    """Count, mean, min, median and max distance of a histogram (None when empty)."""
    h = np.asarray(hist, dtype=np.int64)
    n = int(h.sum())
    if n == 0:
        return {"n": 0, "mean": None, "min": None, "median": None, "max": None}
    d = np.arange(len(h))
    nonzero = np.flatnonzero(h)
    cumulative = np.cumsum(h)
    return {
        "n": n,
        "mean": float((d * h).sum() / n),
        "min": int(nonzero[0]),
        "median": int(np.searchsorted(cumulative, (n + 1) / 2)),
        "max": int(nonzero[-1]),
    }


def sweep(
    positives: npt.ArrayLike, negatives: npt.ArrayLike, thresholds: Iterable[int]
) -> list[dict[str, Any]]:
    """TPR and FPR (with intervals) at each threshold: the operating table users pick from.

    This describes the data; it does not choose a threshold (choosing one on the same pairs it is
    scored on would be optimistic).
    """
    return [
        {
            "threshold": int(t),
            "tpr": rate_at(positives, t).to_dict(),
            "fpr": rate_at(negatives, t).to_dict(),
        }
        for t in thresholds
    ]
