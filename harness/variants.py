"""Real variant pairs: files a manifest declares as re-uploads of one of its images.

A manifest row with ``variant_of: ID`` (and optionally ``kind``, e.g. ``screenshot``) is a copy
of image ``ID`` made outside the harness - a platform's re-encode, a screenshot, a phone
photograph of a screen. Each variant is hashed with every algorithm and scored against its own
original as a positive pair, next to the synthetic edits but in rows of its own: one row per
algorithm and kind, named :func:`row_name` (``variant_of:screenshot``; ``variant_of`` when the
manifest gives no kind), with the same metrics as an edit's cell - TPR at each given threshold
with its count and interval (a variant whose hash the algorithm's quality gate discards is an
escape, a miss), and the negative protocols with the variant as the query - and the TPR at each
threshold the run chose for a target false-match rate (``chosen``). Those thresholds are chosen
on the calibration images' negative pairs of the synthetic run before any variant is hashed, so
no variant ever informs them; every variant is scored at them, and the leaderboard gains the
variants' TPR at its threshold (``leaderboard.rows[].variants``).

A variant is never an image of its own: it is in none of the all-pairs collision counts, and it
takes its original's group, so it never forms a negative pair with its original or anything
grouped with it. The ``variants`` section exists only when the dataset declares variants, so
results of other datasets are unchanged.

Section layout (``result["variants"]``)::

    {"note": ..., "images": [{"id", "variant_of", "kind", "sha256", "width", "height"}],
     "rows": [{"algorithm", "transform": "variant_of:screenshot", "kind", "n_bits",
               "positives": {"n", "hist", "summary", "pairs": [{"variant", "original",
                             "distance"}], "gated": [...], "unpaired": [{"variant",
                             "original", "reason"}]},
               "negatives": {protocol: {"n", "hist", "summary"}},
               "metrics": [...],
               "chosen": [{"target_fpr", "threshold", "status", "tpr": {"k", "n", ...}}],
               "misses": [...]}]}

Rows have the shape of ``cells`` (``transform`` holds the row name), so the tidy tables and the
CI guard read them like cells; ``distances`` per dataset image are replaced by ``pairs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # readers of the section (reports, compare, guard) import nothing heavy
    from datasets_benign import Dataset
    from harness.result_model import Results, VariantRow
    from harness.runner import HashedCorpus
    from harness.suite import Suite

#: Row name of variants without a kind; others are ``variant_of:<kind>``.
ROW = "variant_of"
NOTE = (
    "real re-uploads declared by the manifest (variant_of), scored against their own original "
    "at the given thresholds and at the thresholds chosen for each target false-match rate on "
    "the calibration images' synthetic negative pairs (never on variants); gated variants are "
    "misses; a variant is never a negative of its original's group and is in no all-pairs "
    "collision count"
)


def row_name(kind: str) -> str:
    """The report row of variants of ``kind``."""
    return f"{ROW}:{kind}" if kind else ROW


def attach(
    result: dict[str, Any],
    suite: Suite,
    data: Dataset,
    corpus: HashedCorpus,
    *,
    workers: int = 1,
    store: Any = None,
) -> None:
    """Hash ``data``'s variants (through the cache ``store`` when given) and :func:`add` them
    to ``result``, a run's evaluated document. No-op without variants."""
    if not data.variants:
        return
    add(result, suite, data, corpus, hash_variants(suite, data, workers=workers, store=store))


def hash_variants(
    suite: Suite, data: Dataset, *, workers: int = 1, store: Any = None
) -> HashedCorpus:
    """Hash ``data``'s variants with the suite's algorithms (one column, no edits)."""
    from datasets_benign import Dataset
    from harness.runner import hash_corpus

    return hash_corpus(
        Dataset(f"{data.name} variants", tuple(v.record for v in data.variants), ""),
        (),
        suite.algorithms,
        seed=suite.seed,
        workers=workers,
        store=store,
    )


