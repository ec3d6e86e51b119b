"""Markdown and HTML of a comparison report (``hash-harness compare``; the numbers come from
:func:`harness.compare.compare`)."""

from __future__ import annotations

from typing import Any

from harness.escaping import html_text as escape
from harness.report.markdown import code, esc


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _ci(d: dict[str, Any]) -> str:
    if d["difference"] is None:
        return "n/a"
    lo, hi = d["ci95"]
    flag = "**significant**" if d["significant"] else "within noise"
    return f"{d['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}] {flag}"


def _diff(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def _caveats(report: dict[str, Any]) -> list[str]:
    """The notes every rendering carries (plain text)."""
    target = report["pairs"][0]["tpr_at_fpr"]["target_fpr"] if report["pairs"] else None
    out = [
        f"Pairing: {report['pairing']}. Paired tests on the same images; significant at alpha = "
        f"{report['alpha']}, each test on its own (no correction for the number of "
        "comparisons). Differences are A - B. Gated copies (hash discarded by the algorithm's "
        "quality gate) count as misses.",
        "TPR at each algorithm's own threshold over all images; TPR at the target false-match "
        "rate uses the threshold chosen on the calibration images (as in each run's Thresholds "
        "section) and is measured on the held-out images.",
        "False-match rates compare counts of pairs of distinct originals with Fisher's exact test "
        "(pairs share images, so this is conservative); with n pairs no FPR much below 3/n can be "
        "claimed.",
        "With fewer than about 30 images the bootstrap intervals are too narrow; the McNemar tests "
        "stay exact.",
    ]
    unresolved = [p for p in report["pairs"] if not p["tpr_at_fpr"]["resolved"]]
    if unresolved:
        out.append(
            f"{len(unresolved)} of {len(report['pairs'])} comparisons at FPR <= {target:g} are "
            "not resolved by these corpora (a status other than ok in a run's Thresholds "
            "section): treat those differences as descriptive only."
        )
    return out


COST_NOTE = (
    "CPU cost per hash (median CPU time of one hash call, from each run's run block; measured "
    "where each run ran, so not a statistical comparison):"
)


def _cost_rows(report: dict[str, Any], html: bool) -> tuple[list[str], list[list[str]]]:
    """The cost table's header and rows, escaped for HTML or Markdown."""
    if html:
        rows = [
            [f"<code>{escape(c['contender'])}</code>", escape(c["cpu_ms"]), escape(c["note"])]
            for c in report.get("cost", [])
        ]
    else:
        rows = [
            [code(c["contender"]), esc(c["cpu_ms"]), esc(c["note"])] for c in report.get("cost", [])
        ]
    return ["contender", "CPU ms/image", ""], rows


def _cost_markdown(report: dict[str, Any]) -> list[str]:
    header, rows = _cost_rows(report, html=False)
    return [
        "",
        COST_NOTE,
        "",
        "| " + " | ".join(header) + " |",
        "|---|---|---|",
        *["| " + " | ".join(r) + " |" for r in rows],
    ]


def render_markdown(report: dict[str, Any]) -> str:
    out = [f"# hash-harness compare: suite {esc(report['suite'])}", ""]
    out += [f"> warning: {esc(w)}" for w in report["warnings"]]
    if report["warnings"]:
        out.append("")
    target = report["pairs"][0]["tpr_at_fpr"]["target_fpr"]
    out += ["## Summary", ""]
    real = _has_variants(report)
    out += [
        f"| A | B | pooled TPR (A - B) | TPR at FPR <= {target:g} | FPR at own threshold | "
        "transforms differing |" + (" real variants differing |" if real else ""),
        "|---|---|---|---|---|---|" + ("---|" if real else ""),
    ]
    for s in report["summary"]:
        out.append(
            f"| {code(s['a'])} | {code(s['b'])} | {_diff(s['pooled_tpr_difference'])} "
            f"{s['pooled_tpr']} | {_diff(s['tpr_at_fpr_difference'])} {s['tpr_at_fpr']} | "
            f"{_diff(s['fpr_difference'])} {s['fpr']} | "
            f"{s['transforms_significant']} of {s['transforms']} |"
            + (f" {_variants_differing(s)} |" if real else "")
        )
    out.append("")
    out += [f"- {c}" for c in _caveats(report)]
    out += _cost_markdown(report)
    for p in report["pairs"]:
        ta, tb = p["thresholds"]
        out += ["", f"## {code(p['a'])} (A, <= {ta}) vs {code(p['b'])} (B, <= {tb})", ""]
        out.append(f"- pooled TPR difference (bootstrap over images): {_ci(p['pooled_tpr'])}")
        f = p["tpr_at_fpr"]
        fa, fb = (("none" if t is None else str(t)) for t in f["thresholds"])
        note = "" if f["resolved"] else f" (target status: {' / '.join(f['statuses'])})"
        out.append(
            f"- TPR at FPR <= {f['target_fpr']:g} (calibrated thresholds {fa} / {fb}, held-out "
            f"images): {_ci(f)}{note}"
        )
        g = p["fpr_at_threshold"]
        out.append(
            f"- FPR over distinct originals: A {g['a'][0]}/{g['a'][1]}, B {g['b'][0]}/{g['b'][1]}, "
            f"p = {g['p_value']:.3g} ({'**significant**' if g['significant'] else 'within noise'}"
            f"; {g['test']})"
        )
        out += [
            "",
            "| transform | TPR A | TPR B | only A | only B | McNemar p | |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in p["per_transform"]:
            out.append(_md_test_row(t))
        if p.get("per_variant"):
            out += [
                "",
                VARIANTS_NOTE,
                "",
                "| real variants | TPR A | TPR B | only A | only B | McNemar p | |",
                "|---|---|---|---|---|---|---|",
            ]
            out += [_md_test_row(t) for t in p["per_variant"]]
    return "\n".join(out) + "\n"


def _md_test_row(t: dict[str, Any]) -> str:
    return (
        f"| {code(t['transform'])} | {_rate(t['tpr_a'])} | {_rate(t['tpr_b'])} | "
        f"{t['only_a']} | {t['only_b']} | {t['p_value']:.3g} | "
        f"{'**significant**' if t['significant'] else ''} |"
    )


#: Above each pair's table of real variant rows.
VARIANTS_NOTE = (
    "Real variants (manifest variant_of): re-uploads against their own original at each "
    "algorithm's own threshold, paired by variant file; counted apart from the synthetic edits."
)


def _has_variants(report: dict[str, Any]) -> bool:
    return any(s.get("variants") for s in report["summary"])


def _variants_differing(s: dict[str, Any]) -> str:
    return f"{s.get('variants_significant', 0)} of {s.get('variants', 0)}"


def render_html(report: dict[str, Any]) -> str:
    """Self-contained HTML of the comparison, styled like the run report, with its caveats."""
    # Long: one page top to bottom (summary, per-pair sections, caveats), read as the page reads.
    from harness.report.html import _css

    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{h}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def verdict(text: str) -> str:
        return f"<b>{escape(text)}</b>" if "better" in text else escape(text)

    target = report["pairs"][0]["tpr_at_fpr"]["target_fpr"]
    real = _has_variants(report)
    title = f"hash-harness compare: suite {escape(report['suite'])}"
    out = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{title}</title>",
        f'<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<style>{_css()}</style></head><body><h1>{title}</h1>",
    ]
    out += [f"<p class=bad>warning: {escape(w)}</p>" for w in report["warnings"]]
    out.append('<h2 id="summary">Summary</h2>')
    out.append(
        table(
            [
                "A",
                "B",
                "pooled TPR (A - B)",
                f"TPR at FPR &le; {target:g}",
                "FPR at own threshold",
                "transforms differing",
                *(["real variants differing"] if real else []),
            ],
            [
                [
                    f"<code>{escape(s['a'])}</code>",
                    f"<code>{escape(s['b'])}</code>",
                    f"{_diff(s['pooled_tpr_difference'])} {verdict(s['pooled_tpr'])}",
                    f"{_diff(s['tpr_at_fpr_difference'])} {verdict(s['tpr_at_fpr'])}",
                    f"{_diff(s['fpr_difference'])} {verdict(s['fpr'])}",
                    f"{s['transforms_significant']} of {s['transforms']}",
                    *([_variants_differing(s)] if real else []),
                ]
                for s in report["summary"]
            ],
        )
    )
    out.append(
        "<ul class=note>" + "".join(f"<li>{escape(c)}</li>" for c in _caveats(report)) + "</ul>"
    )
    out.append(f"<p class=note>{escape(COST_NOTE)}</p>" + table(*_cost_rows(report, html=True)))
    for p in report["pairs"]:
        ta, tb = p["thresholds"]
        f, g = p["tpr_at_fpr"], p["fpr_at_threshold"]
        fa, fb = (("none" if t is None else str(t)) for t in f["thresholds"])
        note = "" if f["resolved"] else f" (target status: {' / '.join(f['statuses'])})"
        out.append(
            f"<h2><code>{escape(p['a'])}</code> (A, &le; {ta}) vs "
            f"<code>{escape(p['b'])}</code> (B, &le; {tb})</h2><ul>"
            f"<li>pooled TPR difference (bootstrap over images): {escape(_ci(p['pooled_tpr']))}</li>"
            f"<li>TPR at FPR &le; {f['target_fpr']:g} (calibrated thresholds {fa} / {fb}, "
            f"held-out images): {escape(_ci(f))}{escape(note)}</li>"
            f"<li>FPR over distinct originals: A {g['a'][0]}/{g['a'][1]}, "
            f"B {g['b'][0]}/{g['b'][1]}, p = {g['p_value']:.3g} "
            f"({'significant' if g['significant'] else 'within noise'}; {escape(g['test'])})</li>"
            "</ul>"
        )
        out.append(
            table(
                ["transform", "TPR A", "TPR B", "only A", "only B", "McNemar p", ""],
                [_html_test_row(t) for t in p["per_transform"]],
            )
        )
        if p.get("per_variant"):
            out.append(f"<p class=note>{escape(VARIANTS_NOTE)}</p>")
            out.append(
                table(
                    ["real variants", "TPR A", "TPR B", "only A", "only B", "McNemar p", ""],
                    [_html_test_row(t) for t in p["per_variant"]],
                )
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _html_test_row(t: dict[str, Any]) -> list[str]:
    return [
        f"<code>{escape(t['transform'])}</code>",
        _rate(t["tpr_a"]),
        _rate(t["tpr_b"]),
        str(t["only_a"]),
        str(t["only_b"]),
        f"{t['p_value']:.3g}",
        "<b>significant</b>" if t["significant"] else "",
    ]
