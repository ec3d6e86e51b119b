"""Choosing a threshold honestly: calibrate on some images, report on others, resample by image.

A threshold picked on the same pairs it is scored on is optimistic (the Thorn benchmark's choice).
Here source images are split once, by a seeded hash of their ids, into a calibration part and a
held-out part; every pair lies inside one part, so no image informs both the choice and the score.

Pairs that share an image are not independent trials, so beside the Clopper-Pearson intervals
(exact for one-pair-per-image cells, optimistic for pooled or all-pairs counts) the pooled TPR
and FPR get BCa intervals from a bootstrap over source images (batched: memory linear in the
number of images), and the threshold a percentile interval: each resample draws images with
replacement and carries every pair of the drawn image with it. For the all-pairs protocol an
image's pairs are its row of the pair matrix, each pair counted half in either row.

:func:`recommend` answers "which threshold at this false-match rate"; :func:`score_at` scores a
given threshold. Both read an :class:`Evidence` (per-image positives and impostor histograms),
built from hashes or from a run's results. What an operator sees at a database size (the share
of uploads flagged, per day, per account) is :mod:`harness.flagged`'s.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from harness import kernels
from harness.kernels import Metric
from harness.metrics import (
    Rate,
    images_for_pairs,
    pairs_needed,
    rate,
    rate_at,
    resolvable,
    threshold_choice,
)

#: Below this many source images in a part, percentile-bootstrap intervals are flagged.
SMALL_SAMPLE = 30

#: Negative protocols a threshold can be calibrated on.
CALIBRATION_PROTOCOLS = ("originals_all_pairs", "edited_vs_other_originals")


def split_images(
    ids: Sequence[str], calibration_fraction: float, seed: int
) -> npt.NDArray[np.bool_]:
    """Mask of calibration images: the ``fraction`` whose seeded id hash sorts first.

    Depends only on the ids, the fraction and the seed (not on order or on other images'
    presence beyond the count). With two or more images both parts are non-empty.
    """
    keys = [hashlib.blake2b(f"{seed}|{i}".encode(), digest_size=8).digest() for i in ids]
    order = sorted(range(len(ids)), key=lambda k: keys[k])
    n_cal = round(calibration_fraction * len(ids))
    if len(ids) >= 2:
        n_cal = min(max(n_cal, 1), len(ids) - 1)
    mask = np.zeros(len(ids), dtype=bool)
    mask[order[:n_cal]] = True
    return mask


#: Code of a positive pair whose edited copy the algorithm's quality gate discarded, relative to
#: the largest distance: ``n_bits + GATED`` lies beyond every threshold, so it never matches.
GATED = 1

#: Bootstrap resamples are drawn in batches of about this many weights (memory stays O(n)).
_BATCH_CELLS = 1 << 22
#: Resample sets up to this many weights (8 MB) are drawn once and kept for reuse.
_REUSED_CELLS = 1 << 20


@dataclass(frozen=True)
class Evidence:
    """One algorithm's per-source-image evidence: all that choosing and scoring a threshold need.

    ``positives[c, i]`` is the distance of image ``i``'s copy under ``chain_ids[c]`` to its
    original; ``-1`` where there is no pair (failed or excluded image), ``n_bits + GATED``
    where the quality gate discarded the copy (a miss at every threshold).
    ``vs_calibration[i]`` / ``vs_held_out[i]`` count image ``i``'s negative pairs with the
    calibration / held-out images by distance (zero rows for unusable images). For
    ``originals_all_pairs`` every pair appears in both of its images' rows (``halved``).
    ``pairs``, for an asymmetric metric, are the same two arrays with each pair at one distance,
    its earlier image's (in corpus order) as the upload, as the all-pairs histogram counts it:
    what pair counts and false-match rates read, while ``vs_calibration`` / ``vs_held_out``
    keep each image's distances as the upload (the flagged share's matches). None: the rows
    serve both.
    ``uploads`` marks the images a platform would receive (decoded, not exact duplicates) and
    ``hashable`` those whose original hash the quality gate kept; the share of uploads flagged
    (:mod:`harness.flagged`) needs both. When absent, images with impostor pairs stand for both.
    """

    n_bits: int
    chain_ids: tuple[str, ...]
    positives: npt.NDArray[np.int64]
    vs_calibration: npt.NDArray[np.integer[Any]]
    vs_held_out: npt.NDArray[np.integer[Any]]
    calibration: npt.NDArray[np.bool_]
    protocol: str = "originals_all_pairs"
    uploads: npt.NDArray[np.bool_] | None = None
    hashable: npt.NDArray[np.bool_] | None = None
    #: Real variant pairs (manifest ``variant_of``) per row name: their distances to their own
    #: original and how many the quality gate discarded. Scored at the answer's threshold
    #: (``variants`` in the answer), never used to choose it.
    variants: Mapping[str, tuple[Sequence[int], int]] | None = None
    pairs: tuple[npt.NDArray[np.integer[Any]], npt.NDArray[np.integer[Any]]] | None = None

    @property
    def weight(self) -> float:
        return 0.5 if self.protocol == "originals_all_pairs" else 1.0

    def negatives(self, part: str) -> npt.NDArray[np.float64]:
        """Per image, its negative pairs inside ``part`` ("calibration", "held_out", "all");
        rows sum to the part's histogram."""
        vs_calibration, vs_held_out = self.pairs or (self.vs_calibration, self.vs_held_out)
        if part == "calibration":
            rows = vs_calibration * self.calibration[:, None]
        elif part == "held_out":
            rows = vs_held_out * ~self.calibration[:, None]
        else:
            rows = vs_calibration + vs_held_out
        return rows.astype(np.float64) * self.weight

    def usable(self) -> npt.NDArray[np.bool_]:
        """Images that take part in any pair (failed, duplicate or gated originals do not)."""
        negatives = (self.vs_calibration.sum(axis=1) + self.vs_held_out.sum(axis=1)) > 0
        usable: npt.NDArray[np.bool_] = negatives | (self.positives >= 0).any(axis=0)
        return usable

    def positive_rows(self) -> npt.NDArray[np.float64]:
        """Per image, the histogram of its positive distances pooled over chains; the last
        column counts gated copies."""
        bins = self.n_bits + 1 + GATED
        rows = np.zeros((self.positives.shape[1], bins), dtype=np.float64)
        for c in range(self.positives.shape[0]):
            ok = self.positives[c] >= 0
            np.add.at(rows, (np.flatnonzero(ok), self.positives[c][ok]), 1.0)
        return rows


