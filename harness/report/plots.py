"""Plots for the HTML report: matplotlib (Agg), inline SVG, one colour per algorithm everywhere.

SVGs are deterministic (fixed hash salt, no date) and keep text as text, so a report is
reproducible byte for byte and its labels are selectable and searchable.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; must precede pyplot
import matplotlib.pyplot as plt
import numpy as np

matplotlib.rcParams.update(
    {
        "svg.hashsalt": "hash-harness",
        "svg.fonttype": "none",
        "font.size": 9,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "figure.dpi": 100,
    }
)


def colours(algorithms: Sequence[str]) -> dict[str, str]:
    """A fixed colour per algorithm, by position in the run (tab10, then tab20)."""
    cmap = plt.get_cmap("tab10" if len(algorithms) <= 10 else "tab20")
    return {a: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, a in enumerate(algorithms)}


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


#: Markers cycled per algorithm, so lines that coincide still show every algorithm.
MARKERS = "osD^vPX*<>ph"


def _x_of(transform: dict[str, Any]) -> tuple[str, float]:
    """The edit's own strength (JPEG quality, scale, kept area, angle ...) when it is one step
    with a numeric first parameter; the modelled intensity otherwise."""
    from harness.summaries import strength_of

    found = strength_of(transform)
    if found is not None:
        return found
    return "intensity (0 = untouched, 1 = harshest modelled)", float(transform["intensity"])


def severity_panels(result: dict[str, Any], colour: dict[str, str]) -> list[str]:
    """One small plot per family of edits with two or more members: TPR at each algorithm's
    first threshold against the edit's real parameter, 95% intervals as bars."""
    from harness.report.model import metric
    from harness.summaries import family_of

    algos = {a["id"]: a for a in result["algorithms"]}
    by = {(c["algorithm"], c["transform"]): c for c in result["cells"]}
    families: dict[str, list[dict[str, Any]]] = {}
    for t in result["transforms"]:
        if t["id"] != "identity":
            families.setdefault(family_of(t), []).append(t)
    out = []
    for fam, members in families.items():
        if len(members) < 2:
            continue
        xs = [_x_of(t) for t in members]
        label = xs[0][0] if len({x[0] for x in xs}) == 1 else "intensity"
        if label == "intensity":
            xs = [("intensity", float(t["intensity"])) for t in members]
        values = [x for _, x in xs]
        span = (max(values) - min(values)) or 1.0
        fig, ax = plt.subplots(figsize=(4.4, 3.0))
        for i, (a, meta) in enumerate(algos.items()):
            offset = (i - (len(algos) - 1) / 2) * 0.012 * span
            pts = []
            for t, (_, x) in zip(members, xs, strict=True):
                cell = by.get((a, t["id"]))
                m = metric(cell, "tpr", meta["thresholds"][0]) if cell else None
                if m and m["value"] is not None:
                    pts.append((x + offset, m["value"], m["ci95"][0], m["ci95"][1]))
            if not pts:
                continue
            pts.sort()
            ax.errorbar(
                [p[0] for p in pts],
                [p[1] for p in pts],
                yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]],
                marker=MARKERS[i % len(MARKERS)],
                ms=4,
                capsize=2,
                lw=1.1,
                alpha=0.9,
                color=colour[a],
                label=f"{a} ≤{meta['thresholds'][0]}",
            )
        ax.set_title(f"{fam}: true-match rate (95% CI)")
        ax.set_xlabel(label)
        ax.set_ylabel("TPR (fraction of edited copies matched)")
        ax.set_ylim(-0.03, 1.05)
        ax.legend(fontsize=6, loc="lower left", ncol=2)
        out.append(_svg(fig))
    return out


