"""Rates from distance histograms, each with its count and a 95% Clopper-Pearson interval.

All functions are pure functions of integer histograms (``hist[d]`` = number of pairs at Hamming
distance ``d``). A pair "matches" at threshold ``t`` when its distance is ``<= t``. Rates are
fractions in [0, 1]. A rate over zero pairs is NaN with status ``"undefined"`` and an
:class:`~harness.core.errors.UndefinedMetricWarning`, never an exception.

The intervals treat pairs as independent trials. That is right for positives (one pair per source
image and edit) and optimistic for negatives, where every image takes part in many pairs.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import betaincinv

from harness.core.errors import UndefinedMetricWarning

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
    # Clopper-Pearson in its closed form (beta quantiles); identical to scipy's
    # binomtest(k, n).proportion_ci(method="exact") but without its root finding (~100x faster,
    # which matters for sweeps over every threshold).
    alpha = 1.0 - CONFIDENCE
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - alpha / 2))
    return Rate(int(k), int(n), k / n, (low, high))


@contextlib.contextmanager
def undefined_as_status() -> Iterator[None]:
    """Rates over empty samples without a warning each, for code that records them in a
    results document: their status (``undefined``) and the reason (a held-out split with no
    negative pairs, a variant row with no pairs) say it there, where a note per rate without
    the reason would only puzzle. Usable as a decorator."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        yield


def matches_at(hist: npt.ArrayLike, threshold: int | None) -> tuple[int, int]:
    """``(pairs with distance <= threshold, all pairs)`` from a histogram; a threshold of
    ``None`` matches nothing."""
    h = np.asarray(hist, dtype=np.int64)
    if threshold is None or threshold < 0:
        return 0, int(h.sum())
    return int(h[: threshold + 1].sum()), int(h.sum())


def rate_at(hist: npt.ArrayLike, threshold: int | None, misses: int = 0) -> Rate:
    """Match rate at ``threshold``: the TPR for positive pairs, the FPR for negative pairs.

    ``misses`` are trials outside the histogram that never match (edited copies whose hash the
    algorithm's quality gate discarded: the platform cannot match them).
    """
    k, n = matches_at(hist, threshold)
    return rate(k, n + misses)


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
    positives: npt.ArrayLike,
    negatives: npt.ArrayLike,
    thresholds: Iterable[int],
    misses: int = 0,
) -> list[dict[str, Any]]:
    """TPR and FPR (with intervals) at each threshold: the operating table users pick from.

    This describes the data; it does not choose a threshold (choosing one on the same pairs it is
    scored on would be optimistic).
    """
    return [
        {
            "threshold": int(t),
            "tpr": rate_at(positives, t, misses).to_dict(),
            "fpr": rate_at(negatives, t).to_dict(),
        }
        for t in thresholds
    ]


# --- Curves and operating points -----------------------------------------------------------------
#
# Distances are scores where *lower* means "more alike"; scikit-learn wants higher = more positive,
# so curves are computed on the negated distance. Each histogram bin becomes one weighted sample,
# which keeps the inputs n_bits + 1 long whatever the number of pairs.


