"""Choosing a threshold honestly: calibrate on some images, report on others, resample by image.

A threshold picked on the same pairs it is scored on is optimistic (the Thorn benchmark's choice).
Here source images are split once, by a seeded hash of their ids, into a calibration part and a
held-out part; every pair lies inside one part, so no image informs both the choice and the score.

Pairs that share an image are not independent trials, so beside the Clopper-Pearson intervals
(exact for one-pair-per-image cells, optimistic for pooled or all-pairs counts) the pooled TPR
and FPR get BCa intervals (scipy) from a bootstrap over source images, and the threshold a
percentile interval: each resample draws images with replacement and carries every pair of the
drawn image with it. For the all-pairs protocol an image's pairs are its row of the pair matrix,
each pair counted half in either row.

:func:`operational` turns a per-pair FPR into what an operator sees: expected false matches per
day against a database, and the chance an innocent account crosses a k-of-N review rule.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import DegenerateDataWarning, binom, bootstrap

from harness import kernels
from harness.kernels import Metric
from harness.metrics import Rate, rate, rate_at, resolvable, threshold_at_fpr

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


@dataclass(frozen=True)
class AlgorithmHashes:
    """One algorithm's hashes of a corpus, as threshold selection needs them.

    ``edited[c]`` / ``edited_ok[c]`` belong to ``chain_ids[c]``; ``groups`` labels images that
    must never form a negative pair (hygiene: near duplicates share a label).
    """

    n_bits: int
    originals: npt.NDArray[np.uint8]
    originals_ok: npt.NDArray[np.bool_]
    edited: npt.NDArray[np.uint8]
    edited_ok: npt.NDArray[np.bool_]
    groups: npt.NDArray[np.int64]
    chain_ids: tuple[str, ...]
    metric: Metric | None = None  # None: Hamming on packed bits

    def positive_distances(self) -> npt.NDArray[np.int64]:
        """``(n_chains, n_images)`` distances of each edit to its original; -1 where unusable."""
        if len(self.edited) == 0:  # a suite of controls only (identity): no positive pairs
            return np.full((0, len(self.originals)), -1, dtype=np.int64)
        d = np.stack([kernels.hamming(e, self.originals, self.metric) for e in self.edited])
        return np.where(self.edited_ok & self.originals_ok[None], d, -1)

    def negative_rows(
        self, members: npt.NDArray[np.bool_], protocol: str
    ) -> npt.NDArray[np.float64]:
        """Per source image, the histogram of its negative pairs among ``members`` only.

        Rows sum to the protocol's histogram over the members (all-pairs rows are halved, since
        each pair appears in both of its images' rows).
        """
        n_bins = self.n_bits + 1
        rows = np.zeros((len(self.originals), n_bins), dtype=np.float64)
        refs = members & self.originals_ok
        if protocol == "originals_all_pairs":
            idx = np.flatnonzero(refs)
            r = self.originals[idx]
            g = self.groups[idx]
            rows[idx] = (
                kernels.cross_histogram(r, r, self.n_bits, g, g, per_query=True, metric=self.metric)
                / 2.0
            )
        elif protocol == "edited_vs_other_originals":
            ref_idx = np.flatnonzero(refs)
            for c in range(len(self.chain_ids)):
                q_idx = np.flatnonzero(members & self.edited_ok[c])
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


def _positive_rows(distances: npt.NDArray[np.int64], n_bits: int) -> npt.NDArray[np.float64]:
    """Per image, the histogram of its positive distances pooled over chains."""
    rows = np.zeros((distances.shape[1], n_bits + 1), dtype=np.float64)
    for c in range(distances.shape[0]):
        ok = distances[c] >= 0
        np.add.at(rows, (np.flatnonzero(ok), distances[c][ok]), 1.0)
    return rows


def _draws(rng: np.random.Generator, n: int, resamples: int) -> npt.NDArray[np.float64]:
    """``(resamples, n)`` multiplicities of a bootstrap over ``n`` images."""
    if n == 0:
        return np.zeros((0, 0))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def _percentiles(values: npt.NDArray[np.float64]) -> list[float | None]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return [None, None]
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [float(lo), float(hi)]


def _ratio(numerators: Any, denominators: Any, axis: int = -1) -> Any:
    return np.sum(numerators, axis=axis) / np.sum(denominators, axis=axis)


def bootstrap_ratio(
    numerators: npt.ArrayLike, denominators: npt.ArrayLike, resamples: int, seed: int
) -> list[float | None]:
    """95% BCa interval of ``sum(numerators) / sum(denominators)``, resampling images (rows).

    scipy's bias-corrected and accelerated bootstrap; its coverage is checked by simulation in
    the tests. When every resample gives the same value (e.g. no event at all) that value is
    both ends.
    """
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    if resamples < 1 or len(num) < 2 or den.sum() == 0:
        return [None, None]
    if np.all(num * den.sum() == den * num.sum()):  # every image has the pooled rate
        value = float(num.sum() / den.sum())
        return [value, value]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        ci = bootstrap(
            (num, den),
            _ratio,
            paired=True,
            vectorized=True,
            n_resamples=resamples,
            method="BCa",
            rng=np.random.default_rng(seed),
        ).confidence_interval
    if not (np.isfinite(ci.low) and np.isfinite(ci.high)):
        return [None, None]
    return [float(ci.low), float(ci.high)]


def recommend(
    data: AlgorithmHashes,
    image_ids: Sequence[str],
    target_fpr: float,
    *,
    calibration: npt.NDArray[np.bool_],
    protocol: str = "originals_all_pairs",
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Pick the threshold on the calibration images, report it on the held-out images.

    The threshold is the largest whose calibration FPR is at most ``target_fpr`` (a staircase
    step, never interpolated). Reported: held-out TPR per transform (Clopper-Pearson, one pair
    per image), pooled TPR (bootstrap over held-out images), held-out FPR (Clopper-Pearson and
    bootstrap), the threshold's bootstrap interval over calibration images, and whether either
    part has enough negative pairs to support the target at all.
    """
    if not 0.0 < target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr}")
    if protocol not in CALIBRATION_PROTOCOLS:
        raise ValueError(f"protocol must be one of {CALIBRATION_PROTOCOLS}, got {protocol!r}")
    held_out = ~calibration
    distances = data.positive_distances()
    pos_rows = _positive_rows(distances, data.n_bits)
    cal_neg = data.negative_rows(calibration, protocol)
    ho_neg = data.negative_rows(held_out, protocol)

    cal_hist = np.rint(cal_neg.sum(axis=0)).astype(np.int64)
    ho_hist = np.rint(ho_neg.sum(axis=0)).astype(np.int64)
    threshold = threshold_at_fpr(cal_hist, target_fpr)

    rng = np.random.default_rng(seed)
    cal_idx, ho_idx = np.flatnonzero(calibration), np.flatnonzero(held_out)
    # The threshold is a step function of the data: a percentile interval of its resamples.
    boot_t = np.array(
        [
            threshold_at_fpr(w @ cal_neg[cal_idx], target_fpr)
            for w in _draws(rng, len(cal_idx), resamples)
        ],
        dtype=np.float64,
    )
    hits, neg_hits = pos_rows[ho_idx], ho_neg[ho_idx]
    boot_tpr = bootstrap_ratio(
        hits[:, : threshold + 1].sum(axis=1), hits.sum(axis=1), resamples, seed
    )
    boot_fpr = bootstrap_ratio(
        neg_hits[:, : threshold + 1].sum(axis=1), neg_hits.sum(axis=1), resamples, seed
    )

    per_transform = []
    for c, chain in enumerate(data.chain_ids):
        d = distances[c][held_out]
        d = d[d >= 0]
        per_transform.append(
            {"transform": chain, **rate(int((d <= threshold).sum()), len(d)).to_dict()}
        )
    pooled_hist = np.rint(pos_rows[ho_idx].sum(axis=0)).astype(np.int64)
    n_cal, n_ho = int(cal_hist.sum()), int(ho_hist.sum())
    supported = resolvable(n_cal, target_fpr) and resolvable(n_ho, target_fpr)
    needed = math.ceil(3.0 / target_fpr)
    return {
        "target_fpr": target_fpr,
        "protocol": protocol,
        "threshold": threshold,
        "threshold_ci95": _percentiles(boot_t),
        "status": "ok" if supported else "unresolved",
        "explanation": (
            f"calibration has {n_cal:,} and held-out {n_ho:,} negative pairs; a false-match "
            f"rate of {target_fpr:g} needs at least {needed:,} (3 / target) in each"
            + ("." if supported else ", so this corpus cannot support the target.")
        ),
        "calibration": {
            "images": len(cal_idx),
            "negatives": n_cal,
            "fpr": rate_at(cal_hist, threshold).to_dict(),
        },
        "held_out": {
            "images": len(ho_idx),
            "negatives": n_ho,
            "fpr": {
                **rate_at(ho_hist, threshold).to_dict(),
                "bootstrap_ci95": boot_fpr,
            },
            "tpr_pooled": {
                **rate_at(pooled_hist, threshold).to_dict(),
                "bootstrap_ci95": boot_tpr,
            },
            "tpr": per_transform,
        },
        "bootstrap": {
            "resamples": resamples,
            "seed": seed,
            "unit": "source image",
            # Percentile intervals from few clusters are too narrow; trust the wider interval.
            "note": None
            if min(len(cal_idx), len(ho_idx)) >= SMALL_SAMPLE
            else f"fewer than {SMALL_SAMPLE} images in a part: bootstrap intervals understate "
            "the uncertainty; prefer the Clopper-Pearson interval where it is wider",
        },
    }


