"""A run from end to end: dataset -> hashing pass -> evaluation -> the results document.

The orchestration lives here (opening the dataset, the progress line, the cache, the worker pool,
the ``run`` block); :mod:`harness.evaluate` is the pure part that turns hashed columns into the
results document. Writing the files is :mod:`harness.results`' and the CLI's.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from datasets_benign import Dataset, open_dataset
from datasets_benign.base import configured
from harness import variants
from harness.algorithms import HashAlgorithm
from harness.columns import Columns
from harness.evaluate import (
    algorithm_hashes,
    corpus_hygiene,
    evaluate,
    included_images,
)
from harness.progress import Progress
from harness.result_model import Results
from harness.results import from_builtins, new_run_id
from harness.runner import HashedCorpus, hash_corpus
from harness.suite import Suite
from harness.summaries import gallery
from harness.thresholds import Evidence, split_images

#: What the run block's cost figures measure.
COST_UNIT = (
    "CPU time of one hash call (one image, one algorithm) in the worker that made it, "
    "external hashers' child processes included; hashes per CPU-second = calls / CPU seconds"
)
NOT_MEASURED = "not measured (cached)"


def hash_suite(
    suite: Suite,
    dataset: str | None,
    workers: int,
    quiet: bool,
    store: Any = None,
    executor: Any = None,
) -> tuple[Dataset, HashedCorpus, Progress]:
    """Open the suite's dataset (or ``dataset``) and run the hashing pass over it."""
    data = configured(
        open_dataset(dataset or suite.dataset, decode=suite.decode), suite.max_side, suite.group_by
    )
    progress = Progress(len(data.records), quiet)
    with progress.running():
        corpus = hash_corpus(
            data,
            suite.transforms,
            suite.algorithms,
            seed=suite.seed,
            workers=workers,
            on_image=progress.step,
            store=store,
            executor=executor,
            escape=tuple(suite.thresholds[a.id][0] for a in suite.algorithms),
        )
    return data, corpus, progress


def run_suite(
    suite: Suite,
    *,
    dataset: str | None = None,
    workers: int = 1,
    quiet: bool = False,
    store: Any = None,
    executor: Any = None,
) -> Results:
    """Open the dataset, hash everything (through the cache ``store`` when given, on the Dask
    ``executor`` when given), evaluate; returns the typed document (validated)."""
    started = time.monotonic()
    data, corpus, progress = hash_suite(suite, dataset, workers, quiet, store, executor)
    result = evaluate(suite, data, corpus, on_algorithm=progress.note)
    variants.attach(result, suite, data, corpus, workers=workers, store=store)
    result["gallery"] = gallery(result, thumbnail_lookup(suite, corpus))
    result["run"] = run_block(
        started=started, workers=workers, store=store, cost=cost(suite, corpus)
    )
    return from_builtins(result)


