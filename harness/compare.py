"""Side-by-side comparison of algorithms: in one run, or across runs of the same suite version.

Within one run every algorithm is compared with every other; across runs the *same* algorithm is
paired with itself in each other run (did the upgrade change it?), and across runs that share no
algorithm (a built-in run beside a vendor's ``score`` of the same suite) every algorithm with
every other. ``algorithms`` narrows any of these to the algorithms named, spelt as a suite may
spell them. Every contender was measured on the same source images and edits (same suite
version, same dataset content hash), so differences are tested *paired*:

* TPR per transform at each contender's own threshold: exact McNemar test on the images where
  exactly one of the two matched (scipy ``binomtest`` on the discordant pairs); real variant
  pairs (manifest ``variant_of``) the same way per variant file, in rows and counts of their own
  (``per_variant``), never among the synthetic transforms;
* pooled TPR (all edits) and TPR at a target false-match rate: 95% percentile interval of the
  difference from a bootstrap over source images (every edit of a drawn image moves with it).
  The threshold at the target is the one threshold rule's (chosen on the calibration images,
  as in the run's Thresholds section), and this difference is measured on held-out images;
* gated copies (the algorithm's quality gate discarded the hash) count as misses;
* false-match rate at the threshold over pairs of distinct originals: per-pair outcomes are not
  stored, so this uses Fisher's exact test on the counts (unpaired, hence conservative) and says so.

A difference is *significant* when the test rejects at ``alpha`` (default 0.05); anything else is
reported as within noise. Runs of different suite versions or on different images are refused.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from scipy.stats import binomtest, fisher_exact

from harness import variants
from harness.core.errors import HarnessError
from harness.env import environment_differences
from harness.result_model import Cell, Results, ThresholdChoice
from harness.results import IncomparableError, check_comparable

ALPHA = 0.05


@dataclass(frozen=True)
class Contender:
    label: str
    result: Results
    algorithm: str

    @property
    def threshold(self) -> int:
        return self.result.algorithm(self.algorithm).thresholds[0]

    def cells(self) -> dict[str, Cell]:
        return {c.transform: c for c in self.result.cells if c.algorithm == self.algorithm}

    def choice(self, target: float) -> ThresholdChoice | None:
        """The run's threshold choice at ``target`` (Thresholds section), if it made one."""
        rec = self.result.recommendation(self.algorithm)
        return next((t for t in rec.targets if t.target_fpr == target), None) if rec else None

    def originals_hist(self) -> list[int]:
        coll = self.result.originals_collision(self.algorithm)
        if coll is None:
            raise IncomparableError(f"{self.label} has no collisions of originals.")
        return coll.hist


def contenders(
    runs: list[tuple[str, Results]], algorithms: list[str] | None = None
) -> tuple[list[Contender], list[str]]:
    """Every algorithm of every run (only ``algorithms`` when given), after checking the runs
    are comparable; plus warnings."""
    first = runs[0][1]
    warnings = []
    for label, r in runs[1:]:
        check_comparable(first, r, labels=(runs[0][0], label))
        diffs = environment_differences(first.environment, r.environment)
        if diffs:
            warnings.append(f"{label}: environment differs from {runs[0][0]}: {', '.join(diffs)}")
    many = len(runs) > 1
    known = {a.id for _, r in runs for a in r.algorithms}
    named = None
    if algorithms:
        found = {name: resolve(name, known) for name in algorithms}
        unknown = [name for name, a in found.items() if a is None]
        if unknown:
            raise IncomparableError(
                f"--algorithms names {', '.join(unknown)}, not in these results "
                f"(they have: {', '.join(sorted(known))})."
            )
        named = set(found.values())
    out = [
        Contender(f"{label}:{a.id}" if many else a.id, r, a.id)
        for label, r in runs
        for a in r.algorithms
        if named is None or a.id in named
    ]
    if len(out) < 2:
        raise IncomparableError(
            "need at least two algorithms to compare (one run with several, or several runs)."
        )
    return out, warnings


def resolve(name: str, ids: Iterable[str]) -> str | None:
    """The id among ``ids`` that ``name`` means, spelt as a suite may spell it: the id itself,
    any case (``PDQ``), a spelling the suite canonicalises (``pdq<=31|phash<=10``,
    ``phash(hash_size=8)``) or a hasher's label in a file written before labels were ids."""
    ids = list(ids)
    if name in ids:
        return name
    folded = [i for i in ids if i.casefold() == name.casefold()]
    if len(folded) == 1:
        return folded[0]
    from harness.algorithms.base import former_label, make_algorithm

    try:
        canonical = make_algorithm(name).id
    except HarnessError:
        canonical = None
    if canonical in ids:
        return canonical
    former = [i for i in ids if (former_label(i) or "").casefold() == name.casefold()]
    return former[0] if len(former) == 1 else None