@dataclass(frozen=True)
class AlgorithmHashes:
    """One algorithm's hashes of a corpus, as threshold selection needs them.

    ``edited[c]`` / ``edited_ok[c]`` belong to ``chain_ids[c]``; ``edited_gated[c]`` marks copies
    the algorithm's quality gate discarded; ``groups`` labels images that must never form a
    negative pair (hygiene: near duplicates share a label). ``symmetric`` is False for a
    metric whose two directions differ (:attr:`Evidence.pairs`).
    """

    n_bits: int
    originals: npt.NDArray[np.uint8]
    originals_ok: npt.NDArray[np.bool_]
    edited: npt.NDArray[np.uint8]
    edited_ok: npt.NDArray[np.bool_]
    groups: npt.NDArray[np.int64]
    chain_ids: tuple[str, ...]
    metric: Metric | None = None  # None: Hamming on packed bits
    edited_gated: npt.NDArray[np.bool_] | None = None
    symmetric: bool = True

    def positive_distances(self) -> npt.NDArray[np.int64]:
        """``(n_chains, n_images)`` distances of each edit to its original; -1 where there is
        no pair, ``n_bits + GATED`` where the copy was gated."""
        if len(self.edited) == 0:  # a suite of controls only (identity): no positive pairs
            return np.full((0, len(self.originals)), -1, dtype=np.int64)
        d = np.stack([kernels.hamming(e, self.originals, self.metric) for e in self.edited])
        d = np.where(self.edited_ok & self.originals_ok[None], d, -1)
        if self.edited_gated is not None:
            d[self.edited_gated & self.originals_ok[None] & ~self.edited_ok] = self.n_bits + GATED
        return d

    def negative_rows(self, members: npt.NDArray[np.bool_], protocol: str) -> npt.NDArray[np.int64]:
        """Per source image, the histogram of its negative pairs with ``members`` (every image
        is a query row; pairs within one group never count)."""
        refs = members & self.originals_ok
        ref_idx = np.flatnonzero(refs)
        rows = np.zeros((len(self.originals), self.n_bits + 1), dtype=np.int64)
        if protocol == "originals_all_pairs":
            q_idx = np.flatnonzero(self.originals_ok)
            rows[q_idx] = kernels.cross_histogram(
                self.originals[q_idx],
                self.originals[ref_idx],
                self.n_bits,
                self.groups[q_idx],
                self.groups[ref_idx],
                per_query=True,
                metric=self.metric,
            )
        elif protocol == "edited_vs_other_originals":
            for c in range(len(self.chain_ids)):
                q_idx = np.flatnonzero(self.edited_ok[c])
                rows[q_idx] += kernels.cross_histogram(
                    self.edited[c][q_idx],
                    self.originals[ref_idx],
                    self.n_bits,
                    self.groups[q_idx],
                    self.groups[ref_idx],
                    per_query=True,
                    metric=self.metric,
                )
        else:
            raise ValueError(f"unknown calibration protocol {protocol!r}")
        return rows

    def pair_rows(self, members: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        """Per source image, the histogram of its pairs of originals with ``members``, each
        pair at one distance: its earlier image's as the upload (the all-pairs histogram's)."""
        rows = np.zeros((len(self.originals), self.n_bits + 1), dtype=np.int64)
        ok = np.flatnonzero(self.originals_ok)
        rows[ok] = kernels.all_pairs_row_histograms(
            self.originals[ok], self.n_bits, members[ok], self.groups[ok], metric=self.metric
        )
        return rows

    def evidence(
        self, calibration: npt.NDArray[np.bool_], protocol: str = "originals_all_pairs"
    ) -> Evidence:
        """Per-image evidence for threshold choice under ``protocol``."""
        pairs = None
        if protocol == "originals_all_pairs" and not self.symmetric:
            pairs = self.pair_rows(calibration), self.pair_rows(~calibration)
        return Evidence(
            n_bits=self.n_bits,
            chain_ids=self.chain_ids,
            positives=self.positive_distances(),
            vs_calibration=self.negative_rows(calibration, protocol),
            vs_held_out=self.negative_rows(~calibration, protocol),
            calibration=calibration,
            protocol=protocol,
            pairs=pairs,
        )


def _weights(seed: int, n: int, resamples: int) -> Iterator[npt.NDArray[np.float64]]:
    """Batches of ``(b, n)`` multiplicities of a bootstrap over ``n`` images, drawn from
    ``default_rng(seed)``; every batch holds about ``_BATCH_CELLS`` numbers, so memory does not
    grow with ``resamples x n``.

    Every interval of a run resamples the same few image sets with the same seed (one algorithm's
    calibration, held-out and all images; the next algorithm's are usually the same), so a
    set of at most :data:`_REUSED_CELLS` weights is drawn once and reused (read-only) by every
    later call.
    """
    if n * resamples <= _REUSED_CELLS:
        yield _one_batch(seed, n, resamples)
        return
    rng = np.random.default_rng(seed)
    yield from _draw(rng, n, resamples)


def _draw(rng: np.random.Generator, n: int, resamples: int) -> Iterator[npt.NDArray[np.float64]]:
    batch = max(1, min(resamples, _BATCH_CELLS // max(n, 1)))
    p = np.full(n, 1.0 / n)
    for start in range(0, resamples, batch):
        yield rng.multinomial(n, p, size=min(batch, resamples - start)).astype(np.float64)


@functools.lru_cache(maxsize=8)
def _one_batch(seed: int, n: int, resamples: int) -> npt.NDArray[np.float64]:
    (weights,) = _draw(np.random.default_rng(seed), n, resamples)
    weights.setflags(write=False)
    return weights


def _percentiles(values: npt.NDArray[np.float64]) -> list[float | None]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return [None, None]
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [float(lo), float(hi)]


def _thresholds_of(hists: npt.NDArray[np.float64], target_fpr: float) -> npt.NDArray[np.float64]:
    """:func:`~harness.metrics.threshold_at_fpr` of each row; NaN where none meets the target."""
    total = hists.sum(axis=1, keepdims=True)
    ok = np.cumsum(hists, axis=1) <= target_fpr * total * (1 + 1e-12)
    last = hists.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
    return np.where(ok.any(axis=1) & (total[:, 0] > 0), last, np.nan).astype(np.float64)


def bootstrap_ratio(
    numerators: npt.ArrayLike, denominators: npt.ArrayLike, resamples: int, seed: int
) -> list[float | None]:
    """95% BCa interval of ``sum(numerators) / sum(denominators)``, resampling images (rows).

    Bias-corrected and accelerated (Efron): resamples are drawn in batches and the
    acceleration comes from the closed-form jackknife of a ratio of sums (leave image ``i``
    out: ``(N - n_i) / (D - d_i)``), so memory is linear in the number of images. Coverage is
    checked by simulation in the tests. When every image has the pooled rate (e.g. no event at
    all) that value is both ends.
    """
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    n = len(num)
    if resamples < 1 or n < 2 or den.sum() == 0:
        return [None, None]
    total_num, total_den = num.sum(), den.sum()
    if np.all(num * total_den == den * total_num):  # every image has the pooled rate
        value = float(total_num / total_den)
        return [value, value]
    theta = total_num / total_den
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.concatenate([(w @ num) / (w @ den) for w in _weights(seed, n, resamples)])
        boot = boot[np.isfinite(boot)]
        loo = (total_num - num) / (total_den - den)
    loo = loo[np.isfinite(loo)]
    if len(boot) == 0 or len(loo) < 2:
        return [None, None]
    below = np.clip(np.mean(boot < theta), 0.5 / len(boot), 1 - 0.5 / len(boot))
    z0 = ndtri(below)
    d = loo.mean() - loo
    spread = float((d**2).sum())
    accel = float((d**3).sum()) / (6.0 * spread**1.5) if spread > 0 else 0.0
    z = ndtri(np.array([0.025, 0.975]))
    alphas = ndtr(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    lo, hi = np.percentile(boot, 100.0 * alphas)
    return [float(lo), float(hi)]


def _with_bootstrap(
    r: Rate, numerators: Any, denominators: Any, resamples: int, seed: int
) -> dict[str, Any]:
    return {
        **r.to_dict(),
        "bootstrap_ci95": bootstrap_ratio(numerators, denominators, resamples, seed),
    }


def _tpr(
    ev: Evidence, idx: npt.NDArray[np.int64], threshold: int | None, resamples: int, seed: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Pooled TPR (bootstrap by image) and TPR per edit over images ``idx``; gated copies are
    misses. Per edit each image gives one pair, so Clopper-Pearson is exact there."""
    rows = ev.positive_rows()[idx]
    upto = 0 if threshold is None else threshold + 1
    hits, copies = rows[:, :upto].sum(axis=1), rows.sum(axis=1)
    pooled = _with_bootstrap(
        rate(int(hits.sum()), int(copies.sum())), hits, copies, resamples, seed
    )
    pooled["gated"] = int(rows[:, -1].sum())
    per_edit = []
    for c, chain in enumerate(ev.chain_ids):
        d = ev.positives[c][idx]
        d = d[d >= 0]
        k = 0 if threshold is None else int((d <= threshold).sum())
        per_edit.append(
            {"transform": chain, **rate(k, len(d)).to_dict(), "gated": int((d > ev.n_bits).sum())}
        )
    return pooled, per_edit


def _fpr(
    rows: npt.NDArray[np.float64], threshold: int | None, resamples: int, seed: int
) -> dict[str, Any]:
    upto = 0 if threshold is None else threshold + 1
    hits, pairs = rows[:, :upto].sum(axis=1), rows.sum(axis=1)
    hist = np.rint(rows.sum(axis=0)).astype(np.int64)
    return _with_bootstrap(rate_at(hist, threshold), hits, pairs, resamples, seed)


def _variants(ev: Evidence, threshold: int | None) -> dict[str, Any]:
    """The real variants' TPR per row at ``threshold`` (every variant: none took part in
    choosing it; gated ones are misses), as the answer's ``variants`` entry; empty without."""
    if not ev.variants:
        return {}
    rows = []
    for name, (distances, gated) in ev.variants.items():
        k = 0 if threshold is None else sum(d <= threshold for d in distances)
        rows.append(
            {"transform": name, **rate(k, len(distances) + gated).to_dict(), "gated": gated}
        )
    return {"variants": rows}


def required_sample(target_fpr: float, calibration_fraction: float | None) -> dict[str, Any]:
    """Images (and negative pairs) that would resolve ``target_fpr`` under the all-pairs
    protocol: 3 / target pairs in each part (in the only part when ``calibration_fraction`` is
    None, i.e. a given threshold scored on all images)."""
    pairs = pairs_needed(target_fpr)
    per_part = images_for_pairs(pairs)
    if calibration_fraction is None:
        return {"negative_pairs": pairs, "images": per_part}
    smaller = min(calibration_fraction, 1.0 - calibration_fraction)
    return {
        "negative_pairs_per_part": pairs,
        "images_per_part": per_part,
        "images": math.ceil(per_part / smaller),
    }


def recommend(
    ev: Evidence,
    target_fpr: float,
    *,
    resamples: int = 1000,
    seed: int = 0,
    calibration_fraction: float = 0.5,
) -> dict[str, Any]:
    """Pick the threshold on the calibration images, score it on the held-out images.

    The threshold is :func:`~harness.metrics.threshold_choice` over the calibration pairs.
    Reported: held-out TPR per transform (Clopper-Pearson, one pair per image; gated copies
    are misses), pooled TPR and held-out FPR (bootstrap over held-out images), the threshold's
    bootstrap interval over calibration images, the status with its reason, the sample
    that would resolve the target, and - when ``ev`` has real variants - their TPR at the
    threshold (``variants``: every variant, since the choice reads negative pairs only).
    """
    if not 0.0 < target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr}")
    if ev.protocol not in CALIBRATION_PROTOCOLS:
        raise ValueError(f"protocol must be one of {CALIBRATION_PROTOCOLS}, got {ev.protocol!r}")
    usable = ev.usable()
    cal_idx = np.flatnonzero(ev.calibration & usable)
    ho_idx = np.flatnonzero(~ev.calibration & usable)
    cal_neg = ev.negatives("calibration")[cal_idx]
    ho_neg = ev.negatives("held_out")[ho_idx]
    cal_hist = np.rint(cal_neg.sum(axis=0)).astype(np.int64)
    n_ho = int(np.rint(ho_neg.sum()))
    choice = threshold_choice(cal_hist, target_fpr, "the calibration images")
    threshold = choice["threshold"]
    status, reason = choice["status"], choice["reason"]
    if status == "ok" and not resolvable(n_ho, target_fpr):
        status = "unresolved" if n_ho else "undefined"
        reason = (
            f"the held-out images have {n_ho:,} negative pairs; scoring a false-match rate of "
            f"{target_fpr:g} needs at least {choice['negatives_needed']:,} (3 / target)"
        )

    # The threshold is a step function of the data: a percentile interval of its resamples.
    boot_t = (
        np.concatenate(
            [
                _thresholds_of(w @ cal_neg, target_fpr)
                for w in _weights(seed, len(cal_idx), resamples)
            ]
        )
        if len(cal_idx) and resamples
        else np.zeros(0)
    )
    tpr_pooled, per_edit = _tpr(ev, ho_idx, threshold, resamples, seed)
    return {
        "target_fpr": target_fpr,
        "protocol": ev.protocol,
        "threshold": threshold,
        "threshold_ci95": _percentiles(boot_t),
        "status": status,
        "reason": reason,
        "calibration": {
            "images": len(cal_idx),
            "negatives": int(cal_hist.sum()),
            "fpr": rate_at(cal_hist, threshold).to_dict(),
        },
        "held_out": {
            "images": len(ho_idx),
            "negatives": n_ho,
            "fpr": _fpr(ho_neg, threshold, resamples, seed),
            "tpr_pooled": tpr_pooled,
            "tpr": per_edit,
        },
        "required": required_sample(target_fpr, calibration_fraction),
        "bootstrap": _bootstrap_note(resamples, seed, min(len(cal_idx), len(ho_idx))),
        **_variants(ev, threshold),
    }


def score_at(
    ev: Evidence, threshold: int, *, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Score a given threshold (Meta's PDQ 31, a vendor's 10) on every image: a threshold that
    was not chosen on these images needs no held-out part. FPR over ``ev.protocol`` pairs and
    TPR per edit, each with Clopper-Pearson and bootstrap-by-image intervals; these are the
    numbers a suite's ``[thresholds]`` entry gets in a run."""
    if not 0 <= threshold <= ev.n_bits:
        raise ValueError(f"threshold must be in [0, {ev.n_bits}], got {threshold}")
    everyone = np.flatnonzero(ev.usable())
    neg = ev.negatives("all")[everyone]
    n_neg = int(np.rint(neg.sum()))
    tpr_pooled, per_edit = _tpr(ev, everyone, threshold, resamples, seed)
    if n_neg == 0:
        status, reason = "undefined", "no negative pairs"
    else:
        status = "ok"
        reason = (
            f"{n_neg:,} negative pairs over all images: no false-match rate below about "
            f"{3.0 / n_neg:.2g} (3 / pairs) can be claimed"
        )
    return {
        "threshold": threshold,
        "protocol": ev.protocol,
        "status": status,
        "reason": reason,
        "images": len(everyone),
        "negatives": n_neg,
        "fpr": _fpr(neg, threshold, resamples, seed),
        "tpr_pooled": tpr_pooled,
        "tpr": per_edit,
        "bootstrap": _bootstrap_note(resamples, seed, len(everyone)),
        **_variants(ev, threshold),
    }


def _bootstrap_note(resamples: int, seed: int, smallest_part: int) -> dict[str, Any]:
    return {
        "resamples": resamples,
        "seed": seed,
        "unit": "source image",
        # Intervals from few clusters are too narrow; trust the wider interval.
        "note": None
        if smallest_part >= SMALL_SAMPLE
        else f"fewer than {SMALL_SAMPLE} images in a part: bootstrap intervals understate "
        "the uncertainty; prefer the Clopper-Pearson interval where it is wider",
    }
