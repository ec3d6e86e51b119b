"""Hashed columns -> pairs -> metrics: the results document of a run (pure, deterministic).

:func:`evaluate` turns a :class:`~harness.runner.HashedCorpus` into the results dict (see
:mod:`harness.results` for the schema); it opens no file and decodes no image. The orchestration
around it (dataset, hashing pass, cache, ``run`` block) is :mod:`harness.pipeline`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from datasets_benign import Dataset
from datasets_benign.base import sha256_json
from harness import __version__, flagged, kernels, pairs, variants
from harness.columns import Columns
from harness.core.errors import HarnessError
from harness.env import environment
from harness.metrics import (
    fpr_at_tpr,
    histogram,
    precision_at,
    rate_at,
    roc,
    summary,
    sweep,
    tpr_at_fpr,
    undefined_as_status,
)
from harness.quality import hash_quality, near_duplicate_groups
from harness.result_model import Results
from harness.results import SCHEMA_VERSION, impostor_summary
from harness.runner import HashedCorpus
from harness.suite import NearDuplicates, Suite
from harness.summaries import edit_families, leaderboard
from harness.thresholds import (
    GATED,
    AlgorithmHashes,
    Evidence,
    recommend,
    score_at,
    split_images,
)

#: Closest colliding pairs and worst escaped edits listed per algorithm / cell for review.
REVIEW_LIMIT = 20
ORIGINAL = Columns.ORIGINAL


def _duplicates(corpus: HashedCorpus) -> dict[int, int]:
    """Index of each exact pixel duplicate -> index of the first image with the same pixels."""
    first: dict[str, int] = {}
    dupes: dict[int, int] = {}
    for i, sha in enumerate(corpus.sha256):
        if sha is None:
            continue
        if sha in first:
            dupes[i] = first[sha]
        else:
            first[sha] = i
    return dupes


def included_images(corpus: HashedCorpus) -> tuple[npt.NDArray[np.bool_], dict[int, int]]:
    """Images evaluated (decoded, not an exact duplicate of an earlier one) and the
    duplicates (index -> index of the first image with the same pixels)."""
    dupes = _duplicates(corpus)
    included = corpus.decoded.copy()
    included[list(dupes)] = False
    return included, dupes


def corpus_hygiene(
    suite: Suite,
    corpus: HashedCorpus,
    included: npt.NDArray[np.bool_],
    dupes: dict[int, int],
    dataset: Dataset,
) -> tuple[npt.NDArray[np.int64], dict[str, Any]]:
    """Group labels for negative pairs (declared groups, near duplicates merged) and findings."""
    ids = corpus.image_ids
    first: dict[str, int] = {}
    groups = np.array(
        [first.setdefault(r.group, i) if r.group else i for i, r in enumerate(dataset.records)],
        dtype=np.int64,
    )
    report: dict[str, Any] = {
        "exact_duplicates": [{"image": ids[i], "same_pixels_as": ids[j]} for i, j in dupes.items()],
        "near_duplicates": None,
        "degenerate": _degenerate(corpus),
    }
    if suite.near_duplicates is not None:
        report["near_duplicates"] = _near_duplicates(
            suite.near_duplicates, suite, corpus, included, groups
        )
    return groups, report


def _near_duplicates(
    near: NearDuplicates,
    suite: Suite,
    corpus: HashedCorpus,
    included: npt.NDArray[np.bool_],
    groups: npt.NDArray[np.int64],
) -> dict[str, Any]:
    """Merge near-duplicate originals into one group (``groups`` is updated in place) and
    describe what was merged."""
    ids = corpus.image_ids
    algo_ids = [algo.id for algo in suite.algorithms]
    a = algo_ids.index(near.algorithm)
    usable = np.flatnonzero(corpus.ok[a][ORIGINAL] & included)
    before = groups.copy()
    second: dict[tuple[int, int], int] = {}
    confirm = None
    if near.confirm_algorithm is not None and near.confirm_max_distance is not None:
        b = algo_ids.index(near.confirm_algorithm)
        hashes, ok_b = corpus.packed[b][ORIGINAL], corpus.ok[b][ORIGINAL]
        metric_b, limit_b = suite.algorithms[b].metric(), near.confirm_max_distance

        def confirm(i: int, j: int) -> bool:
            """Both images hashed by the second algorithm, and within its own limit."""
            x, y = usable[i], usable[j]
            if not (ok_b[x] and ok_b[y]):
                return False
            second[(i, j)] = int(kernels.hamming(hashes[[x]], hashes[[y]], metric_b)[0])
            return second[(i, j)] <= limit_b

    merged, links = near_duplicate_groups(
        corpus.packed[a][ORIGINAL][usable],
        near.max_distance,
        metric=suite.algorithms[a].metric(),
        groups=groups[usable],
        confirm=confirm,
    )
    groups[usable] = merged
    members: dict[int, list[str]] = {}
    for i in usable:
        members.setdefault(int(groups[i]), []).append(ids[i])
    # Report only groups that near duplicates created or grew (not declared groups as they were).
    grown = {int(groups[i]) for i in usable if groups[i] != before[i]}
    pairs_out: list[dict[str, Any]] = []
    for p, q, d in links:
        pair: dict[str, Any] = {"a": ids[usable[p]], "b": ids[usable[q]], "distance": d}
        if (p, q) in second:
            pair["confirm_distance"] = second[(p, q)]
        pairs_out.append(pair)
    confirmed = (
        {
            "confirm_algorithm": near.confirm_algorithm,
            "confirm_max_distance": near.confirm_max_distance,
        }
        if near.confirm_algorithm
        else {}
    )
    return {
        "algorithm": near.algorithm,
        "max_distance": near.max_distance,
        **confirmed,
        "pairs": pairs_out,
        "groups": [g for label, g in members.items() if label in grown],
        "note": "pairs inside a group are never counted as negatives",
    }


#: Flagged (not excluded) as degenerate: shorter side below this, or grey-level sd below FLAT_SD.
TINY_SIDE = 32
FLAT_SD = 2.0


def _degenerate(corpus: HashedCorpus) -> list[dict[str, str]]:
    """Images too small or too flat for any hash to mean much; listed for review."""
    out = []
    for i, image_id in enumerate(corpus.image_ids):
        size = corpus.sizes[i]
        std = corpus.grey_std[i] if i < len(corpus.grey_std) else None
        if size and min(size) < TINY_SIDE:
            out.append({"image": image_id, "reason": f"tiny: {size[0]}x{size[1]} px"})
        elif std is not None and std < FLAT_SD:
            out.append({"image": image_id, "reason": f"flat: grey-level sd {std:.2f}"})
    return out


def _collisions_by_category(
    originals: npt.NDArray[np.uint8],
    usable: npt.NDArray[np.bool_],
    n_bits: int,
    groups: npt.NDArray[np.int64],
    categories: list[str],
    thresholds: tuple[int, ...],
    metric: kernels.Metric | None,
) -> dict[str, Any]:
    """Pairs of distinct originals within each category (clip art collides more than photos)."""
    present = sorted({categories[i] for i in np.flatnonzero(usable)})
    if len(present) < 2:
        return {}
    out = {}
    for category in present:
        members = usable & np.array([c == category for c in categories])
        hist = pairs.originals_all_pairs(originals, members, n_bits, groups, metric)
        out[category] = {
            "n_images": int(members.sum()),
            "n_pairs": int(hist.sum()),
            "metrics": [
                _metric("fpr", {"threshold": t}, rate_at(hist, t))
                for t in thresholds
                if hist.sum() > 0
            ],
        }
    return out


def _negatives(hist: npt.NDArray[np.int64]) -> dict[str, Any]:
    return {"n": int(hist.sum()), "hist": hist.tolist(), "summary": summary(hist)}


def gated_copies(suite: Suite, corpus: HashedCorpus) -> list[npt.NDArray[np.bool_]]:
    """Per algorithm, ``(columns, n_images)``: hashes the algorithm's own rule (quality gate)
    discarded, as opposed to failures."""
    column = Columns.of(suite.transforms).index()
    index = {image_id: i for i, image_id in enumerate(corpus.image_ids)}
    algo = {a.id: k for k, a in enumerate(suite.algorithms)}
    out = [np.zeros_like(ok) for ok in corpus.ok]
    for e in corpus.exclusions:
        if e["algorithm"] in algo and e["transform"] in column and e["image"] in index:
            out[algo[e["algorithm"]]][column[e["transform"]], index[e["image"]]] = True
    return out


@dataclass(frozen=True)
class _Run:
    """What every algorithm's statistics share: the suite, its hashes and the image sets."""

    suite: Suite
    dataset: Dataset
    corpus: HashedCorpus
    layout: Columns
    #: Images evaluated (decoded, not exact duplicates).
    included: npt.NDArray[np.bool_]
    #: Group label per image: pairs inside a group are never negatives.
    groups: npt.NDArray[np.int64]
    categories: list[str]
    calibration: npt.NDArray[np.bool_]
    gated: list[npt.NDArray[np.bool_]]


