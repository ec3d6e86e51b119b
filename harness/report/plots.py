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


def severity_curves(
    family: str, series: dict[str, list[tuple[float, float, float, float]]], colour: dict[str, str]
) -> str:
    """TPR against severity for one transform family; points (intensity, tpr, lo, hi)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    for algo, points in series.items():
        pts = sorted(points)
        x = [p[0] for p in pts]
        y = [p[1] for p in pts]
        err = [[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]]
        ax.errorbar(
            x, y, yerr=err, marker="o", ms=3, capsize=2, lw=1.2, color=colour[algo], label=algo
        )
    ax.set_title(f"{family}: true-match rate vs severity (95% CI)")
    ax.set_xlabel("intensity (0 = untouched, 1 = harshest modelled)")
    ax.set_ylabel("TPR (fraction of edited copies matched)")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7, loc="lower left")
    return _svg(fig)


def distance_histogram(
    algo: str,
    positives: Sequence[int],
    negatives: Sequence[int],
    threshold: int,
    unit: str,
    colour: str,
) -> str:
    """Edited-vs-own-original and different-image distance distributions, threshold marked."""
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    edges = np.arange(len(positives) + 1) - 0.5  # one bin per integer distance
    pos, neg = np.asarray(positives, float), np.asarray(negatives, float)
    # stairs draws one filled outline per distribution (bars would be hundreds of patches).
    if pos.sum():
        label = f"edited vs own original (n={int(pos.sum())})"
        ax.stairs(pos / pos.sum(), edges, fill=True, color=colour, alpha=0.8, label=label)
    if neg.sum():
        label = f"different originals (n={int(neg.sum())})"
        ax.stairs(neg / neg.sum(), edges, fill=True, color="#888888", alpha=0.55, label=label)
    ax.axvline(threshold + 0.5, color="black", ls="--", lw=1, label=f"threshold <= {threshold}")
    ax.set_title(f"{algo}: distance distributions")
    ax.set_xlabel(f"distance ({unit})")
    ax.set_ylabel("fraction of pairs")
    ax.legend(fontsize=7)
    return _svg(fig)


def roc_det(curves: list[dict[str, Any]], colour: dict[str, str]) -> str:
    """ROC (log FPR) and DET (log FPR vs log FNR) side by side, every algorithm."""
    fig, (roc, det) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    floor = 1e-4
    for c in curves:
        if c.get("status") != "ok":
            continue
        a = c["algorithm"]
        fpr = np.maximum(np.asarray(c["roc"]["fpr"]), floor)
        roc.step(
            fpr,
            c["roc"]["tpr"],
            where="post",
            color=colour[a],
            lw=1.2,
            label=f"{a} (AUC {c['auc']:.3f})",
        )
        det.step(
            np.maximum(c["det"]["fpr"], floor),
            np.maximum(c["det"]["fnr"], floor),
            where="post",
            color=colour[a],
            lw=1.2,
        )
    roc.set_xscale("log")
    roc.set_xlabel(f"false-match rate (FPR, log; {floor:g} = none observed)")
    roc.set_ylabel("true-match rate (TPR)")
    roc.set_title("ROC: edits pooled vs different originals")
    roc.legend(fontsize=6, loc="lower right")
    det.set_xscale("log")
    det.set_yscale("log")
    det.set_xlabel("false-match rate (FPR, log)")
    det.set_ylabel("miss rate (FNR, log)")
    det.set_title("DET")
    return _svg(fig)