def _trapezoid(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    """Area under ``y(x)`` for increasing ``x`` by the trapezoidal rule."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def roc(positives: npt.ArrayLike, negatives: npt.ArrayLike) -> dict[str, Any]:
    """ROC and DET points, AUC and the equal error rate, straight from the histograms.

    Points are the staircase corners, one per distance that holds any pair (``threshold`` in
    bits; ``None`` is the "match nothing" corner). The EER is reported at the threshold where
    FPR and FNR are closest, with both rates (never interpolated between thresholds).

    The arithmetic is scikit-learn's ``roc_curve`` (``drop_intermediate=False``), ``det_curve``
    and ``roc_auc_score`` on the bins as weighted samples with score ``-distance``, done on the
    cumulative counts instead of one sample per bin: the numbers are the same to the last bit
    (the tests compare them), without importing scikit-learn on every run.
    """
    pos = np.asarray(positives, dtype=np.int64)
    neg = np.asarray(negatives, dtype=np.int64)
    if pos.shape != neg.shape:
        raise ValueError(f"histograms differ in length: {pos.shape} vs {neg.shape}")
    if pos.sum() == 0 or neg.sum() == 0:
        return {"status": "undefined", "reason": "needs both positive and negative pairs"}
    corners = np.flatnonzero((pos > 0) | (neg > 0))  # distinct scores, best first
    # Pairs matched at each corner; sums of integers, exact in float64 below 2**53.
    tps = np.cumsum(pos)[corners].astype(np.float64)
    fps = np.cumsum(neg)[corners].astype(np.float64)
    thresholds: list[int | None] = [None, *corners.tolist()]  # None: match nothing

    # AUC over the curve without its collinear intermediate corners (as roc_auc_score has it).
    keep: slice | npt.NDArray[np.intp] = slice(None)
    if len(fps) > 2:
        inner = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
        keep = np.flatnonzero(np.concatenate([[True], inner, [True]]))
    auc_fps, auc_tps = np.concatenate([[0.0], fps[keep]]), np.concatenate([[0.0], tps[keep]])
    auc = _trapezoid(auc_fps / auc_fps[-1], auc_tps / auc_tps[-1])

    tps, fps = np.concatenate([[0.0], tps]), np.concatenate([[0.0], fps])
    fpr, tpr = fps / fps[-1], tps / tps[-1]
    fnr = 1.0 - tpr
    best = int(np.argmin(np.abs(fpr - fnr)))
    # DET: from the last corner with no false match to the first with no false non-match,
    # in decreasing FPR.
    first = int(np.searchsorted(fps, fps[0], side="right")) - 1
    last = int(np.searchsorted(tps, tps[-1])) + 1
    det = slice(first, last)
    return {
        "status": "ok",
        "auc": auc,
        "eer": {
            "threshold": thresholds[best],
            "fpr": float(fpr[best]),
            "fnr": float(fnr[best]),
            "value": float((fpr[best] + fnr[best]) / 2),
        },
        "roc": {"threshold": thresholds, "fpr": fpr.tolist(), "tpr": tpr.tolist()},
        "threshold_null": "match nothing (no pair matches)",
        "det": {
            "threshold": thresholds[det][::-1],
            "fpr": (fps[det][::-1] / fps[-1]).tolist(),
            "fnr": ((tps[-1] - tps)[det][::-1] / tps[-1]).tolist(),
        },
    }


#: Status values of every threshold question, used everywhere (results, reports, CLI).
STATUSES = {
    "ok": "the corpus supports the answer",
    "unresolved": "too few pairs to support a claim at this target",
    "unachievable": "no threshold of this hash meets the target on these images",
    "undefined": "no pairs of the kind needed",
}

#: Zero events in n trials bound a rate below about 3 / n (95%, the rule of three).
RULE_OF_THREE = 3.0


def resolvable(n_negatives: int, target_fpr: float) -> bool:
    """Whether ``n_negatives`` pairs can show an FPR as low as ``target_fpr`` at all.

    With zero false matches in ``n`` pairs the 95% upper bound is about ``3 / n``; below
    ``n = 3 / target`` even a perfect result cannot bound the rate under the target.
    """
    return n_negatives >= RULE_OF_THREE / target_fpr


def pairs_needed(target_fpr: float) -> int:
    """Negative pairs that can resolve ``target_fpr`` (rule of three)."""
    return math.ceil(RULE_OF_THREE / target_fpr)


def images_for_pairs(n_pairs: int) -> int:
    """Fewest images whose all-pairs protocol gives at least ``n_pairs`` pairs: m(m-1)/2."""
    m = math.ceil((1.0 + math.sqrt(1.0 + 8.0 * n_pairs)) / 2.0)
    while m > 2 and (m - 1) * (m - 2) // 2 >= n_pairs:  # float rounding
        m -= 1
    return max(m, 2)


def threshold_at_fpr(negatives: npt.ArrayLike, target_fpr: float) -> int | None:
    """Largest threshold whose observed FPR is ``<= target_fpr``; ``None`` when none is (or
    there are no negative pairs)."""
    neg = np.asarray(negatives, dtype=np.int64)
    n = int(neg.sum())
    if n == 0:
        return None
    fpr = np.cumsum(neg) / n
    ok = np.flatnonzero(fpr <= target_fpr)
    return int(ok[-1]) if len(ok) else None


def threshold_choice(negatives: npt.ArrayLike, target_fpr: float, where: str) -> dict[str, Any]:
    """The one threshold rule: the largest threshold whose FPR over ``negatives`` is at most
    ``target_fpr`` (a staircase step, never interpolated), with its status and one-line reason.

    ``where`` names the pairs ("the calibration images") for the reason. ``pairs_needed`` is
    the count that would resolve the target (3 / target), whatever the status.
    """
    neg = np.asarray(negatives, dtype=np.int64)
    n = int(neg.sum())
    t = threshold_at_fpr(neg, target_fpr)
    needed = pairs_needed(target_fpr)
    if n == 0:
        status, reason = "undefined", f"no negative pairs among {where}"
    elif t is None:
        status = "unachievable"
        reason = (
            f"no threshold meets FPR <= {target_fpr:g} on {where} (smallest observed FPR is "
            f"{neg[0] / n:.3g} at threshold 0)"
        )
    elif not resolvable(n, target_fpr):
        status = "unresolved"
        reason = (
            f"{n:,} negative pairs among {where}; a false-match rate of {target_fpr:g} needs "
            f"at least {needed:,} (3 / target)"
        )
    else:
        status = "ok"
        reason = f"{n:,} negative pairs among {where} support {target_fpr:g} (needs {needed:,})"
    return {
        "threshold": t,
        "status": status,
        "reason": reason,
        "negatives": n,
        "negatives_needed": needed,
    }


def tpr_at_fpr(
    positives: npt.ArrayLike, negatives: npt.ArrayLike, target_fpr: float, misses: int = 0
) -> dict[str, Any]:
    """TPR at :func:`threshold_choice` over ``negatives`` (in-sample: describes the data).

    The step is reported whatever the status, since it is what the data show; a threshold of
    ``None`` matches nothing.
    """
    choice = threshold_choice(negatives, target_fpr, "all images (in-sample)")
    t = choice["threshold"]
    return {
        "target_fpr": target_fpr,
        "threshold": t,
        "tpr": rate_at(positives, t, misses).to_dict(),
        "fpr": rate_at(negatives, t).to_dict(),
        "status": choice["status"],
        "reason": choice["reason"],
        "negatives_needed": choice["negatives_needed"],
    }


def fpr_at_tpr(
    positives: npt.ArrayLike, negatives: npt.ArrayLike, target_tpr: float, misses: int = 0
) -> dict[str, Any]:
    """FPR at the smallest threshold whose observed TPR is ``>= target_tpr``.

    ``unachievable`` when even the largest threshold misses the target (gated copies never
    match); ``undefined`` without positive pairs.
    """
    pos = np.asarray(positives, dtype=np.int64)
    n = int(pos.sum()) + misses
    reached = np.flatnonzero(np.cumsum(pos) >= target_tpr * n) if n else np.array([], int)
    t = int(reached[0]) if len(reached) else None
    if n == 0:
        status, reason = "undefined", "no positive pairs"
    elif t is None:
        status, reason = "unachievable", f"no threshold reaches TPR {target_tpr:g}"
    else:
        status, reason = "ok", f"TPR {target_tpr:g} first reached at threshold {t}"
    return {
        "target_tpr": target_tpr,
        "threshold": t,
        "status": status,
        "reason": reason,
        "tpr": rate_at(pos, t, misses).to_dict(),
        "fpr": rate_at(negatives, t).to_dict(),
    }


def precision_at(tpr: Rate, fpr: Rate, base_rate: float) -> dict[str, Any]:
    """Precision when a fraction ``base_rate`` of checked pairs are true copies.

    ``P = pi TPR / (pi TPR + (1 - pi) FPR)``. The interval combines the ends of the two rates'
    intervals that push precision down and up (conservative; the rates are estimated separately).
    """
    if not 0.0 < base_rate < 1.0:
        raise ValueError(f"base_rate must be in (0, 1), got {base_rate}")

    def p(t: float, f: float) -> float:
        hit, false = base_rate * t, (1.0 - base_rate) * f
        return hit / (hit + false) if hit + false > 0 else math.nan

    return {
        "base_rate": base_rate,
        "value": _none_if_nan(p(tpr.value, fpr.value)),
        "ci95": [
            _none_if_nan(p(tpr.ci95[0], fpr.ci95[1])),
            _none_if_nan(p(tpr.ci95[1], fpr.ci95[0])),
        ],
    }


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x
