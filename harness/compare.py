"""Side-by-side comparison of algorithms: in one run, or across runs of the same suite version.

Every contender was measured on the same source images, so differences are tested *paired*:

* TPR per transform at each contender's own threshold: exact McNemar test on the images where
  exactly one of the two matched (scipy ``binomtest`` on the discordant pairs);
* pooled TPR (all edits) and TPR at a target false-match rate: 95% percentile interval of the
  difference from a bootstrap over source images (every edit of a drawn image moves with it);
* false-match rate at the threshold over pairs of distinct originals: per-pair outcomes are not
  stored, so this uses Fisher's exact test on the counts (unpaired, hence conservative) and says so.

A difference is *significant* when the test rejects at ``alpha`` (default 0.05); anything else is
reported as within noise. Runs of different suite versions or on different images are refused.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
from scipy.stats import binomtest, fisher_exact

from harness.env import environment_differences
from harness.errors import HarnessError
from harness.metrics import threshold_at_fpr
from harness.report.markdown import code

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

    def originals_hist(self) -> list[int]:
        return next(
            c["hist"]
            for c in self.result["collisions"]
            if c["algorithm"] == self.algorithm and c["protocol"] == "originals_all_pairs"
        )


def contenders(runs: list[tuple[str, dict[str, Any]]]) -> tuple[list[Contender], list[str]]:
    """Every algorithm of every run, after checking the runs are comparable; plus warnings."""
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
    out = [
        Contender(f"{label}:{a['id']}" if many else a["id"], r, a["id"])
        for label, r in runs
        for a in r["algorithms"]
    ]
    if len(out) < 2:
        raise IncomparableError(
            "need at least two algorithms to compare (one run with several, or several runs)."
        )
    return out, warnings


def _matches(c: Contender, transform: str, threshold: int) -> list[bool | None]:
    cell = c.cells().get(transform)
    if cell is None:
        return []
    return [None if d is None else d <= threshold for d in cell["positives"]["distances"]]


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
    c: Contender, transforms: list[str], threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Matched and usable edit counts per source image, pooled over ``transforms``."""
    n_images = len(c.result["dataset"]["images"])
    hits, usable = np.zeros(n_images), np.zeros(n_images)
    for t in transforms:
        for i, m in enumerate(_matches(c, t, threshold)):
            if m is not None:
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
) -> dict[str, Any]:
    """Pairwise comparison of every contender with every other."""
    people, warnings = contenders(runs)
    first = runs[0][1]
    transforms = [t["id"] for t in first["transforms"] if t["id"] != "identity"]
    target = (first["suite"]["config"].get("target_fprs") or [1e-3])[0]
    pairs: list[dict[str, Any]] = []
    for a, b in itertools.combinations(people, 2):
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
        ta, tb = (
            threshold_at_fpr(a.originals_hist(), target),
            threshold_at_fpr(b.originals_hist(), target),
        )
        at_fpr = _paired_bootstrap(
            _per_image(a, transforms, ta), _per_image(b, transforms, tb), resamples, seed
        )
        ha, hb = np.asarray(a.originals_hist()), np.asarray(b.originals_hist())
        ka, kb = int(ha[: a.threshold + 1].sum()), int(hb[: b.threshold + 1].sum())
        na, nb = int(ha.sum()), int(hb.sum())
        fisher_p = float(fisher_exact([[ka, na - ka], [kb, nb - kb]])[1]) if na and nb else 1.0
        resolved = min(na, nb) >= 3 / target
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
                    "resolved": resolved,
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
    return {"alpha": alpha, "suite": first["suite"]["name"], "warnings": warnings, "pairs": pairs}


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _ci(d: dict[str, Any]) -> str:
    if d["difference"] is None:
        return "n/a"
    lo, hi = d["ci95"]
    flag = "**significant**" if d["significant"] else "within noise"
    return f"{d['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}] {flag}"


def render_markdown(report: dict[str, Any]) -> str:
    out = [f"# hash-harness compare: suite {report['suite']}", ""]
    out += [f"> warning: {w}" for w in report["warnings"]]
    out.append(
        f"Paired tests on the same images; significant at alpha = {report['alpha']}, each test on "
        "its own (no correction for the number of comparisons). TPR at each algorithm's own "
        "threshold; differences are A - B. With fewer than about 30 images the bootstrap "
        "intervals are too narrow; the McNemar tests stay exact."
    )
    for p in report["pairs"]:
        out += [
            "",
            f"## {code(p['a'])} (A, <= {p['thresholds'][0]}) vs {code(p['b'])} (B, <= {p['thresholds'][1]})",
            "",
        ]
        out.append(f"- pooled TPR difference (bootstrap over images): {_ci(p['pooled_tpr'])}")
        f = p["tpr_at_fpr"]
        note = "" if f["resolved"] else " (target unresolved: too few negative pairs)"
        out.append(
            f"- TPR at FPR <= {f['target_fpr']:g} (thresholds {f['thresholds'][0]} / {f['thresholds'][1]}): {_ci(f)}{note}"
        )
        g = p["fpr_at_threshold"]
        out.append(
            f"- FPR over distinct originals: A {g['a'][0]}/{g['a'][1]}, B {g['b'][0]}/{g['b'][1]}, "
            f"p = {g['p_value']:.3g} ({'**significant**' if g['significant'] else 'within noise'}; {g['test']})"
        )
        out += [
            "",
            "| transform | TPR A | TPR B | only A | only B | McNemar p | |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in p["per_transform"]:
            out.append(
                f"| {code(t['transform'])} | {_rate(t['tpr_a'])} | {_rate(t['tpr_b'])} | {t['only_a']} | {t['only_b']} | "
                f"{t['p_value']:.3g} | {'**significant**' if t['significant'] else ''} |"
            )
    return "\n".join(out) + "\n"


def render_html(report: dict[str, Any]) -> str:
    """Self-contained HTML of the comparison (tables only)."""
    rows = []
    for p in report["pairs"]:
        for t in p["per_transform"]:
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{escape(str(x))}</td>"
                    for x in (
                        p["a"],
                        p["b"],
                        t["transform"],
                        _rate(t["tpr_a"]),
                        _rate(t["tpr_b"]),
                        t["only_a"],
                        t["only_b"],
                        f"{t['p_value']:.3g}",
                        "significant" if t["significant"] else "",
                    )
                )
                + "</tr>"
            )
    pooled = "".join(
        f"<li><code>{escape(p['a'])}</code> vs <code>{escape(p['b'])}</code>: pooled TPR {escape(_ci(p['pooled_tpr']))}; "
        f"TPR at FPR &le; {p['tpr_at_fpr']['target_fpr']:g}: {escape(_ci(p['tpr_at_fpr']))}</li>"
        for p in report["pairs"]
    )
    warn = "".join(f"<p><b>warning:</b> {escape(w)}</p>" for w in report["warnings"])
    head = "".join(
        f"<th>{h}</th>"
        for h in ("A", "B", "transform", "TPR A", "TPR B", "only A", "only B", "McNemar p", "")
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>hash-harness compare</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{border:1px solid #ddd;padding:3px 6px}"
        "table{border-collapse:collapse}</style></head><body>"
        f"<h1>Compare: suite {escape(report['suite'])}</h1>{warn}<ul>{pooled}</ul>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table></body></html>\n"
    )