def _pair_up(
    data: Dataset,
    members: list[int],
    originals_ok: npt.NDArray[np.bool_],
    queries_ok: npt.NDArray[np.bool_],
    gated_ids: set[str],
) -> tuple[list[int], list[int], list[int]]:
    """Variants ``members`` (indices into ``data.variants``) split into paired (both hashes
    there), gated (the algorithm's quality gate discarded the variant's hash: a miss) and
    unpaired (no original to pair with, or no hash of the variant)."""
    index = {r.id: i for i, r in enumerate(data.records)}
    paired, gated, unpaired = [], [], []
    for k in members:
        v = data.variants[k]
        if not originals_ok[index[v.of]]:
            unpaired.append(k)
        elif queries_ok[k]:
            paired.append(k)
        elif v.record.id in gated_ids:
            gated.append(k)
        else:
            unpaired.append(k)
    return paired, gated, unpaired


def positive_pairs(
    data: Dataset,
    originals: npt.NDArray[np.uint8],
    originals_ok: npt.NDArray[np.bool_],
    hashed: HashedCorpus,
    a: int,
    algo: Any,
) -> dict[str, tuple[list[int], int]]:
    """Per row name, algorithm ``algo``'s (column ``a`` of ``hashed``) distances of the paired
    variants to their own original and the number gated: the evidence ``threshold`` scores the
    variants with (:attr:`harness.thresholds.Evidence.variants`)."""
    from harness import kernels

    index = {r.id: i for i, r in enumerate(data.records)}
    gated_ids = {e["image"] for e in hashed.exclusions if e["algorithm"] == algo.id}
    out = {}
    for kind in sorted({v.kind for v in data.variants}):
        members = [k for k, v in enumerate(data.variants) if v.kind == kind]
        paired, gated, _ = _pair_up(data, members, originals_ok, hashed.ok[a][0], gated_ids)
        q = np.array(paired, dtype=np.int64)
        of = np.array([index[data.variants[k].of] for k in paired], dtype=np.int64)
        dist = kernels.hamming(hashed.packed[a][0][q], originals[of], algo.metric())
        out[row_name(kind)] = (dist.tolist(), len(gated))
    return out


def add(
    result: dict[str, Any],
    suite: Suite,
    data: Dataset,
    corpus: HashedCorpus,
    hashed: HashedCorpus,
) -> None:
    """Add the ``variants`` section to ``result``; the variants' failures and exclusions join
    the run's lists, marked with ``variant_of`` and the row's name (``transform``), and the
    failures count in the run's ``status``."""
    of = {v.record.id: v for v in data.variants}
    # New lists: the document's may be the corpus's own.
    result["failures"] = [
        *result["failures"],
        *(
            {**f, "transform": row_name(of[f["image"]].kind), "variant_of": of[f["image"]].of}
            for f in hashed.failures
        ),
    ]
    result["exclusions"] = [
        *result["exclusions"],
        *(
            {**e, "transform": row_name(of[e["image"]].kind), "variant_of": of[e["image"]].of}
            for e in hashed.exclusions
        ),
    ]
    _count_failures(result["status"], result["dataset"]["images"], data, hashed)
    from harness.metrics import undefined_as_status

    with undefined_as_status():
        result["variants"] = evaluate(suite, data, corpus, hashed, result)
    board = result.get("leaderboard")
    if board:
        _on_leaderboard(board, result["variants"]["rows"])


def _count_failures(
    status: dict[str, Any],
    images: list[dict[str, Any]],
    data: Dataset,
    hashed: HashedCorpus,
) -> None:
    """A variant that cannot be read fails like an original: it counts in ``status``'s
    failure rate (over the originals considered plus the variants) and its verdict."""
    failed = len({f["image"] for f in hashed.failures})
    considered = sum(1 for i in images if i["status"] != "excluded") + len(data.variants)
    status["images_failed"] += failed
    status["variants_failed"] = failed
    status["failure_rate"] = status["images_failed"] / considered if considered else 0.0
    status["ok"] = status["failure_rate"] <= status["max_failure_rate"]


