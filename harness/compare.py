"""Side-by-side comparison of algorithms: in one run, or across runs of the same suite version.

Within one run every algorithm is compared with every other; across runs the *same* algorithm is
paired with itself in each other run (did the upgrade change it?), and ``algorithms`` narrows
either to the algorithms named. Every contender was measured on the same source images, so
differences are tested *paired*:

* TPR per transform at each contender's own threshold: exact McNemar test on the images where
  exactly one of the two matched (scipy ``binomtest`` on the discordant pairs);
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
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest, fisher_exact

from harness import variants
from harness.core.errors import HarnessError
from harness.env import environment_differences
from harness.escaping import html_text as escape
from harness.report.markdown import code, esc

ALPHA = 0.05


class IncomparableError(HarnessError):
    """The results cannot be compared (different suite version or images)."""


@dataclass(frozen=True)
class Contender:
    label: str
    result: dict[str, Any]
    algorithm: str

    @property
    def threshold(self) -> int:
        algo = next(a for a in self.result["algorithms"] if a["id"] == self.algorithm)
        return int(algo["thresholds"][0])

    def cells(self) -> dict[str, dict[str, Any]]:
        return {c["transform"]: c for c in self.result["cells"] if c["algorithm"] == self.algorithm}

    def choice(self, target: float) -> dict[str, Any] | None:
        """The run's threshold choice at ``target`` (Thresholds section), if it made one."""
        for rec in self.result.get("recommendations", []):
            if rec["algorithm"] == self.algorithm:
                return next((t for t in rec["targets"] if t["target_fpr"] == target), None)
        return None

    def originals_hist(self) -> list[int]:
        return next(
            c["hist"]
            for c in self.result["collisions"]
            if c["algorithm"] == self.algorithm and c["protocol"] == "originals_all_pairs"
        )


def contenders(
    runs: list[tuple[str, dict[str, Any]]], algorithms: list[str] | None = None
) -> tuple[list[Contender], list[str]]:
    """Every algorithm of every run (only ``algorithms`` when given), after checking the runs
    are comparable; plus warnings."""
    first = runs[0][1]
    warnings = []
    for label, r in runs[1:]:
        a, b = first["suite"], r["suite"]
        if (a["name"], a["version"]) != (b["name"], b["version"]):
            raise IncomparableError(
                f"{label} is suite {b['name']!r} v{b['version']} but {runs[0][0]} is {a['name']!r} "
                f"v{a['version']}: compare runs of the same suite version only."
            )
        if first["dataset"]["content_sha256"] != r["dataset"]["content_sha256"]:
            raise IncomparableError(f"{label} was measured on different images than {runs[0][0]}.")
        diffs = environment_differences(first["environment"], r["environment"])
        if diffs:
            warnings.append(f"{label}: environment differs from {runs[0][0]}: {', '.join(diffs)}")
    many = len(runs) > 1
    if algorithms:
        known = {a["id"] for _, r in runs for a in r["algorithms"]}
        unknown = [a for a in algorithms if a not in known]
        if unknown:
            raise IncomparableError(
                f"--algorithms names {', '.join(unknown)}, not in these results "
                f"(they have: {', '.join(sorted(known))})."
            )
    out = [
        Contender(f"{label}:{a['id']}" if many else a["id"], r, a["id"])
        for label, r in runs
        for a in r["algorithms"]
        if not algorithms or a["id"] in algorithms
    ]
    if len(out) < 2:
        raise IncomparableError(
            "need at least two algorithms to compare (one run with several, or several runs)."
        )
    return out, warnings


