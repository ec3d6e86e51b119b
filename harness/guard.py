"""CI guard: compare a run with a committed baseline, metric by metric, direction-aware.

A baseline is a compact, schema-versioned document: the suite (name, version, configuration,
effective thresholds), the dataset's content hash, the environment fingerprint, and every rate
of the run with its count, its 95% interval and - for true-match rates - each image's outcome.
:func:`check` classifies each metric:

``worse`` / ``better``
    moved in the bad / good direction (TPR down or FPR up is bad) by more than ``tolerance``
    *and* significant after a multiplicity correction (the rule below).
``changed``
    moved, but not beyond both bars (or a row too small to be judged alone): reported, never a
    failure.
``unchanged``, ``missing`` (in the baseline, not in the run: a failure), ``new``; ``not run``
    for the rates a run narrowed with ``run --transforms`` did not measure (the left-out edits'
    cells, the collisions pooled over every edit): listed, never a failure. Real variant rows
    (manifest ``variant_of``) are counted apart (``variant_counts``).

The rule. A *family* is every row of one algorithm in one check. Each row with ``n >=
MIN_N`` gets an exact test: for a true-match rate, an exact paired (McNemar sign) test by image
- images that stopped matching against images that started; for a false-match rate, the exact
conditional binomial test of the two counts (the pairs are the same on both sides, so ignoring
the pairing is conservative). Rows below ``MIN_N`` cannot fail alone; per algorithm, their
per-image changes are summed and enter one pooled paired sign test by image, which is a row of
the family like any other. Within each family Holm's step-down procedure with Tarone's
refinement for discrete tests controls the familywise error rate at ``alpha``, separately for
each direction: a row whose exact test could not reach significance at all (no image changed)
does not count towards the correction.

Comparing different suite versions or different image sets is refused (exit 2): the numbers would
not mean the same thing; so is a suite whose configuration changed without a version bump, with
a readable diff. Different library versions are allowed and named in the summary, since that
is exactly the upgrade a guard is for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from scipy.stats import binom

from harness import variants
from harness.core.errors import HarnessError
from harness.env import environment_differences
from harness.metrics import rate
from harness.result_model import Metric, Results
from harness.results import IncomparableError, check_comparable

BASELINE_KIND = "hash-harness baseline"
BASELINE_SCHEMA = 2
DEFAULT_TOLERANCE = 0.01
DEFAULT_ALPHA = 0.05
#: Rows with fewer trials than this cannot fail alone; they enter their algorithm's pooled test.
MIN_N = 10

#: Rates where higher is better; every other rate is a false-match rate (lower is better).
HIGHER_IS_BETTER = {"tpr", "tpr_hashed"}
#: Suite keys that do not change any number (a description edit is not drift).
_NOT_DRIFT = {"name", "version", "description", "thresholds"}


#: The two documents cannot be compared (different suite version, images, schema); the
#: exception ``compare`` raises too, from the one check both use.
UnusableInputError = IncomparableError


def _outcomes(
    distances: list[int | None], threshold: int, keep: list[bool], gated: list[bool]
) -> str:
    """Per-image outcome of a true-match row: 1 matched, 0 missed (a gated copy too: the
    platform cannot match a discarded hash), - not in the row."""
    return "".join(
        "-" if not k else "0" if g else "-" if d is None else "1" if d <= threshold else "0"
        for d, k, g in zip(distances, keep, gated, strict=True)
    )


def _metrics(result: Results) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every rate of a results document under a stable, readable key, with its family
    (algorithm) and, for true-match rates, the per-image outcomes."""
    images = result.dataset.images
    categories = [i.category or "uncategorised" for i in images]
    for cell in result.cells:
        distances = cell.positives.distances or None
        gated_ids = set(cell.positives.gated)
        for m in cell.metrics:
            extra = ",".join(f"{k}={v}" for k, v in sorted(m.params.items()))
            key = f"{m.name} | {cell.algorithm} | {cell.transform} | {extra}"
            entry = _entry(m, cell.algorithm)
            if m.name in HIGHER_IS_BETTER and distances is not None:
                category = m.params.get("category")
                keep = [category is None or c == category for c in categories]
                # tpr counts gated copies as misses; tpr_hashed leaves them out.
                gated = [m.name == "tpr" and i.id in gated_ids for i in images]
                entry["per_image"] = _outcomes(distances, m.threshold, keep, gated)
            yield key, entry
    for row in variants.rows(result):  # real variant pairs: per variant, not per image
        for m in row.metrics:
            extra = ",".join(f"{k}={v}" for k, v in sorted(m.params.items()))
            yield (
                f"{m.name} | {row.algorithm} | {row.transform} | {extra}",
                _entry(m, row.algorithm),
            )
    for coll in result.collisions:
        for m in coll.metrics:
            key = f"fpr | {coll.algorithm} | {coll.protocol} | threshold={m.threshold}"
            yield key, _entry(m, coll.algorithm)


