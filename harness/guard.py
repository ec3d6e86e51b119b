"""CI guard: compare a run with a committed baseline, metric by metric, direction-aware.

A baseline is a compact, schema-versioned document: the suite (name, version, configuration),
the dataset's content hash, the environment fingerprint, and every rate of the run with its count
and 95% interval. :func:`check` classifies each metric asv-style:

``worse`` / ``better``
    moved in the bad / good direction (TPR down or FPR up is bad) by more than ``tolerance``
    *and* out of the baseline's 95% interval - a change the sample can tell apart from noise.
``changed``
    moved, but within tolerance or within the interval: reported, never a failure.
``unchanged``, ``missing`` (in the baseline, not in the run: a failure), ``new``.

Comparing different suite versions or different image sets is refused (exit 2): the numbers would
not mean the same thing. Different library versions are allowed and named in the summary, since
that is exactly the upgrade a guard is for.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from harness.env import environment_differences
from harness.errors import HarnessError
from harness.report.markdown import code, esc

BASELINE_KIND = "hash-harness baseline"
BASELINE_SCHEMA = 1
DEFAULT_TOLERANCE = 0.01

#: Rates where higher is better; every other rate is a false-match rate (lower is better).
HIGHER_IS_BETTER = {"tpr"}


class UnusableInputError(HarnessError):
    """The two documents cannot be compared (different suite version, images, schema)."""


def _metrics(result: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every rate of a results document under a stable, readable key."""
    for cell in result["cells"]:
        for m in cell["metrics"]:
            extra = ",".join(f"{k}={v}" for k, v in sorted(m["params"].items()))
            key = f"{m['name']} | {cell['algorithm']} | {cell['transform']} | {extra}"
            yield key, m
    for coll in result["collisions"]:
        for m in coll["metrics"]:
            threshold = m["params"]["threshold"]
            yield f"fpr | {coll['algorithm']} | {coll['protocol']} | threshold={threshold}", m


def _entry(name: str, m: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "k": m["k"], "n": m["n"], "value": m["value"], "ci95": m["ci95"]}


def create_baseline(result: dict[str, Any]) -> dict[str, Any]:
    """The baseline document of a results document."""
    return {
        "kind": BASELINE_KIND,
        "baseline_schema": BASELINE_SCHEMA,
        "harness_version": result["harness_version"],
        "suite": result["suite"],
        "dataset": {
            "name": result["dataset"]["name"],
            "content_sha256": result["dataset"]["content_sha256"],
            "n_evaluated": result["dataset"]["n_evaluated"],
        },
        "environment": result["environment"],
        "metrics": {key: _entry(m["name"], m) for key, m in _metrics(result)},
    }


def load_baseline(path: str | Path) -> dict[str, Any]:
    from harness.results import load_document

    return load_document(
        path,
        kind=BASELINE_KIND,
        schema_key="baseline_schema",
        schema=BASELINE_SCHEMA,
        create="hash-harness baseline create",
        error=UnusableInputError,
    )


def _classify(base: dict[str, Any], cur: dict[str, Any], tolerance: float) -> tuple[str, float]:
    if base["k"] == cur["k"] and base["n"] == cur["n"]:
        return "unchanged", 0.0
    if base["value"] is None or cur["value"] is None:
        return "changed", math.nan
    delta = cur["value"] - base["value"]
    good = delta if base["name"] in HIGHER_IS_BETTER else -delta
    lo, hi = base["ci95"]
    outside = not (lo - 1e-12 <= cur["value"] <= hi + 1e-12)
    if abs(delta) > tolerance and outside:
        return ("better" if good > 0 else "worse"), delta
    return "changed", delta