def _matches(c: Contender, transform: str, threshold: int | None) -> list[bool | None]:
    """Per image: matched, missed (gated copies too), or None (no pair)."""
    cell = c.cells().get(transform)
    if cell is None:
        return []
    gated = set(cell["positives"].get("gated", []))
    ids = [i["id"] for i in c.result["dataset"]["images"]]
    return [
        False
        if ids[k] in gated
        else None
        if d is None
        else threshold is not None and d <= threshold
        for k, d in enumerate(cell["positives"]["distances"])
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
    images = c.result["dataset"]["images"]
    hits, usable = np.zeros(len(images)), np.zeros(len(images))
    for t in transforms:
        for i, m in enumerate(_matches(c, t, threshold)):
            if m is not None and not (held_out_only and images[i].get("split") == "calibration"):
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
    runs: list[tuple[str, dict[str, Any]]],
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
    transforms = [t["id"] for t in first["transforms"] if t["id"] != "identity"]
    target = (first["suite"]["config"].get("target_fprs") or [1e-3])[0]
    matchups = [
        (a, b)
        for a, b in itertools.combinations(people, 2)
        if len(runs) == 1 or a.algorithm == b.algorithm
    ]
    if not matchups:
        raise IncomparableError(
            "these runs share no algorithm: across runs each algorithm is compared with itself."
        )
    pairs: list[dict[str, Any]] = []
    for a, b in matchups:
        per_transform = []
        for t in transforms:
            test = _mcnemar(_matches(a, t, a.threshold), _matches(b, t, b.threshold))
            per_transform.append({"transform": t, **test, "significant": test["p_value"] < alpha})
        per_transform += variants.compare_rows(a, b, alpha, _mcnemar)  # real variant pairs
        pooled = _paired_bootstrap(
            _per_image(a, transforms, a.threshold),
            _per_image(b, transforms, b.threshold),
            resamples,
            seed,
        )
        ca, cb = a.choice(target), b.choice(target)
        ta = ca["threshold"] if ca else None
        tb = cb["threshold"] if cb else None
        statuses = [c["status"] if c else "undefined" for c in (ca, cb)]
        at_fpr = _paired_bootstrap(
            _per_image(a, transforms, ta, held_out_only=True),
            _per_image(b, transforms, tb, held_out_only=True),
            resamples,
            seed,
        )
        ha, hb = np.asarray(a.originals_hist()), np.asarray(b.originals_hist())
        ka, kb = int(ha[: a.threshold + 1].sum()), int(hb[: b.threshold + 1].sum())
        na, nb = int(ha.sum()), int(hb.sum())
        fisher_p = float(fisher_exact([[ka, na - ka], [kb, nb - kb]])[1]) if na and nb else 1.0
        pairs.append(
            {
                "a": a.label,
                "b": b.label,
                "thresholds": [a.threshold, b.threshold],
                "per_transform": per_transform,
                "pooled_tpr": pooled,
                "tpr_at_fpr": {
                    "target_fpr": target,
                    "thresholds": [ta, tb],
                    "statuses": statuses,
                    "resolved": statuses == ["ok", "ok"],
                    "scored_on": "held-out images",
                    **at_fpr,
                },
                "fpr_at_threshold": {
                    "a": [ka, na],
                    "b": [kb, nb],
                    "p_value": fisher_p,
                    "significant": fisher_p < alpha,
                    "test": "Fisher exact on counts (pairs are shared, so this is conservative)",
                },
            }
        )
    return {
        "alpha": alpha,
        "suite": first["suite"]["name"],
        "cost": _cost(people),
        "pairing": "every algorithm with every other"
        if len(runs) == 1
        else "each algorithm with itself across runs",
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
        cell = cpu_cost(c.result).get(c.algorithm)
        value = "not measured" if cell is None else cell.text
        out.append(
            {"contender": c.label, "cpu_ms": value, "note": "" if cell is None else cell.note}
        )
    return out


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
    }


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
    out += [
        f"| A | B | pooled TPR (A - B) | TPR at FPR <= {target:g} | FPR at own threshold | "
        "transforms differing |",
        "|---|---|---|---|---|---|",
    ]
    for s in report["summary"]:
        out.append(
            f"| {code(s['a'])} | {code(s['b'])} | {_diff(s['pooled_tpr_difference'])} "
            f"{s['pooled_tpr']} | {_diff(s['tpr_at_fpr_difference'])} {s['tpr_at_fpr']} | "
            f"{_diff(s['fpr_difference'])} {s['fpr']} | "
            f"{s['transforms_significant']} of {s['transforms']} |"
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
            out.append(
                f"| {code(t['transform'])} | {_rate(t['tpr_a'])} | {_rate(t['tpr_b'])} | "
                f"{t['only_a']} | {t['only_b']} | {t['p_value']:.3g} | "
                f"{'**significant**' if t['significant'] else ''} |"
            )
    return "\n".join(out) + "\n"


def render_html(report: dict[str, Any]) -> str:
    """Self-contained HTML of the comparison, styled like the run report, with its caveats."""
    from harness.report.html import _css

    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{h}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def verdict(text: str) -> str:
        return f"<b>{escape(text)}</b>" if "better" in text else escape(text)

    target = report["pairs"][0]["tpr_at_fpr"]["target_fpr"]
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
            ],
            [
                [
                    f"<code>{escape(s['a'])}</code>",
                    f"<code>{escape(s['b'])}</code>",
                    f"{_diff(s['pooled_tpr_difference'])} {verdict(s['pooled_tpr'])}",
                    f"{_diff(s['tpr_at_fpr_difference'])} {verdict(s['tpr_at_fpr'])}",
                    f"{_diff(s['fpr_difference'])} {verdict(s['fpr'])}",
                    f"{s['transforms_significant']} of {s['transforms']}",
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
                [
                    [
                        f"<code>{escape(t['transform'])}</code>",
                        _rate(t["tpr_a"]),
                        _rate(t["tpr_b"]),
                        str(t["only_a"]),
                        str(t["only_b"]),
                        f"{t['p_value']:.3g}",
                        "<b>significant</b>" if t["significant"] else "",
                    ]
                    for t in p["per_transform"]
                ],
            )
        )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
