"""Markdown and JUnit XML of a regression check (``hash-harness check``; the verdicts come from
:func:`harness.guard.check`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.core.words import plural
from harness.escaping import xml_attr as quoteattr
from harness.escaping import xml_text as escape
from harness.guard import HIGHER_IS_BETTER, MIN_N, NOT_RUN
from harness.report.markdown import code, esc


def _fmt(m: dict[str, Any] | None) -> str:
    if m is None:
        return "-"
    if m["value"] is None:
        return f"n/a ({m['k']}/{m['n']})"
    lo, hi = m["ci95"]
    return f"{m['value']:.3g} [{lo:.3g}, {hi:.3g}] ({m['k']}/{m['n']})"


def _change(r: dict[str, Any]) -> str:
    """The change and the evidence for it: '-0.118 (3 images lost, 0 gained; p=0.12)'."""
    if r["delta"] is None:
        return ""
    text = f"{r['delta']:+.3g}"
    test = r.get("test")
    if test is not None:
        worse = r["delta"] < 0 if r["baseline"]["name"] in HIGHER_IS_BETTER else r["delta"] > 0
        p = f"p={test['p_worse' if worse else 'p_better']:.2g}"
        if "losses" in test:
            p = f"{test['losses']} images lost, {test['gains']} gained; {p}"
        text += f" ({p})"
    elif r.get("small"):
        text += f" (n < {MIN_N}: pooled)"
    return text


def rule(report: dict[str, Any]) -> str:
    """One paragraph: how many rows were tested and at what familywise level."""
    t = report["tests"]
    return (
        f"{t['rows_tested']} rows with n >= {report['min_n']} and {t['pooled_tests']} pooled "
        f"tests were tested in {t['families']} families (one per algorithm), each at familywise "
        f"level {report['alpha']:g} (exact paired tests by image, Holm step-down with Tarone's "
        f"refinement); {t['small_rows']} rows with n < {report['min_n']} cannot fail alone "
        f"({t['pooled_rows']} true-match rows of them enter their algorithm's pooled test). "
        f"A change must be significant *and* exceed the tolerance {report['tolerance']:g}."
    )


def _judged(report: dict[str, Any]) -> str:
    """What the counts add up to: "74 metrics of the baseline, 2 pooled tests" (the pooled
    tests are why a check counts more rows than ``baseline create`` wrote metrics)."""
    j = report.get("judged")
    if not j:
        return "every rate"
    parts = [f"{plural(j['baseline_metrics'], 'metric')} of the baseline"]
    if j["new_metrics"]:
        parts.append(f"{j['new_metrics']} new in the run")
    if j["pooled_tests"]:
        parts.append(
            f"{plural(j['pooled_tests'], 'pooled test')} (rows with n < {report['min_n']}, "
            "one per algorithm)"
        )
    return ", ".join(parts)


def _counts(c: dict[str, int]) -> str:
    return (
        f"{c['worse']} worse, {c['missing']} missing, {c['better']} better, {c['changed']} changed "
        f"within noise, {c['unchanged']} unchanged, {c['new']} new"
        + (f", {c[NOT_RUN]} not run" if c.get(NOT_RUN) else "")
    )


def narrowing(report: dict[str, Any], show: Callable[[str], str] = str) -> str | None:
    """What a check of a run narrowed with ``run --transforms`` left unjudged, or None;
    ``show`` formats each edit's id (``code`` in Markdown)."""
    narrowed = report.get("narrowed")
    if not narrowed:
        return None
    left = narrowed["not_run"]
    if not left:
        return f"The run was made with {narrowed['option']}, naming every edit of the suite."
    return (
        f"The run was narrowed with {narrowed['option']}: only the cells it has were compared. "
        f"Not run ({len(left)} edits of the suite): {', '.join(map(show, left))}; the collisions "
        "pooled over every edit are not compared either. Run the whole suite to check them."
    )


def render_markdown(report: dict[str, Any]) -> str:
    c = report["counts"]
    verdict = "REGRESSION" if report["regression"] else "OK"
    out = [
        f"# hash-harness check: **{verdict}**",
        "",
        f"Suite {esc(report['suite']['name'])} v{report['suite']['version']}, "
        f"{_judged(report)}: {_counts(c)}."
        + (
            f" Real variants (manifest variant_of): {_counts(v)}."
            if (v := report.get("variant_counts"))
            else ""
        ),
        "",
        rule(report),
    ]
    narrowed = narrowing(report, lambda edit: f"`{edit}`")  # a paragraph: no table escapes
    out += ["", narrowed] if narrowed else []
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
            out.append(
                f"| **{r['status']}** | {code(r['key'])} | {_fmt(r['baseline'])} | "
                f"{_fmt(r['current'])} | {esc(_change(r))} |"
            )
        if len(shown) > 100:
            out.append(f"\n… and {len(shown) - 100} more in the JSON report.")
    return "\n".join(out) + "\n"


def render_junit(report: dict[str, Any]) -> str:
    """JUnit XML: one test case per metric, grouped by algorithm (one classname each); worse and
    missing metrics are failures whose message gives the baseline, the current value and the
    change."""
    rows = report["rows"]
    failures = [r for r in rows if r["status"] in ("worse", "missing")]
    skipped = sum(r["status"] == NOT_RUN for r in rows)
    name = f"hash-harness check {report['suite']['name']} v{report['suite']['version']}"
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuite name={quoteattr(name)} tests="{len(rows)}" failures="{len(failures)}" '
        f'skipped="{skipped}">',
    ]
    for r in rows:
        classname = f"hash-harness.{r['family']}"
        lines.append(f"  <testcase classname={quoteattr(classname)} name={quoteattr(r['key'])}>")
        message = (
            f"{r['status']}: baseline {_fmt(r['baseline'])}, current {_fmt(r['current'])}, "
            f"change {_change(r) or 'n/a'}"
        )
        if r["status"] in ("worse", "missing"):
            lines.append(f"    <failure message={quoteattr(message)}>{escape(message)}</failure>")
        elif r["status"] == NOT_RUN:
            why = narrowing(report) or NOT_RUN
            lines.append(f"    <skipped message={quoteattr(why)}/>")
        elif r["status"] != "unchanged":
            lines.append(f"    <system-out>{escape(message)}</system-out>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"