#: Status of a baseline rate a narrowed run (``run --transforms``) did not measure.
NOT_RUN = "not run"


def _not_run(result: Results) -> Callable[[str], bool]:
    """Which metric keys a run narrowed with ``--transforms`` cannot judge: the cells of the
    edits it left out, and the collisions pooled over every edit (they pooled fewer edits).
    Refuses a run that added edits the suite does not have: the baseline has no such cells."""
    narrowed = result.suite.narrowed
    if not narrowed:
        return lambda key: False
    if narrowed.added:
        raise UnusableInputError(
            f"the results were run with {narrowed.option} naming edits suite "
            f"{result.suite.name!r} does not have ({', '.join(narrowed.added)}): a baseline of "
            "the suite has no such cells. Check a run of the suite's own transforms (or a subset "
            "of them), or add the edits to the suite, bump its version and recreate the baseline."
        )
    skipped = set(narrowed.not_run)
    skipped |= {c.protocol for c in result.collisions if c.pooled_over} if skipped else set()
    return lambda key: len(parts := key.split(" | ")) > 2 and parts[2] in skipped


def is_variant(key: str) -> bool:
    """Whether a metric key is a real variant row's (``tpr | phash | variant_of:x | ...``)."""
    parts = key.split(" | ")
    return len(parts) > 2 and parts[2].split(":")[0] == variants.ROW


def _entry(m: Metric, family: str) -> dict[str, Any]:
    return {"name": m.name, "family": family, "k": m.k, "n": m.n, "value": m.value, "ci95": m.ci95}