#: How contenders are paired: within one run, or across runs that share no algorithm (a
#: built-in run beside a vendor's scored run), every algorithm with every other; across runs
#: that share algorithms, each with itself (did the upgrade change it?).
EVERY, SAME = "every algorithm with every other", "each algorithm with itself across runs"


def _pairing(runs: list[tuple[str, Results]], people: list[Contender]) -> str:
    """:data:`EVERY` or :data:`SAME` for these runs (their images and edits were checked to be
    the same, so a pair from two runs is as paired as one from a single run)."""
    per_run = [{c.algorithm for c in people if c.result is r} for _, r in runs]
    shared = any(x & y for x, y in itertools.combinations(per_run, 2))
    return SAME if len(runs) > 1 and shared else EVERY


def _matches(c: Contender, transform: str, threshold: int | None) -> list[bool | None]:
    """Per image: matched, missed (gated copies too), or None (no pair)."""
    cell = c.cells().get(transform)
    if cell is None:  # a run narrowed to fewer edits: no pair here
        return [None] * len(c.result.dataset.images)
    gated = set(cell.positives.gated)
    ids = [i.id for i in c.result.dataset.images]
    return [
        False
        if ids[k] in gated
        else None
        if d is None
        else threshold is not None and d <= threshold
        for k, d in enumerate(cell.positives.distances or [])
    ]


def _mcnemar(a: list[bool | None], b: list[bool | None]) -> dict[str, Any]:
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    only_a = sum(1 for x, y in both if x and not y)
    only_b = sum(1 for x, y in both if y and not x)
    n_disc = only_a + only_b
    p = 1.0 if n_disc == 0 else float(binomtest(only_a, n_disc, 0.5).pvalue)
    return {
        "n": len(both),
        "tpr_a": sum(x for x, _ in both) / len(both) if both else None,
        "tpr_b": sum(y for _, y in both) / len(both) if both else None,
        "only_a": only_a,
        "only_b": only_b,
        "p_value": p,
    }