def run_block(
    *,
    started: float | None = None,
    workers: int | None = None,
    store: Any = None,
    cost: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """How a run was executed (the ``run`` block): excluded from every comparison of results.

    ``started`` is the :func:`time.monotonic` at its start; ``extra`` (e.g. ``scored_from``)
    is added as given."""
    block: dict[str, Any] = {
        "id": new_run_id(),
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if started is not None:
        block["elapsed_s"] = round(time.monotonic() - started, 3)
    if workers is not None:
        block["workers"] = workers
    block.update(extra)
    if cost is not None:
        block["cost"] = cost
    if store is not None:
        # Cached values that failed their checksum (recomputed, never used) and damage found.
        block["cache"] = {"path": str(store.path), "faults": list(store.faults)}
    return block


def cost(suite: Suite, corpus: HashedCorpus) -> dict[str, Any]:
    """Per algorithm: CPU milliseconds per hash call (median, p95) and hashes per CPU-second,
    over the calls this run made; "not measured (cached)" when every hash came from the cache."""
    rows = []
    for algo, seconds in zip(suite.algorithms, corpus.cpu, strict=True):
        row: dict[str, Any] = {"algorithm": algo.id, "n": len(seconds)}
        if len(seconds) == 0:
            status = NOT_MEASURED if corpus.hashes_computed == 0 else "not measured (no hash made)"
            rows.append({**row, "status": status})
            continue
        median, p95 = np.percentile(seconds, [50, 95]) * 1e3
        total = float(seconds.sum())
        rows.append(
            {
                **row,
                "status": "measured",
                "median_ms": round(float(median), 3),
                "p95_ms": round(float(p95), 3),
                "hashes_per_cpu_s": round(len(seconds) / total, 1) if total > 0 else None,
            }
        )
    return {"unit": COST_UNIT, "algorithms": rows}


def thumbnail_lookup(suite: Suite, corpus: HashedCorpus) -> Any:
    """``thumbnail(image id, column name) -> data URI or None`` over the hashing pass's
    thumbnails, for :func:`harness.summaries.gallery`."""
    row = {image_id: i for i, image_id in enumerate(corpus.image_ids)}
    column = Columns.of(suite.transforms).index()
    thumbnails = corpus.thumbnails

    def thumbnail(image_id: str, name: str) -> str | None:
        if thumbnails is None or image_id not in row or name not in column:
            return None
        return thumbnails.get(row[image_id], column[name])

    return thumbnail


def threshold_evidence(
    suite: Suite,
    algorithm: HashAlgorithm,
    *,
    protocol: str = "originals_all_pairs",
    dataset: str | None = None,
    workers: int = 1,
    quiet: bool = False,
    store: Any = None,
) -> tuple[Evidence, dict[str, Any]]:
    """Hash the suite's corpus and edits for ``algorithm`` (through the cache ``store`` when
    given) and return its per-image evidence with a description of where it came from.

    Only ``algorithm`` (and the suite's near-duplicate algorithm, for hygiene) is hashed; the
    split and hygiene settings are the suite's, so the answer is the run's.
    """
    algos = [algorithm]
    near = suite.near_duplicates
    if near is not None:  # hygiene needs the near-duplicate check's hashes too
        needed = {near.algorithm, near.confirm_algorithm} - {algorithm.id, None}
        algos += [a for a in suite.algorithms if a.id in needed]
    # An algorithm the suite does not list is hashed all the same, at its usual operating point.
    own = suite.thresholds.get(algorithm.id, (algorithm.default_threshold().bits,))
    suite = dataclasses.replace(
        suite, algorithms=tuple(algos), thresholds={**suite.thresholds, algorithm.id: own}
    )
    data, corpus, _ = hash_suite(suite, dataset, workers, quiet, store)
    included, dupes = included_images(corpus)
    groups, hygiene = corpus_hygiene(suite, corpus, included, dupes, data)
    calibration = split_images(corpus.image_ids, suite.calibration_fraction, suite.seed)
    hashes = algorithm_hashes(suite, corpus, 0, included, groups)
    context: dict[str, Any] = {
        "algorithm": {
            **algorithm.fingerprint(),
            "n_bits": algorithm.n_levels,
            "level_unit": algorithm.level_unit,
        },
        "suite": {"name": suite.name, "version": suite.version},
        "dataset": {
            "name": data.name,
            "decode": data.decode,
            "n_images": len(data.records),
            "n_evaluated": int(included.sum()),
        },
        "source": "hashes (cache: " + ("on" if store is not None else "off") + ")",
        "hashes_computed": corpus.hashes_computed,
        "hygiene": hygiene,
        "failures": corpus.failures,
    }
    real = None
    if data.variants:  # scored at the answer, never part of choosing it
        only = dataclasses.replace(suite, algorithms=(algorithm,))
        hashed = variants.hash_variants(only, data, workers=workers, store=store)
        real = variants.positive_pairs(
            data, hashes.originals, hashes.originals_ok, hashed, 0, algorithm
        )
        context["hashes_computed"] += hashed.hashes_computed
    evidence = dataclasses.replace(
        hashes.evidence(calibration, protocol),
        uploads=included,
        hashable=hashes.originals_ok,
        variants=real,
    )
    return evidence, context


__all__ = ["cost", "hash_suite", "run_block", "run_suite", "threshold_evidence"]