def create_baseline(result: Results) -> dict[str, Any]:
    """The baseline document of a results document (refused for a run narrowed with
    ``run --transforms``: a baseline stands for the whole suite)."""
    if result.suite.narrowed:
        raise UnusableInputError(
            f"the results were run with {result.suite.narrowed.option}, not the whole suite "
            f"{result.suite.name!r}: create the baseline from a run without it."
        )
    return {
        "kind": BASELINE_KIND,
        "baseline_schema": BASELINE_SCHEMA,
        "harness_version": result.harness_version,
        "suite": {
            **msgspec.to_builtins(result.suite),
            "thresholds": {a.id: a.thresholds for a in result.algorithms},
        },
        "dataset": {
            "name": result.dataset.name,
            "content_sha256": result.dataset.content_sha256,
            "n_evaluated": result.dataset.n_evaluated,
            "images": [i.id for i in result.dataset.images],
        },
        "environment": result.environment,
        "metrics": dict(_metrics(result)),
    }


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read a baseline file, or a committed baseline by name (``"ci"``)."""
    from harness.data import resolve
    from harness.results import load_document

    data = load_document(
        resolve(path, "baseline", UnusableInputError),
        kind=BASELINE_KIND,
        schema_key="baseline_schema",
        schema=BASELINE_SCHEMA,
        create="hash-harness baseline create",
        error=UnusableInputError,
    )
    if data["baseline_schema"] < BASELINE_SCHEMA:
        # Version 1 kept only counts: the paired tests need each image's outcome.
        raise UnusableInputError(
            f"{path} has baseline_schema {data['baseline_schema']}, which lacks the per-image "
            "outcomes the paired tests need: recreate it with `hash-harness baseline create`."
        )
    return data


# --- configuration drift -------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return json.dumps(value) if not isinstance(value, str) else value


def config_diff(
    baseline_suite: dict[str, Any], config: dict[str, Any], thresholds: dict[str, list[int]]
) -> list[str]:
    """Readable differences between the baseline's suite and a run's suite ``config`` and
    effective ``thresholds`` per algorithm ("phash threshold 10 -> 6", "transforms: added
    'crop@S3'"); empty when nothing that changes a number moved."""
    old, new = baseline_suite["config"], config
    lines = []
    for key in sorted((set(old) | set(new)) - _NOT_DRIFT):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, list) and isinstance(b, list) and all(isinstance(x, str) for x in a + b):
            parts = [f"added {x!r}" for x in b if x not in a]
            parts += [f"removed {x!r}" for x in a if x not in b]
            lines.append(f"{key}: " + (", ".join(parts) if parts else "reordered"))
        else:
            unset = "(unset)"
            lines.append(
                f"{key}: {unset if a is None else _show(a)} -> {unset if b is None else _show(b)}"
            )
    before = baseline_suite.get("thresholds", {})
    after = thresholds
    for algo in sorted(set(before) & set(after)):
        if before[algo] != after[algo]:
            word = "threshold" if len(before[algo]) == len(after[algo]) == 1 else "thresholds"
            lines.append(f"{algo} {word} {_show(before[algo])} -> {_show(after[algo])}")
    return lines


# --- tests ---------------------------------------------------------------------------------


def _sign_test(losses: int, gains: int) -> dict[str, float]:
    """Exact paired sign test: one-sided p-values for 'worse' (more losses than chance) and
    'better', and the smallest p-value either could reach with this many discordant images."""
    d = losses + gains
    return {
        "p_worse": float(binom.sf(losses - 1, d, 0.5)),
        "p_better": float(binom.sf(gains - 1, d, 0.5)),
        "min_p_worse": 0.5**d,
        "min_p_better": 0.5**d,
        "losses": losses,
        "gains": gains,
    }


def _paired(base: str, cur: str) -> tuple[int, int]:
    """(images that stopped matching, images that started) between two outcome strings."""
    losses = sum(a == "1" and b == "0" for a, b in zip(base, cur, strict=True))
    gains = sum(a == "0" and b == "1" for a, b in zip(base, cur, strict=True))
    return losses, gains


def _row_test(base: dict[str, Any], cur: dict[str, Any]) -> dict[str, float]:
    """Exact one-sided tests of one row in the 'worse' and 'better' directions."""
    if (
        "per_image" in base
        and "per_image" in cur
        and len(base["per_image"]) == len(cur["per_image"])
    ):
        losses, gains = _paired(base["per_image"], cur["per_image"])
        return _sign_test(losses, gains)
    # Two counts over the same pairs: given their total, the current count is binomial with
    # the current share of trials.
    kb, kc = base["k"], cur["k"]
    d, share = kb + kc, cur["n"] / (base["n"] + cur["n"])
    up = float(binom.sf(kc - 1, d, share))  # P(current count at least this high)
    down = float(binom.cdf(kc, d, share))
    higher_better = base["name"] in HIGHER_IS_BETTER
    out = {
        "p_worse": down if higher_better else up,
        "p_better": up if higher_better else down,
        "min_p_worse": (1 - share) ** d if higher_better else share**d,
        "min_p_better": share**d if higher_better else (1 - share) ** d,
    }
    return out