def _per_image(
    c: Contender, transforms: list[str], threshold: int | None, held_out_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Matched and usable edit counts per source image, pooled over ``transforms`` (held-out
    images only when asked: a calibrated threshold is scored on images it was not chosen on)."""
    images = c.result.dataset.images
    hits, usable = np.zeros(len(images)), np.zeros(len(images))
    for t in transforms:
        for i, m in enumerate(_matches(c, t, threshold)):
            if m is not None and not (held_out_only and images[i].split == "calibration"):
                usable[i] += 1
                hits[i] += m
    return hits, usable


def _paired_bootstrap(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], resamples: int, seed: int
) -> dict[str, Any]:
    keep = (a[1] > 0) & (b[1] > 0)
    ha, ua, hb, ub = a[0][keep], a[1][keep], b[0][keep], b[1][keep]
    if len(ha) < 2:
        return {"difference": None, "ci95": [None, None], "significant": False}
    diff = ha.sum() / ua.sum() - hb.sum() / ub.sum()
    rng = np.random.default_rng(seed)
    w = rng.multinomial(len(ha), np.full(len(ha), 1 / len(ha)), size=resamples)
    boot = (w @ ha) / (w @ ua) - (w @ hb) / (w @ ub)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "difference": float(diff),
        "ci95": [float(lo), float(hi)],
        "significant": bool(lo > 0 or hi < 0),
    }


def compare(
    runs: list[tuple[str, Results]],
    *,
    alpha: float = ALPHA,
    resamples: int = 2000,
    seed: int = 0,
    algorithms: list[str] | None = None,
) -> dict[str, Any]:
    """Paired comparison: within one run every contender with every other; across runs each
    algorithm with itself in the other runs. ``algorithms`` keeps only those named."""
    people, warnings = contenders(runs, algorithms)
    first = runs[0][1]
    transforms = [t.id for t in first.transforms if t.id != "identity"]
    target = ((first.suite.config or {}).get("target_fprs") or [1e-3])[0]
    pairing = _pairing(runs, people)
    matchups = [
        (a, b)
        for a, b in itertools.combinations(people, 2)
        if pairing != SAME or a.algorithm == b.algorithm
    ]
    if not matchups:
        raise IncomparableError(
            "need at least two algorithms to compare (one run with several, or several runs)."
        )
    pairs: list[dict[str, Any]] = []
    for a, b in matchups:
        per_transform = []
        for t in transforms:
            test = _mcnemar(_matches(a, t, a.threshold), _matches(b, t, b.threshold))
            per_transform.append({"transform": t, **test, "significant": test["p_value"] < alpha})
        pooled = _paired_bootstrap(
            _per_image(a, transforms, a.threshold),
            _per_image(b, transforms, b.threshold),
            resamples,
            seed,
        )
        ca, cb = a.choice(target), b.choice(target)
        ta = ca.threshold if ca else None
        tb = cb.threshold if cb else None
        statuses = [c.status if c else "undefined" for c in (ca, cb)]
        at_fpr = _paired_bootstrap(
            _per_image(a, transforms, ta, held_out_only=True),
            _per_image(b, transforms, tb, held_out_only=True),
            resamples,
            seed,
        )
        pairs.append(
            {
                "a": a.label,
                "b": b.label,
                "thresholds": [a.threshold, b.threshold],
                "per_transform": per_transform,
                # Real variant pairs (manifest variant_of), tested the same way, kept apart.
                "per_variant": variants.compare_rows(a, b, alpha, _mcnemar),
                "pooled_tpr": pooled,
                "tpr_at_fpr": {
                    "target_fpr": target,
                    "thresholds": [ta, tb],
                    "statuses": statuses,
                    "resolved": statuses == ["ok", "ok"],
                    "scored_on": "held-out images",
                    **at_fpr,
                },
                "fpr_at_threshold": _fpr_test(a, b, alpha),
            }
        )
    return {
        "alpha": alpha,
        "suite": first.suite.name,
        "cost": _cost(people),
        "pairing": pairing,
        "warnings": warnings,
        "summary": [_summary(p) for p in pairs],
        "pairs": pairs,
    }


def _cost(people: list[Contender]) -> list[dict[str, str]]:
    """Each contender's CPU time per image from its run block (how it was measured, not a
    statistical comparison: runs on other machines or loads are not comparable)."""
    from harness.report.model import cpu_cost

    out = []
    for c in people:
        run = None if c.result.run is msgspec.UNSET else msgspec.to_builtins(c.result.run)
        cell = cpu_cost(run).get(c.algorithm)
        value = "not measured" if cell is None else cell.text
        out.append(
            {"contender": c.label, "cpu_ms": value, "note": "" if cell is None else cell.note}
        )
    return out


def _fpr_test(a: Contender, b: Contender, alpha: float) -> dict[str, Any]:
    """False-match counts over pairs of distinct originals at each one's threshold, compared
    with Fisher's exact test (per-pair outcomes are not stored)."""
    ha, hb = np.asarray(a.originals_hist()), np.asarray(b.originals_hist())
    ka, kb = int(ha[: a.threshold + 1].sum()), int(hb[: b.threshold + 1].sum())
    na, nb = int(ha.sum()), int(hb.sum())
    fisher_p = float(fisher_exact([[ka, na - ka], [kb, nb - kb]])[1]) if na and nb else 1.0
    return {
        "a": [ka, na],
        "b": [kb, nb],
        "p_value": fisher_p,
        "significant": fisher_p < alpha,
        "test": "Fisher exact on counts (pairs are shared, so this is conservative)",
    }


def _verdict(d: dict[str, Any], a: str, b: str) -> str:
    if d["difference"] is None:
        return "n/a"
    if not d["significant"]:
        return "within noise"
    return f"{a} better" if d["difference"] > 0 else f"{b} better"


def _summary(p: dict[str, Any]) -> dict[str, Any]:
    """One line of the summary table: which is better, by how much, significant or not."""
    f = p["fpr_at_threshold"]
    (ka, na), (kb, nb) = f["a"], f["b"]
    fpr_diff = (ka / na if na else 0.0) - (kb / nb if nb else 0.0)
    return {
        "a": p["a"],
        "b": p["b"],
        "pooled_tpr": _verdict(p["pooled_tpr"], "A", "B"),
        "pooled_tpr_difference": p["pooled_tpr"]["difference"],
        "tpr_at_fpr": _verdict(p["tpr_at_fpr"], "A", "B")
        + ("" if p["tpr_at_fpr"]["resolved"] else " (target unresolved)"),
        "tpr_at_fpr_difference": p["tpr_at_fpr"]["difference"],
        "fpr": "within noise"
        if not f["significant"]
        else ("B better" if fpr_diff > 0 else "A better"),
        "fpr_difference": fpr_diff,
        "transforms_significant": sum(t["significant"] for t in p["per_transform"]),
        "transforms": len(p["per_transform"]),
        "variants_significant": sum(t["significant"] for t in p["per_variant"]),
        "variants": len(p["per_variant"]),
    }
