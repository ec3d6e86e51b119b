"""Hashes -> pairs -> metrics: build the results document of a run.

:func:`run_suite` is the whole pipeline; :func:`evaluate` is the pure part that turns hashed
arrays into the results dict (see :mod:`harness.results` for the schema).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from datasets_benign import Dataset, open_dataset
from datasets_benign.base import sha256_json
from harness import __version__, kernels, pairs
from harness.env import environment
from harness.metrics import histogram, rate_at, summary, sweep
from harness.results import SCHEMA_VERSION
from harness.runner import HashedCorpus, Progress, hash_corpus
from harness.suite import Suite

#: Closest colliding pairs and worst escaped edits listed per algorithm / cell for review.
REVIEW_LIMIT = 20


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


def evaluate(suite: Suite, dataset: Dataset, corpus: HashedCorpus) -> dict[str, Any]:
    """Compute every histogram and metric of a run from its hashes (deterministic)."""
    ids = corpus.image_ids
    dupes = _duplicates(corpus)
    included = corpus.decoded.copy()
    included[list(dupes)] = False
    failed_images = {f["image"] for f in corpus.failures}

    images = []
    for i, record in enumerate(dataset.records):
        status = "failed" if record.id in failed_images else "ok"
        if i in dupes:
            status = "duplicate"
        size = corpus.sizes[i]
        images.append(
            {
                **record.to_dict(),
                "sha256": corpus.sha256[i],
                "width": size[0] if size else None,
                "height": size[1] if size else None,
                "status": status,
            }
        )
    excluded = list(dataset.excluded) + [
        {"id": ids[i], "reason": f"exact pixel duplicate of {ids[j]}"} for i, j in dupes.items()
    ]

    cells: list[dict[str, Any]] = []
    collisions: list[dict[str, Any]] = []
    sweeps: list[dict[str, Any]] = []
    for a, algo in enumerate(suite.algorithms):
        n_bits = algo.n_bits
        thresholds = suite.thresholds[algo.id]
        originals = corpus.packed[a][0]
        originals_ok = corpus.ok[a][0] & included
        usable_index = np.flatnonzero(originals_ok)

        orig_hist = pairs.originals_all_pairs(originals, originals_ok, n_bits)
        closest = kernels.pairs_within(originals[originals_ok], max(thresholds), REVIEW_LIMIT)
        collisions.append(
            {
                "algorithm": algo.id,
                "protocol": "originals_all_pairs",
                "n_bits": n_bits,
                "n_images": int(originals_ok.sum()),
                "n_pairs": int(orig_hist.sum()),
                "hist": orig_hist.tolist(),
                "summary": summary(orig_hist),
                "metrics": [_metric("fpr", t, rate_at(orig_hist, t)) for t in thresholds],
                "closest_pairs": [
                    {"a": ids[usable_index[i]], "b": ids[usable_index[j]], "distance": d}
                    for i, j, d in closest
                ],
            }
        )

        pooled_pos = np.zeros(n_bits + 1, dtype=np.int64)
        pooled_neg = np.zeros(n_bits + 1, dtype=np.int64)
        for t, chain in enumerate(suite.transforms):
            edited = corpus.packed[a][1 + t]
            edited_ok = corpus.ok[a][1 + t] & included
            both = edited_ok & originals_ok
            dist = pairs.positive_distances(originals, edited, both)
            pos_hist = histogram(dist, n_bits)
            neg_hist = pairs.edited_vs_other_originals(
                originals, originals_ok, edited, edited_ok, n_bits
            )
            per_image: list[int | None] = [None] * len(ids)
            for i, d in zip(np.flatnonzero(both).tolist(), dist.tolist(), strict=True):
                per_image[i] = d
            default = thresholds[0]
            misses = sorted(
                ((d, ids[i]) for i, d in enumerate(per_image) if d is not None and d > default),
                reverse=True,
            )[:REVIEW_LIMIT]
            cells.append(
                {
                    "algorithm": algo.id,
                    "transform": chain.id,
                    "n_bits": n_bits,
                    "positives": {
                        "n": int(pos_hist.sum()),
                        "hist": pos_hist.tolist(),
                        "summary": summary(pos_hist),
                        "distances": per_image,
                    },
                    "negatives": {
                        "protocol": "edited_vs_other_originals",
                        "n": int(neg_hist.sum()),
                        "hist": neg_hist.tolist(),
                        "summary": summary(neg_hist),
                    },
                    "metrics": [_metric("tpr", th, rate_at(pos_hist, th)) for th in thresholds]
                    + [_metric("fpr", th, rate_at(neg_hist, th)) for th in thresholds],
                    "misses": [{"image": i, "distance": d} for d, i in misses],
                }
            )
            if chain.id != "identity":
                pooled_pos += pos_hist
                pooled_neg += neg_hist
        sweeps.append(
            {
                "algorithm": algo.id,
                "n_bits": n_bits,
                "positives": "all edits pooled (identity excluded)",
                "negatives": "originals_all_pairs",
                "rows": sweep(pooled_pos, orig_hist, range(n_bits + 1)),
                "edited_vs_other_originals": [
                    rate_at(pooled_neg, th).to_dict() for th in range(n_bits + 1)
                ],
            }
        )

    n_images = len(ids)
    failure_rate = len(failed_images) / n_images if n_images else 0.0
    return {
        "schema_version": SCHEMA_VERSION,
        "harness_version": __version__,
        "suite": {
            "name": suite.name,
            "version": suite.version,
            "description": suite.description,
            "config": dict(suite.config),
            "config_sha256": suite.config_sha256,
        },
        "dataset": {
            "name": dataset.name,
            "manifest_sha256": dataset.manifest_sha256,
            "content_sha256": sha256_json([[i["id"], i["sha256"]] for i in images]),
            "n_images": n_images,
            "n_evaluated": int(included.sum()),
            "images": images,
            "excluded": excluded,
        },
        "environment": environment(),
        "seed": suite.seed,
        "algorithms": [
            {
                **algo.fingerprint(),
                "n_bits": algo.n_bits,
                "distance": algo.distance,
                "thresholds": list(suite.thresholds[algo.id]),
                "operating_thresholds": [
                    {"bits": o.bits, "source": o.source} for o in algo.operating_thresholds()
                ],
            }
            for algo in suite.algorithms
        ],
        "transforms": [
            {"id": c.id, "version": c.version, "intensity": c.intensity, "steps": c.to_list()}
            for c in suite.transforms
        ],
        "protocols": dict(pairs.PROTOCOLS),
        "cells": cells,
        "collisions": collisions,
        "sweeps": sweeps,
        "failures": corpus.failures,
        "status": {
            "images_failed": len(failed_images),
            "failure_rate": failure_rate,
            "max_failure_rate": suite.max_failure_rate,
            "ok": failure_rate <= suite.max_failure_rate,
        },
    }


def _metric(name: str, threshold: int, value: Any) -> dict[str, Any]:
    return {"name": name, "params": {"threshold": threshold}, **value.to_dict()}


def run_suite(
    suite: Suite, *, dataset: str | None = None, workers: int = 1, quiet: bool = False
) -> dict[str, Any]:
    """Open the dataset, hash everything, evaluate; the returned dict is ready for JSON."""
    started = time.monotonic()
    data = open_dataset(dataset or suite.dataset)
    progress = Progress(len(data.records), quiet)
    corpus = hash_corpus(
        data,
        suite.transforms,
        suite.algorithms,
        seed=suite.seed,
        workers=workers,
        on_image=progress.step,
    )
    result = evaluate(suite, data, corpus)
    # How the run was executed: excluded from every comparison of results.
    result["run"] = {
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": round(time.monotonic() - started, 3),
        "workers": workers,
    }
    return result


__all__ = ["evaluate", "run_suite"]