def holm_tarone(tests: dict[str, tuple[float, float]], alpha: float) -> tuple[set[str], int]:
    """Holm's step-down procedure with Tarone's refinement for discrete tests.

    ``tests`` maps a row to ``(p_value, smallest attainable p_value)``. At each step only the
    rows whose smallest attainable p-value is at most ``alpha / K`` count, for the smallest
    ``K`` that leaves at most ``K`` such rows (Tarone 1990; Hommel & Krummenauer 1998); the
    best of them is rejected if its p-value is at most ``alpha / K``. Returns the rejected rows
    and the number of rows that counted at the first step.
    """
    remaining = dict(tests)
    rejected: set[str] = set()
    first_k = 0
    while remaining:
        minima = sorted(m for _, m in remaining.values())
        k = next(k for k in range(1, len(minima) + 1) if sum(m <= alpha / k for m in minima) <= k)
        if not rejected:
            first_k = sum(m <= alpha / k for m in minima)
        testable = [r for r, (_, m) in remaining.items() if m <= alpha / k]
        if not testable:
            break
        best = min(testable, key=lambda r: (remaining[r][0], r))
        if remaining[best][0] > alpha / k:
            break
        rejected.add(best)
        del remaining[best]
    return rejected, first_k


def _pooled(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One algorithm's small rows as one paired test by image: each image's net change in
    matches summed over the rows, then a sign test over images."""
    rows = [r for r in rows if "per_image" in r["baseline"] and "per_image" in r["current"]]
    if not rows:
        return None
    width = len(rows[0]["baseline"]["per_image"])
    net = [0] * width
    for r in rows:
        for i, (a, b) in enumerate(
            zip(r["baseline"]["per_image"], r["current"]["per_image"], strict=True)
        ):
            if a != "-" and b != "-":
                net[i] += int(b == "1") - int(a == "1")
    totals = []
    for side in ("baseline", "current"):
        k, n = sum(r[side]["k"] for r in rows), sum(r[side]["n"] for r in rows)
        totals.append({"name": "tpr", "k": k, "n": n, **_value(k, n)})
    family = rows[0]["baseline"]["family"]
    return {
        "key": f"tpr | {family} | pooled: {len(rows)} rows with n < {MIN_N} | paired by image",
        "family": family,
        "pooled": len(rows),
        "baseline": totals[0],
        "current": totals[1],
        "test": _sign_test(sum(x < 0 for x in net), sum(x > 0 for x in net)),
    }


def _value(k: int, n: int) -> dict[str, Any]:
    if n == 0:
        return {"value": None, "ci95": [None, None]}
    r = rate(k, n)
    return {"value": r.value, "ci95": list(r.ci95)}


def check(
    result: Results,
    baseline: dict[str, Any],
    tolerance: float = DEFAULT_TOLERANCE,
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, Any]:
    """Compare ``result`` with ``baseline``; raises :class:`UnusableInputError` when they differ
    in what was measured (suite version, configuration, images)."""
    # Long: checks, per-row tests, pooled tests, the correction and the classification, in the
    # order the module docstring states the rule.
    if not 0.0 <= tolerance < 1.0:
        raise HarnessError(f"tolerance must be in [0, 1), got {tolerance}.")
    if not 0.0 < alpha < 1.0:
        raise HarnessError(f"alpha must be in (0, 1), got {alpha}.")
    config = dict(result.suite.config or {})
    not_run = _not_run(result)
    if result.suite.narrowed:  # judged as the whole suite, on the cells it has
        config["transforms"] = result.suite.narrowed.suite_transforms
    check_comparable(
        baseline,
        result,
        labels=("the baseline", "the results"),
        drift=config_diff(
            baseline["suite"], config, {a.id: a.thresholds for a in result.algorithms}
        ),
    )
    current = {k: v for k, v in _metrics(result) if not not_run(k)}
    rows: list[dict[str, Any]] = []
    for key, base in baseline["metrics"].items():
        cur = current.get(key)
        row: dict[str, Any] = {"key": key, "family": base["family"], "baseline": base}
        row["current"] = cur
        if not_run(key):
            row["status"] = NOT_RUN
        elif cur is None:
            row["status"] = "missing"
        elif min(base["n"], cur["n"]) < MIN_N:
            row["small"] = True
        else:
            row["test"] = _row_test(base, cur)
        rows.append(row)
    rows += [
        {"key": key, "family": cur["family"], "baseline": None, "current": cur, "status": "new"}
        for key, cur in current.items()
        if key not in baseline["metrics"]
    ]
    families = sorted({r["family"] for r in rows})
    for family in families:
        small = [r for r in rows if r["family"] == family and r.get("small")]
        pooled = _pooled([r for r in small if r["baseline"]["name"] == "tpr"])
        if pooled is not None:
            rows.append(pooled)
    summary = {"families": len(families), "rows_tested": 0, "pooled_tests": 0}
    for family in families:
        tested = [r for r in rows if r["family"] == family and "test" in r]
        summary["rows_tested"] += sum("pooled" not in r for r in tested)
        summary["pooled_tests"] += sum("pooled" in r for r in tested)
        significant = {}
        for side in ("worse", "better"):
            tests = {r["key"]: (r["test"][f"p_{side}"], r["test"][f"min_p_{side}"]) for r in tested}
            significant[side] = holm_tarone(tests, alpha)[0]
        for r in tested:
            r["significant"] = next(
                (side for side in ("worse", "better") if r["key"] in significant[side]), None
            )
    for r in rows:
        if "status" not in r:
            r["status"], r["delta"] = _classify(r, tolerance)
        else:
            r.setdefault("delta", None)
    order = ("worse", "missing", "better", "changed", "unchanged", "new", NOT_RUN)
    real = [is_variant(r["key"]) for r in rows]
    counts = {
        s: sum(r["status"] == s for r, v in zip(rows, real, strict=True) if not v) for s in order
    }
    # Real variant rows are counted apart from the synthetic edits and collisions.
    variant_counts = {
        s: sum(r["status"] == s for r, v in zip(rows, real, strict=True) if v) for s in order
    }
    return {
        "suite": msgspec.to_builtins(result.suite),
        "tolerance": tolerance,
        "alpha": alpha,
        "min_n": MIN_N,
        "tests": {
            **summary,
            "small_rows": sum(bool(r.get("small")) for r in rows),
            "pooled_rows": sum(r.get("pooled", 0) for r in rows),
        },
        "environment_differences": environment_differences(
            baseline["environment"], result.environment
        ),
        # What the counts count: the baseline's metrics, the run's new ones and the pooled
        # tests (one per algorithm with small rows), so they add up to more than the baseline.
        "judged": {
            "baseline_metrics": len(baseline["metrics"]),
            "new_metrics": sum(r["status"] == "new" for r in rows),
            "pooled_tests": summary["pooled_tests"],
        },
        "counts": counts,
        **(
            {"narrowed": msgspec.to_builtins(result.suite.narrowed)}
            if result.suite.narrowed
            else {}
        ),
        **({"variant_counts": variant_counts} if any(real) else {}),
        "regression": sum(c["worse"] + c["missing"] for c in (counts, variant_counts)) > 0,
        "rows": rows,
    }


def _classify(row: dict[str, Any], tolerance: float) -> tuple[str, float | None]:
    base, cur = row["baseline"], row["current"]
    same = base["k"] == cur["k"] and base["n"] == cur["n"]
    moved = not same or base.get("per_image") != cur.get("per_image")
    if "pooled" in row:
        moved = row["test"]["losses"] + row["test"]["gains"] > 0
    if not moved:
        return "unchanged", 0.0
    if base["value"] is None or cur["value"] is None:
        return "changed", None
    delta = cur["value"] - base["value"]
    side = row.get("significant")
    good = delta if base["name"] in HIGHER_IS_BETTER else -delta
    if side is not None and abs(delta) > tolerance and (good > 0) == (side == "better"):
        return side, delta
    return "changed", delta