def operational(
    fpr: Rate,
    *,
    database_size: int,
    uploads_per_day: int,
    account_uploads: int | None = None,
    account_matches: int | None = None,
) -> dict[str, Any]:
    """What a per-pair false-match rate means in production, with its interval carried through.

    Every quantity is monotone in the FPR, so its interval is the quantity at the FPR interval's
    ends. Assumes each upload is compared with every database entry and that false matches are
    independent across pairs and uploads; bursts of near-identical personal photos break the
    second assumption, so the k-of-N figure is a lower bound on real risk for such accounts.
    """

    def at(p: float) -> dict[str, float]:
        per_upload = -math.expm1(database_size * math.log1p(-p)) if p < 1 else 1.0
        out = {
            "false_matches_per_day": p * database_size * uploads_per_day,
            "p_upload_flagged": per_upload,
            "flagged_uploads_per_day": per_upload * uploads_per_day,
        }
        if account_uploads is not None and account_matches is not None:
            out["p_account_flagged"] = float(
                binom.sf(account_matches - 1, account_uploads, per_upload)
            )
        return out

    if math.isnan(fpr.value):
        raise ValueError("the false-match rate is undefined (no negative pairs)")
    point, low, high = at(fpr.value), at(fpr.ci95[0]), at(fpr.ci95[1])
    return {
        "inputs": {
            "fpr": fpr.to_dict(),
            "database_size": database_size,
            "uploads_per_day": uploads_per_day,
            "account_uploads": account_uploads,
            "account_matches": account_matches,
        },
        "estimates": {k: {"value": point[k], "ci95": [low[k], high[k]]} for k in point},
        "assumptions": (
            "every upload is compared with every database entry; false matches are independent "
            "across pairs and uploads (near-identical photos in one account break this)"
        ),
    }