def check(
    result: dict[str, Any], baseline: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE
) -> dict[str, Any]:
    """Compare ``result`` with ``baseline``; raises :class:`UnusableInputError` when they differ
    in what was measured."""
    if not 0.0 <= tolerance < 1.0:
        raise HarnessError(f"tolerance must be in [0, 1), got {tolerance}.")
    bs, rs = baseline["suite"], result["suite"]
    if (bs["name"], bs["version"]) != (rs["name"], rs["version"]):
        raise UnusableInputError(
            f"The baseline is for suite {bs['name']!r} v{bs['version']} but the results are for "
            f"{rs['name']!r} v{rs['version']}: recreate the baseline for the new suite version."
        )
    if baseline["dataset"]["content_sha256"] != result["dataset"]["content_sha256"]:
        raise UnusableInputError(
            "The baseline was measured on different images (dataset content sha256 differs): "
            "run on the baseline's dataset or recreate the baseline."
        )
    current = {key: _entry(m["name"], m) for key, m in _metrics(result)}
    rows = []
    for key, base in baseline["metrics"].items():
        if key not in current:
            rows.append(
                {"key": key, "status": "missing", "baseline": base, "current": None, "delta": None}
            )
            continue
        status, delta = _classify(base, current[key], tolerance)
        rows.append(
            {
                "key": key,
                "status": status,
                "baseline": base,
                "current": current[key],
                "delta": None if math.isnan(delta) else delta,
            }
        )
    rows += [
        {"key": key, "status": "new", "baseline": None, "current": cur, "delta": None}
        for key, cur in current.items()
        if key not in baseline["metrics"]
    ]
    counts = {
        s: sum(r["status"] == s for r in rows)
        for s in ("worse", "missing", "better", "changed", "unchanged", "new")
    }
    return {
        "suite": rs,
        "tolerance": tolerance,
        "environment_differences": environment_differences(
            baseline["environment"], result["environment"]
        ),
        "counts": counts,
        "regression": counts["worse"] + counts["missing"] > 0,
        "rows": rows,
    }


def _fmt(m: dict[str, Any] | None) -> str:
    if m is None:
        return "-"
    if m["value"] is None:
        return f"n/a ({m['k']}/{m['n']})"
    lo, hi = m["ci95"]
    return f"{m['value']:.3g} [{lo:.3g}, {hi:.3g}] ({m['k']}/{m['n']})"


def render_markdown(report: dict[str, Any]) -> str:
    c = report["counts"]
    verdict = "REGRESSION" if report["regression"] else "OK"
    out = [
        f"# hash-harness check: **{verdict}**",
        "",
        f"Suite {esc(report['suite']['name'])} v{report['suite']['version']}; tolerance "
        f"{report['tolerance']:g} (a change must exceed it *and* leave the baseline's 95% "
        "interval). "
        f"{c['worse']} worse, {c['missing']} missing, {c['better']} better, {c['changed']} changed "
        f"within noise, {c['unchanged']} unchanged, {c['new']} new.",
    ]
    diffs = report["environment_differences"]
    out += [
        "",
        "Environment differs from the baseline: " + ", ".join(esc(d) for d in diffs) + "."
        if diffs
        else "Environment identical to the baseline.",
    ]
    shown = [r for r in report["rows"] if r["status"] in ("worse", "missing", "better", "changed")]
    order = {"worse": 0, "missing": 1, "better": 2, "changed": 3}
    shown.sort(key=lambda r: (order[r["status"]], -abs(r["delta"] or 0)))
    if shown:
        out += ["", "| status | metric | baseline | current | change |", "|---|---|---|---|---|"]
        for r in shown[:100]:
            delta = "" if r["delta"] is None else f"{r['delta']:+.3g}"
            out.append(
                f"| **{r['status']}** | {code(r['key'])} | {_fmt(r['baseline'])} | "
                f"{_fmt(r['current'])} | {delta} |"
            )
        if len(shown) > 100:
            out.append(f"\n… and {len(shown) - 100} more in the JSON report.")
    return "\n".join(out) + "\n"


def render_junit(report: dict[str, Any]) -> str:
    """JUnit XML: one test case per metric; worse and missing metrics are failures."""
    rows = report["rows"]
    failures = [r for r in rows if r["status"] in ("worse", "missing")]
    name = f"hash-harness check {report['suite']['name']} v{report['suite']['version']}"
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuite name={quoteattr(name)} tests="{len(rows)}" failures="{len(failures)}">',
    ]
    for r in rows:
        lines.append(f'  <testcase classname="hash-harness" name={quoteattr(r["key"])}>')
        if r["status"] in ("worse", "missing"):
            message = f"{r['status']}: baseline {_fmt(r['baseline'])}, current {_fmt(r['current'])}"
            lines.append(f"    <failure message={quoteattr(message)}>{escape(message)}</failure>")
        elif r["status"] != "unchanged":
            lines.append(
                f"    <system-out>{escape(r['status'])}: {escape(_fmt(r['current']))}</system-out>"
            )
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"