@dataclass
class _Sections:
    """The per-algorithm sections of the document, filled one algorithm at a time."""

    cells: list[dict[str, Any]] = field(default_factory=list)
    collisions: list[dict[str, Any]] = field(default_factory=list)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    curves: list[dict[str, Any]] = field(default_factory=list)
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    quality: list[dict[str, Any]] = field(default_factory=list)
    flagged_share: list[dict[str, Any]] = field(default_factory=list)
    impostors: dict[str, tuple[npt.NDArray[np.int32], ...]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _cell(
    run: _Run, a: int, t: int, nearest_impostors: tuple[npt.NDArray[np.int64], ...]
) -> tuple[dict[str, Any], npt.NDArray[np.int64], int, dict[str, npt.NDArray[np.int64]]]:
    """One (algorithm, transform) cell: positives (gated copies listed apart), every cell
    protocol, metrics, review lists.

    ``nearest_impostors`` is the cell's :func:`harness.pairs.nearest_impostor`, computed for
    every edit of the algorithm at once."""
    suite, corpus = run.suite, run.corpus
    algo, chain, c = suite.algorithms[a], suite.transforms[t], run.layout.chain(t)
    ids, n_bits, thresholds = corpus.image_ids, algo.n_levels, suite.thresholds[algo.id]
    metric = algo.metric()
    originals, edited = corpus.packed[a][ORIGINAL], corpus.packed[a][c]
    originals_ok = corpus.ok[a][ORIGINAL] & run.included
    edited_ok = corpus.ok[a][c] & run.included
    both = edited_ok & originals_ok

    gated_mask = run.gated[a][c] & originals_ok & ~edited_ok
    dist = pairs.positive_distances(originals, edited, both, metric)
    pos_hist = histogram(dist, n_bits)
    per_image: list[int | None] = [None] * len(ids)
    for i, d in zip(np.flatnonzero(both).tolist(), dist.tolist(), strict=True):
        per_image[i] = d
    nearest, nearest_index = nearest_impostors
    neg = {
        "edited_vs_other_originals": pairs.edited_vs_other_originals(
            originals, originals_ok, edited, edited_ok, n_bits, run.groups, metric
        ),
        "edited_vs_edited": pairs.edited_vs_edited(edited, edited_ok, n_bits, run.groups, metric),
        "nearest_impostor": pairs.nearest_impostor_histogram(nearest, n_bits),
    }
    metrics = _cell_metrics(run, thresholds, pos_hist, per_image, gated_mask, both, n_bits)
    metrics += [
        _metric("fpr", {"threshold": th, "protocol": p}, rate_at(h, th))
        for p, h in neg.items()
        for th in thresholds
    ]
    default = thresholds[0]
    misses = sorted(
        ((d, ids[i]) for i, d in enumerate(per_image) if d is not None and d > default),
        reverse=True,
    )[:REVIEW_LIMIT]
    query_index = np.flatnonzero(edited_ok)
    false_matches = [
        {"query": ids[query_index[q]], "nearest_other": ids[j], "distance": int(d)}
        for q, (d, j) in enumerate(zip(nearest.tolist(), nearest_index.tolist(), strict=True))
        if 0 <= d <= max(thresholds)
    ]
    false_matches.sort(key=lambda m: (m["distance"], m["query"]))
    cell = {
        "algorithm": algo.id,
        "transform": chain.id,
        "n_bits": n_bits,
        "positives": {
            "n": int(pos_hist.sum()),
            "hist": pos_hist.tolist(),
            "summary": summary(pos_hist),
            "distances": per_image,
            "gated": [ids[i] for i in np.flatnonzero(gated_mask)],
        },
        "negatives": {p: _negatives(h) for p, h in neg.items()},
        "metrics": metrics,
        "misses": [{"image": i, "distance": d} for d, i in misses],
        "false_matches": false_matches[:REVIEW_LIMIT],
    }
    return cell, pos_hist, int(gated_mask.sum()), neg


def _cell_metrics(
    run: _Run,
    thresholds: tuple[int, ...],
    pos_hist: npt.NDArray[np.int64],
    per_image: list[int | None],
    gated_mask: npt.NDArray[np.bool_],
    both: npt.NDArray[np.bool_],
    n_bits: int,
) -> list[dict[str, Any]]:
    """A cell's true-match rates: overall, over the hashed copies when a gate discarded some,
    and per category when the cell spans several."""
    n_gated = int(gated_mask.sum())
    categories = run.categories
    # A gated copy escapes (the platform cannot match a discarded hash): a miss in the TPR.
    metrics = [
        _metric("tpr", {"threshold": th}, rate_at(pos_hist, th, n_gated)) for th in thresholds
    ]
    if n_gated:  # secondary, labelled: over the copies the gate kept
        metrics += [
            _metric("tpr_hashed", {"threshold": th}, rate_at(pos_hist, th)) for th in thresholds
        ]
    present = sorted({categories[i] for i in np.flatnonzero(both | gated_mask)})
    if len(present) > 1:  # strata: the same edit can be harmless on photos, fatal on clip art
        for category in present:
            in_cat = [
                d for i, d in enumerate(per_image) if d is not None and categories[i] == category
            ]
            h = histogram(np.array(in_cat, dtype=np.int64), n_bits)
            misses_in_cat = sum(categories[i] == category for i in np.flatnonzero(gated_mask))
            metrics += [
                _metric(
                    "tpr", {"threshold": th, "category": category}, rate_at(h, th, misses_in_cat)
                )
                for th in thresholds
            ]
    return metrics


def algorithm_hashes(
    suite: Suite,
    corpus: HashedCorpus,
    a: int,
    included: npt.NDArray[np.bool_],
    groups: npt.NDArray[np.int64],
    gated: list[npt.NDArray[np.bool_]] | None = None,
) -> AlgorithmHashes:
    """Hashes of one algorithm for threshold selection; identity (a control) is left out.
    ``gated`` is :func:`gated_copies` (computed when not given)."""
    if gated is None:
        gated = gated_copies(suite, corpus)
    layout = Columns.of(suite.transforms)
    keep = [t for t, c in enumerate(suite.transforms) if c.id != "identity"]
    columns = [layout.chain(t) for t in keep]
    return AlgorithmHashes(
        edited_gated=gated[a][columns] & included[None],
        symmetric=suite.algorithms[a].symmetric,
        n_bits=suite.algorithms[a].n_levels,
        metric=suite.algorithms[a].metric(),
        originals=corpus.packed[a][ORIGINAL],
        originals_ok=corpus.ok[a][ORIGINAL] & included,
        edited=corpus.packed[a][columns],
        edited_ok=corpus.ok[a][columns] & included[None],
        groups=groups,
        chain_ids=tuple(suite.transforms[t].id for t in keep),
    )


@undefined_as_status()
def evaluate(
    suite: Suite,
    dataset: Dataset,
    corpus: HashedCorpus,
    on_algorithm: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Compute every histogram and metric of a run from its hashes (deterministic).

    ``on_algorithm(text)`` is told when each algorithm's statistics start: on a large corpus
    the all-pairs collision counts of one algorithm can take minutes.
    """
    included, dupes = included_images(corpus)
    failures, oversize = _oversize(dataset, corpus.failures)
    groups, hygiene = corpus_hygiene(suite, corpus, included, dupes, dataset)
    run = _Run(
        suite=suite,
        dataset=dataset,
        corpus=corpus,
        layout=Columns.of(suite.transforms),
        included=included,
        groups=groups,
        categories=[r.category or "uncategorised" for r in dataset.records],
        calibration=split_images(corpus.image_ids, suite.calibration_fraction, suite.seed),
        gated=gated_copies(suite, corpus),
    )
    sections = _Sections()
    for a, algo in enumerate(suite.algorithms):
        if on_algorithm is not None:
            on_algorithm(f"statistics {a + 1}/{len(suite.algorithms)}: {algo.id}")
        _algorithm(run, a, sections)
    hygiene["warnings"] = sections.warnings
    result = _document(run, failures, oversize, dupes, hygiene, sections)
    result["leaderboard"] = leaderboard(result, suite.target_fprs[0])
    # What the reports group by (families of edits, their pooled distances): computed here, so
    # that no report needs the transform catalogue or recomputes a histogram.
    result["edit_families"] = edit_families(result)
    return result


def _algorithm(run: _Run, a: int, out: _Sections) -> None:
    """Every statistic of algorithm ``a``, appended to ``out``."""
    suite, corpus = run.suite, run.corpus
    algo = suite.algorithms[a]
    originals_ok = corpus.ok[a][ORIGINAL] & run.included
    # Each image's impostor histograms against the calibration and the held-out images:
    # the threshold rule's evidence, kept for later questions; together they hold every
    # pair of distinct originals twice (an asymmetric metric's, at one distance, in `pairs`).
    evidence = dataclasses.replace(
        algorithm_hashes(suite, corpus, a, run.included, run.groups, run.gated).evidence(
            run.calibration
        ),
        uploads=run.included,
        hashable=originals_ok,
    )
    out.impostors[algo.id] = tuple(
        rows.astype(np.int32)
        for rows in (evidence.vs_calibration, evidence.vs_held_out, *(evidence.pairs or ()))
    )
    vs_calibration, vs_held_out = evidence.pairs or (evidence.vs_calibration, evidence.vs_held_out)
    orig_hist = (vs_calibration.sum(axis=0) + vs_held_out.sum(axis=0)) // 2
    _originals(run, a, orig_hist, out)
    pooled_pos, pooled_gated = _edits(run, a, out)
    _curves(run, a, pooled_pos, pooled_gated, orig_hist, out)
    _thresholds(run, a, evidence, out)


def _originals(run: _Run, a: int, orig_hist: npt.NDArray[np.int64], out: _Sections) -> None:
    """Collisions between different originals: counts, closest pairs, per category, a
    concentration warning and the hash's own quality."""
    suite, corpus, ids = run.suite, run.corpus, run.corpus.image_ids
    algo = suite.algorithms[a]
    n_bits, metric, thresholds = algo.n_levels, algo.metric(), suite.thresholds[algo.id]
    originals = corpus.packed[a][ORIGINAL]
    originals_ok = corpus.ok[a][ORIGINAL] & run.included
    usable_index = np.flatnonzero(originals_ok)
    usable, groups = originals[originals_ok], run.groups[originals_ok]
    closest = kernels.pairs_within(
        usable, max(thresholds), REVIEW_LIMIT, groups=groups, metric=metric
    )
    out.collisions.append(
        {
            "algorithm": algo.id,
            "protocol": "originals_all_pairs",
            "n_bits": n_bits,
            "n_images": int(originals_ok.sum()),
            "n_pairs": int(orig_hist.sum()),
            "hist": orig_hist.tolist(),
            "summary": summary(orig_hist),
            "metrics": [
                _metric("fpr", {"threshold": t}, rate_at(orig_hist, t)) for t in thresholds
            ],
            "closest_pairs": [
                {"a": ids[usable_index[i]], "b": ids[usable_index[j]], "distance": d}
                for i, j, d in closest
            ],
            "by_category": _collisions_by_category(
                originals, originals_ok, n_bits, run.groups, run.categories, thresholds, metric
            ),
        }
    )
    false_pairs = kernels.pairs_within(
        usable, thresholds[0], CONCENTRATION_LIMIT, groups=groups, metric=metric
    )
    warning = _concentration(
        algo.id,
        thresholds[0],
        [(ids[usable_index[i]], ids[usable_index[j]]) for i, j, _ in false_pairs],
        run.dataset,
    )
    if warning is not None:
        out.warnings.append(warning)
    out.quality.append(
        {
            "algorithm": algo.id,
            **hash_quality(usable, n_bits, [ids[i] for i in usable_index], groups, metric),
        }
    )


def _edits(run: _Run, a: int, out: _Sections) -> tuple[npt.NDArray[np.int64], int]:
    """Every cell of algorithm ``a`` and its cell protocols pooled over the edits (identity
    left out); returns the pooled positive histogram and the number of gated copies."""
    suite, corpus = run.suite, run.corpus
    algo = suite.algorithms[a]
    n_bits, thresholds = algo.n_levels, suite.thresholds[algo.id]
    pooled_pos = np.zeros(n_bits + 1, dtype=np.int64)
    pooled_gated = 0
    pooled = {p: np.zeros(n_bits + 1, dtype=np.int64) for p in pairs.CELL_PROTOCOLS}
    edits = run.layout.edits
    nearest_by_edit = pairs.nearest_impostor(
        corpus.packed[a][ORIGINAL],
        corpus.ok[a][ORIGINAL] & run.included,
        corpus.packed[a][edits],
        corpus.ok[a][edits] & run.included,
        run.groups,
        algo.metric(),
    )
    for t, chain in enumerate(suite.transforms):
        cell, pos_hist, n_gated, neg = _cell(run, a, t, nearest_by_edit[t])
        out.cells.append(cell)
        if chain.id != "identity":
            pooled_pos += pos_hist
            pooled_gated += n_gated
            for p, h in neg.items():
                pooled[p] += h
    for p, h in pooled.items():
        out.collisions.append(
            {
                "algorithm": algo.id,
                "protocol": p,
                "pooled_over": "every edit except identity",
                "n_bits": n_bits,
                "n_pairs": int(h.sum()),
                "hist": h.tolist(),
                "summary": summary(h),
                "metrics": [_metric("fpr", {"threshold": t}, rate_at(h, t)) for t in thresholds],
            }
        )
    return pooled_pos, pooled_gated


def _curves(
    run: _Run,
    a: int,
    pooled_pos: npt.NDArray[np.int64],
    pooled_gated: int,
    orig_hist: npt.NDArray[np.int64],
    out: _Sections,
) -> None:
    """The threshold sweep and the whole-corpus curves (in-sample) of algorithm ``a``."""
    suite = run.suite
    algo = suite.algorithms[a]
    n_bits, first = algo.n_levels, suite.thresholds[algo.id][0]
    out.sweeps.append(
        {
            "algorithm": algo.id,
            "n_bits": n_bits,
            "positives": "all edits pooled (identity excluded); gated copies are misses",
            "negatives": "originals_all_pairs",
            "gated": pooled_gated,
            "rows": sweep(pooled_pos, orig_hist, range(n_bits + 1), pooled_gated),
        }
    )
    out.curves.append(
        {
            "algorithm": algo.id,
            "positives": (
                "all edits pooled (identity excluded); ROC and AUC over the hashed copies, "
                "the rates below count gated copies as misses"
            ),
            "negatives": "originals_all_pairs",
            "in_sample": True,
            **roc(pooled_pos, orig_hist),
            "tpr_at_fpr": [
                tpr_at_fpr(pooled_pos, orig_hist, f, pooled_gated) for f in suite.target_fprs
            ],
            "fpr_at_tpr": [
                fpr_at_tpr(pooled_pos, orig_hist, x, pooled_gated) for x in (0.5, 0.9, 0.95)
            ],
            "precision": [
                {
                    "threshold": first,
                    **precision_at(
                        rate_at(pooled_pos, first, pooled_gated), rate_at(orig_hist, first), b
                    ),
                }
                for b in suite.base_rates
            ],
        }
    )


def _thresholds(run: _Run, a: int, evidence: Evidence, out: _Sections) -> None:
    """Thresholds chosen at each target FPR (calibrated, scored on held-out images), the given
    ones scored on every image, and the share of uploads flagged at both."""
    suite = run.suite
    algo = suite.algorithms[a]
    thresholds = suite.thresholds[algo.id]
    resamples, seed = suite.bootstrap_resamples, suite.seed
    targets = [
        recommend(
            evidence,
            f,
            resamples=resamples,
            seed=seed,
            calibration_fraction=suite.calibration_fraction,
        )
        for f in suite.target_fprs
    ]
    out.recommendations.append(
        {
            "algorithm": algo.id,
            "targets": targets,
            # The suite's given thresholds, scored on every image (`threshold --at T`).
            "fixed": [score_at(evidence, th, resamples=resamples, seed=seed) for th in thresholds],
        }
    )
    # Given thresholds on every upload; chosen ones on the held-out images only.
    share = functools.partial(
        flagged_answer, evidence, database_sizes=suite.database_sizes, seed=seed
    )
    chosen = [r for r in targets if r["threshold"] is not None]
    out.flagged_share.append(
        {
            "algorithm": algo.id,
            "database_sizes": list(suite.database_sizes),
            "given": [x for th in thresholds if (x := share(th, held_out=False))],
            "chosen": [
                {"target_fpr": r["target_fpr"], **x}
                for r in chosen
                if (x := share(r["threshold"], held_out=True))
            ],
        }
    )


def _images(
    run: _Run, failed: set[str], oversize: dict[str, dict[str, str]], dupes: dict[int, int]
) -> list[dict[str, Any]]:
    """The dataset's images with their pixel facts, status and split."""
    corpus = run.corpus
    images = []
    for i, record in enumerate(run.dataset.records):
        status = "failed" if record.id in failed else "ok"
        if record.id in oversize:
            status = "excluded"
        if i in dupes:
            status = "duplicate"
        size = corpus.sizes[i]
        entry = {
            **record.to_dict(),
            "sha256": corpus.sha256[i],
            "width": size[0] if size else None,
            "height": size[1] if size else None,
            "status": status,
            "split": "calibration" if run.calibration[i] else "held_out",
        }
        frames = corpus.frames[i] if corpus.frames else 1
        if frames > 1:  # animations, multi-page files: say which frame the numbers are about
            entry["frame"] = f"1 of {frames}"
        images.append(entry)
    return images


def _document(
    run: _Run,
    failures: list[dict[str, str]],
    oversize: dict[str, dict[str, str]],
    dupes: dict[int, int],
    hygiene: dict[str, Any],
    sections: _Sections,
) -> dict[str, Any]:
    """The results document (without the summaries derived from it)."""
    suite, corpus, ids = run.suite, run.corpus, run.corpus.image_ids
    failed = {f["image"] for f in failures}
    n_considered = len(ids) - len(oversize)  # excluded by the dataset's policy
    failure_rate = len(failed) / n_considered if n_considered else 0.0
    return {
        "schema_version": SCHEMA_VERSION,
        "harness_version": __version__,
        "suite": {
            "name": suite.name,
            "version": suite.version,
            "description": suite.description,
            "config": dict(suite.config),
            "config_sha256": suite.config_sha256,
            **({"narrowed": dict(suite.narrowed)} if suite.narrowed else {}),
        },
        "dataset": _dataset_section(run, _images(run, failed, oversize, dupes), oversize, dupes),
        "environment": environment(),
        "seed": suite.seed,
        "algorithms": _algorithms_section(suite),
        "transforms": [
            {
                "id": c.id,
                "label": c.label,
                "version": c.version,
                "intensity": c.intensity,
                "steps": c.to_list(),
            }
            for c in suite.transforms
        ],
        "protocols": dict(pairs.PROTOCOLS),
        "hygiene": hygiene,
        "cells": sections.cells,
        "collisions": sections.collisions,
        "quality": sections.quality,
        "curves": sections.curves,
        "recommendations": sections.recommendations,
        "sweeps": sections.sweeps,
        "flagged_share": sections.flagged_share,
        "impostors": impostor_summary(ids, run.calibration, sections.impostors),
        "failures": failures,
        "exclusions": corpus.exclusions,
        "status": {
            "images_failed": len(failed),
            "failure_rate": failure_rate,
            "max_failure_rate": suite.max_failure_rate,
            "ok": failure_rate <= suite.max_failure_rate,
        },
    }


def _dataset_section(
    run: _Run,
    images: list[dict[str, Any]],
    oversize: dict[str, dict[str, str]],
    dupes: dict[int, int],
) -> dict[str, Any]:
    dataset, ids = run.dataset, run.corpus.image_ids
    excluded = (
        list(dataset.excluded)
        + list(oversize.values())
        + [{"id": ids[i], "reason": f"exact pixel duplicate of {ids[j]}"} for i, j in dupes.items()]
    )
    return {
        "name": dataset.name,
        "decode": dataset.decode,
        "manifest_sha256": dataset.manifest_sha256,
        "content_sha256": sha256_json([[i["id"], i["sha256"]] for i in images]),
        "n_images": len(ids),
        "n_evaluated": int(run.included.sum()),
        # Declared preprocessing: originals shrunk to this longer side (None = never).
        "max_side": dataset.max_side,
        "oversize_policy": dataset.oversize,
        "images": images,
        "excluded": excluded,
    }


def _algorithms_section(suite: Suite) -> list[dict[str, Any]]:
    return [
        {
            **algo.fingerprint(),
            "n_bits": algo.n_levels,
            "hash_bits": algo.n_bits,
            "distance": algo.distance,
            "level_unit": algo.level_unit,
            "thresholds": list(suite.thresholds[algo.id]),
            "operating_thresholds": [
                {"bits": o.bits, "source": o.source} for o in algo.operating_thresholds()
            ],
        }
        for algo in suite.algorithms
    ]


#: False-matching pairs examined for concentration in one group.
CONCENTRATION_LIMIT = 10_000


def _concentration(
    algorithm: str, threshold: int, pairs_found: list[tuple[str, str]], dataset: Dataset
) -> str | None:
    """A warning when most false-matching pairs of originals (``pairs_found``, at
    ``threshold``) involve one image, one declared group or one folder - far more than its size
    explains (e.g. every match is a picture and its resized copy, or a folder of near-identical
    stars)."""
    if len(pairs_found) < 3:
        return None
    group_of = {r.id: r.group for r in dataset.records}

    def keys(image: str) -> list[str]:
        out = [f"image {image}"]
        if group_of.get(image):
            out.append(f"group {group_of[image]}")
        if "/" in image:
            out.append(f"folder {image.rsplit('/', 1)[0]}/")
        return out

    size: dict[str, int] = {}
    for r in dataset.records:
        for key in keys(r.id):
            size[key] = size.get(key, 0) + 1
    counts: dict[str, int] = {}
    for pair in pairs_found:
        for key in set(keys(pair[0]) + keys(pair[1])):
            counts[key] = counts.get(key, 0) + 1
    n_all = len(dataset.records)

    def expected(key: str) -> float:
        """Share of all pairs that involve a member of ``key`` (by its size alone)."""
        rest = n_all - size.get(key, 1)
        return 1.0 - rest * (rest - 1) / max(1, n_all * (n_all - 1))

    # Most pairs involve it, and far more than its size explains (a folder of every image
    # trivially involves every pair).
    over = [
        (n, k)
        for k, n in counts.items()
        if 2 * n > len(pairs_found) and n > 2 * expected(k) * len(pairs_found)
    ]
    if not over:
        return None
    n, key = max(over)
    return (
        f"{algorithm}: {n} of {len(pairs_found)} false-matching pairs of originals "
        f"at <= {threshold} involve {key}: its FPR mostly measures that one group (consider "
        "group_by or a looser [near_duplicates] check)"
    )


def _oversize(
    dataset: Dataset, failures: list[dict[str, str]]
) -> tuple[list[dict[str, str]], dict[str, dict[str, str]]]:
    """Split decompression-bomb refusals off the failures when the dataset declares them
    excluded: ``(failures left, {image id: excluded entry with the reason})``."""
    if dataset.oversize != "exclude":
        return failures, {}
    oversize = {
        f["image"]: {
            "id": f["image"],
            "reason": f"{f['error']} (dataset policy: such images are excluded, not failures)",
        }
        for f in failures
        if f.get("kind") == "decompression_bomb"
    }
    return [f for f in failures if f["image"] not in oversize], oversize


def _metric(name: str, params: dict[str, Any], value: Any) -> dict[str, Any]:
    return {"name": name, "params": params, **value.to_dict()}


def evidence_from_results(
    path: str,
    result: Results,
    algorithm: str,
    *,
    protocol: str = "originals_all_pairs",
    calibration_fraction: float | None = None,
) -> tuple[Evidence, dict[str, Any]]:
    """The same evidence, read from a run's results.json and its impostor sidecar: no image is
    opened and nothing is hashed. Refuses questions the run cannot answer unchanged."""
    from harness import results as results_mod

    ids, calibration = _answerable(path, result, algorithm, protocol, calibration_fraction)
    images = result.dataset.images
    arrays = results_mod.load_impostors(path, result)
    vs_cal, vs_ho, *pair_rows = arrays[algorithm]
    meta = next(a for a in result.algorithms if a.id == algorithm)
    n_bits = meta.levels
    chains = [t.id for t in result.transforms if t.id != "identity"]
    cells = {c.transform: c for c in result.cells if c.algorithm == algorithm}
    index = {image_id: k for k, image_id in enumerate(ids)}
    positives = np.full((len(chains), len(ids)), -1, dtype=np.int64)
    for c, chain in enumerate(chains):
        pos = cells[chain].positives
        for k, d in enumerate(pos.distances or []):
            if d is not None:
                positives[c, k] = d
        for image_id in pos.gated:
            positives[c, index[image_id]] = n_bits + GATED
    uploads = np.array([i.status == "ok" for i in images])
    gated = {
        e.image
        for e in result.exclusions or []
        if e.algorithm == algorithm and e.transform == "original"
    }
    evidence = Evidence(
        n_bits=n_bits,
        chain_ids=tuple(chains),
        positives=positives,
        vs_calibration=vs_cal,
        vs_held_out=vs_ho,
        pairs=(pair_rows[0], pair_rows[1]) if pair_rows else None,
        calibration=calibration,
        uploads=uploads,
        hashable=uploads & np.array([i not in gated for i in ids]),
        variants={
            r.transform: ([p.distance for p in r.positives.pairs], len(r.positives.gated))
            for r in variants.rows(result)
            if r.algorithm == algorithm
        }
        or None,
    )
    context = {
        "algorithm": {
            "id": algorithm,
            "n_bits": n_bits,
            **({"level_unit": meta.level_unit} if meta.level_unit else {}),
        },
        "suite": {"name": result.suite.name, "version": result.suite.version},
        "dataset": {
            "name": result.dataset.name,
            # Results written before decode policies were recorded were decoded as a viewer.
            "decode": result.dataset.decode or "viewer",
            "n_images": result.dataset.n_images,
            "n_evaluated": result.dataset.n_evaluated,
        },
        "source": f"results {path}",
        "hashes_computed": 0,
    }
    return evidence, context


def _answerable(
    path: str,
    result: Results,
    algorithm: str,
    protocol: str,
    calibration_fraction: float | None,
) -> tuple[list[str], npt.NDArray[np.bool_]]:
    """The run's image ids and calibration split, after refusing what it cannot answer."""
    run_fraction = float((result.suite.config or {}).get("calibration_fraction", 0.5))
    if protocol != "originals_all_pairs":
        raise HarnessError(
            f"{path} keeps per-image impostors for originals_all_pairs only; run `threshold` "
            f"without --results for --protocol {protocol}."
        )
    if calibration_fraction is not None and calibration_fraction != run_fraction:
        raise HarnessError(
            f"{path} was split with calibration fraction {run_fraction:g}, not "
            f"{calibration_fraction:g}: run `threshold` without --results to change the split."
        )
    images = result.dataset.images
    ids = [i.id for i in images]
    calibration = np.array([i.split == "calibration" for i in images])
    expected = split_images(ids, run_fraction, int(result.seed or 0))
    if not np.array_equal(calibration, expected):
        raise HarnessError(
            f"{path}: its images' split differs from the suite's seeded split; regenerate it."
        )
    algos = [a.id for a in result.algorithms]
    if algorithm not in algos:
        raise HarnessError(f"{path} has no algorithm {algorithm!r}; it has: {', '.join(algos)}.")
    return ids, calibration


@undefined_as_status()
def flagged_answer(
    evidence: Evidence,
    threshold: int,
    *,
    held_out: bool,
    database_sizes: Sequence[float],
    seed: int,
) -> dict[str, Any]:
    """The share of uploads flagged at ``threshold`` against database size (measured up to the
    corpus, model-based beyond; :mod:`harness.flagged`), from the per-image impostor
    histograms: every upload for a given threshold, held-out images for a chosen one. Empty
    when no image is an upload."""
    uploads = evidence.uploads if evidence.uploads is not None else evidence.usable()
    hashable = (
        evidence.hashable
        if evidence.hashable is not None
        else (evidence.vs_calibration.sum(axis=1) + evidence.vs_held_out.sum(axis=1)) > 0
    )
    counts = flagged.split_counts(
        evidence.vs_calibration,
        evidence.vs_held_out,
        evidence.calibration,
        threshold,
        uploads=uploads,
        hashable=hashable & uploads,
        held_out=held_out,
    )
    if counts.n_uploads == 0:
        return {}
    queries = "held-out images against held-out images" if held_out else "all images"
    return {
        "threshold": threshold,
        **flagged.flagged_share(counts, database_sizes, seed=seed, queries=queries),
    }


@undefined_as_status()
def answer_threshold(
    evidence: Evidence,
    context: dict[str, Any],
    *,
    target_fpr: float | None = None,
    at: int | None = None,
    resamples: int = 1000,
    seed: int = 0,
    calibration_fraction: float = 0.5,
) -> dict[str, Any]:
    """The threshold command's document: a chosen threshold (``target_fpr``: calibrated, scored
    on held-out images) or a given one (``at``: scored on every image)."""
    if (target_fpr is None) == (at is None):
        raise ValueError("give exactly one of target_fpr and at")
    if at is not None:
        answer = {"mode": "fixed", **score_at(evidence, at, resamples=resamples, seed=seed)}
    else:
        answer = {
            "mode": "chosen",
            **recommend(
                evidence,
                target_fpr,  # type: ignore[arg-type]
                resamples=resamples,
                seed=seed,
                calibration_fraction=calibration_fraction,
            ),
        }
    return {**context, **answer}


__all__ = [
    "algorithm_hashes",
    "answer_threshold",
    "corpus_hygiene",
    "evaluate",
    "evidence_from_results",
    "flagged_answer",
    "gated_copies",
    "included_images",
]