def _on_leaderboard(board: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Each leaderboard row gains its algorithm's variant TPR per row name at the board's
    threshold (the ``chosen`` entry of the board's target), beside the families' TPR."""
    for entry in board["rows"]:
        entry["variants"] = {
            r["transform"]: next(
                (c["tpr"] for c in r["chosen"] if c["target_fpr"] == board["target_fpr"]), None
            )
            for r in rows
            if r["algorithm"] == entry["algorithm"]
        }


def _groups(data: Dataset, result: dict[str, Any]) -> npt.NDArray[np.int64]:
    """The run's group label per original: declared groups, merged as corpus hygiene merged
    near duplicates (read from the results document, never recomputed)."""
    index = {r.id: i for i, r in enumerate(data.records)}
    first: dict[str, int] = {}
    groups = np.array(
        [first.setdefault(r.group, i) if r.group else i for i, r in enumerate(data.records)],
        dtype=np.int64,
    )
    near = (result.get("hygiene") or {}).get("near_duplicates") or {}
    for members in near.get("groups", []):
        rows = [index[m] for m in members]
        groups[rows] = min(rows)
    return groups


def _metric(name: str, params: dict[str, Any], value: Any) -> dict[str, Any]:
    return {"name": name, "params": params, **value.to_dict()}


def evaluate(
    suite: Suite,
    data: Dataset,
    corpus: HashedCorpus,
    hashed: HashedCorpus,
    result: dict[str, Any],
) -> dict[str, Any]:
    """The ``variants`` section: one row per algorithm and kind (pure; see the module doc).

    ``corpus`` holds the originals' hashes of the run, ``hashed`` the variants' (one column,
    in ``data.variants`` order), ``result`` the evaluated document (image status, groups).
    """
    # Long: each row's positives and its three negative protocols are built side by side from
    # the same masks; splitting it per protocol is a worthwhile next step.
    from harness import kernels, pairs
    from harness.metrics import histogram, rate_at, summary

    status = {i["id"]: i["status"] for i in result["dataset"]["images"]}
    index = {r.id: i for i, r in enumerate(data.records)}
    # Originals that take part in any pair: decoded and not an exact duplicate.
    included = corpus.decoded & np.array([status[r.id] != "duplicate" for r in data.records])
    groups = _groups(data, result)
    variants = data.variants
    original = np.array([index[v.of] for v in variants], dtype=np.int64)
    failed = {f["image"]: f.get("error", f.get("stage", "failed")) for f in hashed.failures}
    kinds = sorted({v.kind for v in variants})
    targets = {r["algorithm"]: r["targets"] for r in result.get("recommendations", [])}
    rows = []
    for a, algo in enumerate(suite.algorithms):
        n_bits, metric_a, thresholds = algo.n_levels, algo.metric(), suite.thresholds[algo.id]
        originals = corpus.packed[a][0]
        originals_ok = corpus.ok[a][0] & included
        refs = np.flatnonzero(originals_ok)
        queries, queries_ok = hashed.packed[a][0], hashed.ok[a][0]
        gated_ids = {e["image"] for e in hashed.exclusions if e["algorithm"] == algo.id}
        for kind in kinds:
            members = [k for k, v in enumerate(variants) if v.kind == kind]
            paired, gated, left = _pair_up(data, members, originals_ok, queries_ok, gated_ids)
            unpaired = [
                {
                    "variant": variants[k].record.id,
                    "original": variants[k].of,
                    "reason": f"original not evaluated ({status[variants[k].of]})"
                    if not originals_ok[original[k]]
                    else f"variant not hashed: {failed.get(variants[k].record.id, 'no hash')}",
                }
                for k in left
            ]
            q = np.array(paired, dtype=np.int64)
            dist = kernels.hamming(queries[q], originals[original[q]], metric_a)
            pos = histogram(dist, n_bits)
            neg = {
                "edited_vs_other_originals": kernels.cross_histogram(
                    queries[q],
                    originals[refs],
                    n_bits,
                    query_groups=groups[original[q]],
                    reference_groups=groups[refs],
                    metric=metric_a,
                ),
                "edited_vs_edited": kernels.all_pairs_histogram(
                    queries[q], n_bits, groups[original[q]], metric=metric_a
                ),
                "nearest_impostor": pairs.nearest_impostor_histogram(
                    kernels.nearest_impostor(
                        queries[q],
                        originals[refs],
                        groups[original[q]],
                        groups[refs],
                        metric=metric_a,
                    )[0],
                    n_bits,
                ),
            }
            metrics = [
                _metric("tpr", {"threshold": th}, rate_at(pos, th, len(gated))) for th in thresholds
            ]
            if gated:
                metrics += [
                    _metric("tpr_hashed", {"threshold": th}, rate_at(pos, th)) for th in thresholds
                ]
            metrics += [
                _metric("fpr", {"threshold": th, "protocol": p}, rate_at(h, th))
                for p, h in neg.items()
                for th in thresholds
            ]
            found = [
                {"variant": variants[k].record.id, "original": variants[k].of, "distance": d}
                for k, d in zip(paired, dist.tolist(), strict=True)
            ]
            rows.append(
                {
                    "algorithm": algo.id,
                    "transform": row_name(kind),
                    "kind": kind or None,
                    "n_bits": n_bits,
                    "positives": {
                        "n": int(pos.sum()),
                        "hist": pos.tolist(),
                        "summary": summary(pos),
                        "pairs": found,
                        "gated": [variants[k].record.id for k in gated],
                        "unpaired": unpaired,
                    },
                    "negatives": {
                        p: {"n": int(h.sum()), "hist": h.tolist(), "summary": summary(h)}
                        for p, h in neg.items()
                    },
                    "metrics": metrics,
                    # At the thresholds chosen without any variant (see the module doc).
                    "chosen": [
                        {
                            "target_fpr": t["target_fpr"],
                            "threshold": t["threshold"],
                            "status": t["status"],
                            "tpr": rate_at(pos, t["threshold"], len(gated)).to_dict(),
                        }
                        for t in targets.get(algo.id, [])
                    ],
                    "misses": sorted(
                        (m for m in found if m["distance"] > thresholds[0]),
                        key=lambda m: (-m["distance"], m["variant"]),
                    ),
                }
            )
    images = [
        {
            "id": v.record.id,
            "variant_of": v.of,
            "kind": v.kind or None,
            "sha256": hashed.sha256[k],
            "width": size[0] if (size := hashed.sizes[k]) else None,
            "height": size[1] if size else None,
        }
        for k, v in enumerate(variants)
    ]
    return {"note": NOTE, "images": images, "rows": rows}


def rows(result: Results) -> list[VariantRow]:
    """The variant rows of a results document (none for a dataset without variants)."""
    return list(result.variants.rows) if result.variants else []


def compare_rows(a: Any, b: Any, alpha: float, mcnemar: Any) -> list[dict[str, Any]]:
    """Paired McNemar tests per variant row of two contenders (see :mod:`harness.compare`),
    paired by variant file."""

    def matched(c: Any) -> dict[str, dict[str, bool]]:
        out: dict[str, dict[str, bool]] = {}
        for r in rows(c.result):
            if r.algorithm != c.algorithm:
                continue
            hits = {m.variant: m.distance <= c.threshold for m in r.positives.pairs}
            hits.update(dict.fromkeys(r.positives.gated, False))
            out[r.transform] = hits
        return out

    mine, theirs = matched(a), matched(b)
    out = []
    for name in mine:
        ids = sorted(set(mine[name]) | set(theirs.get(name, {})))
        test = mcnemar([mine[name].get(i) for i in ids], [theirs.get(name, {}).get(i) for i in ids])
        out.append({"transform": name, **test, "significant": test["p_value"] < alpha})
    return out