def distance_histograms(result: dict[str, Any], colour: dict[str, str]) -> list[str]:
    """Per algorithm: distances of edited copies to their original, one outline per family of
    edits, over the filled distribution of distances between different originals."""
    from harness.summaries import family_of

    family = {t["id"]: family_of(t) for t in result["transforms"]}
    orig = {
        c["algorithm"]: c for c in result["collisions"] if c["protocol"] == "originals_all_pairs"
    }
    cmap = plt.get_cmap("tab10")
    out = []
    for meta in result["algorithms"]:
        a = meta["id"]
        by_family: dict[str, Any] = {}
        for c in result["cells"]:
            if c["algorithm"] == a and c["transform"] != "identity":
                fam = family.get(c["transform"], c["transform"])
                hist = np.asarray(c["positives"]["hist"], float)
                by_family[fam] = by_family.get(fam, 0) + hist
        neg = np.asarray(orig[a]["hist"], float) if a in orig else np.zeros(1)
        fig, ax = plt.subplots(figsize=(4.4, 3.0))
        edges = np.arange(len(neg) + 1) - 0.5  # one bin per integer distance
        if neg.sum():
            label = f"different originals (n={int(neg.sum())})"
            ax.stairs(neg / neg.sum(), edges, fill=True, color="#999999", alpha=0.5, label=label)
        for i, (fam, hist) in enumerate(by_family.items()):
            if hist.sum():
                ax.stairs(
                    hist / hist.sum(),
                    np.arange(len(hist) + 1) - 0.5,
                    color=cmap(i % cmap.N),
                    lw=1.2,
                    label=f"{fam} (n={int(hist.sum())})",
                )
        th = meta["thresholds"][0]
        ax.axvline(th + 0.5, color="black", ls="--", lw=1, label=f"threshold <= {th}")
        ax.set_title(f"{a}: distance distributions", color=colour[a])
        ax.set_xlabel(f"distance ({meta.get('level_unit', 'bits')})")
        ax.set_ylabel("fraction of pairs")
        ax.legend(fontsize=6)
        out.append(_svg(fig))
    return out


def roc_det(curves: list[dict[str, Any]], colour: dict[str, str], negatives: dict[str, int]) -> str:
    """ROC (log FPR) and DET (log FPR vs log FNR) side by side, every algorithm. The FPR axis
    starts at the smallest observable rate, 1/n for n pairs of different originals (drawn)."""
    fig, (roc, det) = plt.subplots(1, 2, figsize=(9.0, 3.6))
    ok = [c for c in curves if c.get("status") == "ok"]
    floor = min(
        (1.0 / negatives[c["algorithm"]] for c in ok if negatives.get(c["algorithm"])), default=1e-4
    )
    for i, c in enumerate(ok):
        a = c["algorithm"]
        n = negatives.get(a) or int(1 / floor)
        fpr = np.maximum(np.asarray(c["roc"]["fpr"]), 1.0 / n)
        style = {
            "color": colour[a],
            "lw": 1.2,
            "marker": MARKERS[i % len(MARKERS)],
            "ms": 3,
            "markevery": 0.2,
        }
        roc.step(fpr, c["roc"]["tpr"], where="post", label=f"{a} (AUC {c['auc']:.3f})", **style)
        fnr = np.asarray(c["det"]["fnr"], float)
        positive_floor = min(x for x in [*fnr[fnr > 0], 1.0])
        det.step(
            np.maximum(c["det"]["fpr"], 1.0 / n),
            np.maximum(fnr, positive_floor / 2),
            where="post",
            label=a,
            **style,
        )
    for ax in (roc, det):
        ax.set_xscale("log")
        ax.set_xlim(left=floor / 1.5, right=1.05)
        ax.axvline(
            floor, color="black", ls=":", lw=1, label=f"1/n = {floor:.2g} (smallest observable)"
        )
        ax.set_xlabel("false-match rate (FPR, log)")
    roc.set_ylabel("true-match rate (TPR)")
    roc.set_title("ROC: edits pooled vs different originals")
    roc.legend(fontsize=6, loc="lower right")
    det.set_yscale("log")
    det.set_ylabel("miss rate (FNR, log; 0 drawn at the bottom)")
    det.set_title("DET")
    det.legend(fontsize=6, loc="upper right")
    return _svg(fig)
