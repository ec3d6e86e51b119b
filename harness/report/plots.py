"""The HTML report's plots, drawn as inline SVG by :mod:`harness.report.svg`: one colour and one
marker per algorithm everywhere, a legend on every plot, text kept as text (selectable,
searchable), deterministic output (a report is reproducible byte for byte).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.report.svg import MARKERS, PALETTE, Plot


def colours(algorithms: Sequence[str]) -> dict[str, str]:
    """A fixed colour per algorithm, by position in the run."""
    return {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(algorithms)}


def _x_of(transform: dict[str, Any], strength: list[Any] | None) -> tuple[str, float]:
    """The edit's own ``strength`` (JPEG quality, scale, kept area, angle ...: the run's
    ``edit_families``) when it has one; the modelled intensity otherwise."""
    if strength is not None:
        return str(strength[0]), float(strength[1])
    return "intensity (0 = untouched, 1 = harshest modelled)", float(transform["intensity"])


def edit_families(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The run's edits (the identity control aside) by family, in suite order, as the run
    grouped them (each edit its own family in results that predate ``edit_families``)."""
    by_id = {t["id"]: t for t in result["transforms"]}
    if "edit_families" in result:
        return {f["family"]: [by_id[t] for t in f["transforms"]] for f in result["edit_families"]}
    return {t["id"]: [t] for t in result["transforms"] if t["id"] != "identity"}


def severity_panels(result: dict[str, Any], colour: dict[str, str]) -> list[str]:
    """One small plot per family of edits with two or more members: TPR at each algorithm's
    first threshold against the edit's real parameter, 95% intervals as bars, a marker and a
    slight horizontal offset per algorithm so coinciding lines stay visible."""
    from harness.report.model import metric

    algos = {a["id"]: a for a in result["algorithms"]}
    by = {(c["algorithm"], c["transform"]): c for c in result["cells"]}
    strength = {
        t: s
        for f in result.get("edit_families", [])
        for t, s in zip(f["transforms"], f["strength"], strict=True)
    }
    out = []
    for fam, members in edit_families(result).items():
        if len(members) < 2:
            continue
        xs = [_x_of(t, strength.get(t["id"])) for t in members]
        if len({label for label, _ in xs}) != 1:  # mixed parameters: fall back to intensity
            xs = [("intensity", float(t["intensity"])) for t in members]
        values = [x for _, x in xs]
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.06 or 0.5
        plot = Plot(
            f"{fam}: true-match rate (95% CI)",
            xs[0][0],
            "TPR (fraction of edited copies matched)",
            (lo - pad, hi + pad),
            (-0.03, 1.05),
        )
        span = (hi - lo) or 1.0
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
            px = [p[0] for p in pts]
            plot.errorbars(px, [p[2] for p in pts], [p[3] for p in pts], colour[a])
            plot.line(
                px,
                [p[1] for p in pts],
                colour[a],
                label=f"{a} ≤{meta['thresholds'][0]}",
                marker=MARKERS[i % len(MARKERS)],
            )
        out.append(plot.render(legend="lower right"))
    return out


def distance_histograms(result: dict[str, Any], colour: dict[str, str]) -> list[str]:
    """Per algorithm: distances of edited copies to their original, one outline per family of
    edits, over the filled distribution of distances between different originals."""
    pooled = {f["family"]: f["positives"] for f in result.get("edit_families", [])}
    if "edit_families" not in result:  # older results: each edit on its own
        for c in result["cells"]:
            if c["transform"] != "identity":
                pooled.setdefault(c["transform"], {})[c["algorithm"]] = c["positives"]["hist"]
    orig = {
        c["algorithm"]: c for c in result["collisions"] if c["protocol"] == "originals_all_pairs"
    }
    out = []
    for meta in result["algorithms"]:
        a = meta["id"]
        by_family = {fam: np.asarray(h[a], float) for fam, h in pooled.items() if a in h}
        neg = np.asarray(orig[a]["hist"], float) if a in orig else np.zeros(1)
        shares = [h / h.sum() for h in by_family.values() if h.sum()]
        top = max(
            [float(neg.max() / neg.sum()) if neg.sum() else 0.0] + [float(s.max()) for s in shares]
        )
        plot = Plot(
            f"{a}: distance distributions",
            f"distance ({meta.get('level_unit', 'bits')})",
            "fraction of pairs",
            (-0.5, len(neg) - 0.5),
            (0.0, max(top * 1.05, 0.05)),
            title_colour=colour[a],
        )
        if neg.sum():
            plot.stairs(
                (neg / neg.sum()).tolist(),
                "#999999",
                label=f"different originals (n={int(neg.sum())})",
                fill=True,
                opacity=0.5,
            )
        for i, (fam, hist) in enumerate(by_family.items()):
            if hist.sum():
                plot.stairs(
                    (hist / hist.sum()).tolist(),
                    PALETTE[i % len(PALETTE)],
                    label=f"{fam} (n={int(hist.sum())})",
                )
        th = meta["thresholds"][0]
        plot.vline(th + 0.5, label=f"threshold <= {th}")
        out.append(plot.render())
    return out


def roc_det(
    curves: list[dict[str, Any]], colour: dict[str, str], negatives: dict[str, int]
) -> list[str]:
    """ROC (log FPR) and DET (log FPR vs log FNR), every algorithm. The FPR axis starts at the
    smallest observable rate, 1/n for n pairs of different originals (drawn)."""
    ok = [c for c in curves if c.get("status") == "ok"]
    if not ok:
        return []
    floor = min(
        (1.0 / negatives[c["algorithm"]] for c in ok if negatives.get(c["algorithm"])),
        default=1e-4,
    )
    fnr_floor = 1.0
    for c in ok:
        fnr = np.asarray(c["det"]["fnr"], float)
        if (fnr > 0).any():
            fnr_floor = min(fnr_floor, float(fnr[fnr > 0].min()))
    xlim = (floor / 1.5, 1.0)
    roc = Plot(
        "ROC: edits pooled vs different originals",
        "false-match rate (FPR, log)",
        "true-match rate (TPR)",
        xlim,
        (0.0, 1.02),
        xlog=True,
    )
    det = Plot(
        "DET",
        "false-match rate (FPR, log)",
        "miss rate (FNR, log)",
        xlim,
        (fnr_floor / 2, 1.0),
        xlog=True,
        ylog=True,
    )
    for i, c in enumerate(ok):
        a = c["algorithm"]
        n = negatives.get(a) or round(1 / floor)
        marker = MARKERS[i % len(MARKERS)]
        fpr = np.maximum(np.asarray(c["roc"]["fpr"], float), 1.0 / n).tolist()
        roc.steps(fpr, c["roc"]["tpr"], colour[a], label=f"{a} (AUC {c['auc']:.3f})", marker=marker)
        det.steps(
            np.maximum(np.asarray(c["det"]["fpr"], float), 1.0 / n).tolist(),
            np.maximum(np.asarray(c["det"]["fnr"], float), fnr_floor / 2).tolist(),
            colour[a],
            label=a,
            marker=marker,
        )
    for plot in (roc, det):
        plot.vline(floor, dash="1 2", label=f"1/n = {floor:.2g} (smallest observable)")
    return [roc.render(legend="lower right"), det.render(legend="lower left")]


def flagged_share(
    curves: dict[str, list[dict[str, Any]]],
    colour: dict[str, str],
    database_size: float | None = None,
) -> str:
    """Share of innocent uploads flagged against database size (log-log), one line per curve.

    ``curves[label]`` (label e.g. ``"pdq ≤31"``, coloured by ``colour[label]``) holds the points
    of ``harness.flagged.flagged_share(...)["curve"]``: the measured part (exact, up to the
    corpus size) is a solid line in its 95% band, the model-based part a dashed line in a
    fainter band, so the two are never mistaken for each other. ``database_size`` (the user's D)
    is marked.
    """
    floor = 1e-5
    sizes = [p["database_size"] for pts in curves.values() for p in pts]
    top = max([*sizes, database_size or 1.0, 10.0])
    plot = Plot(
        "Share of innocent uploads flagged vs database size (95% bands)",
        "hashes in the database (D, log)",
        f"share of uploads flagged (log; {floor:g} = none)",
        (1.0, 10 ** math.ceil(math.log10(top))),
        (floor, 1.0),
        xlog=True,
        ylog=True,
        width=560,
    )
    for label, points in curves.items():
        c = colour.get(label, "#444")
        for kind, dash, opacity in (("measured", "", 0.25), ("model", "5 3", 0.1)):
            pts = sorted((p for p in points if p["kind"] == kind), key=lambda p: p["database_size"])
            if not pts:
                continue
            d = [float(p["database_size"]) for p in pts]
            lo = [max(p["ci95"][0], floor) for p in pts]
            hi = [max(p["ci95"][1], floor) for p in pts]
            plot.band(d, lo, hi, c, opacity)
            name = "measured" if kind == "measured" else "model-based"
            ys = [max(p["share"], floor) for p in pts]
            plot.line(d, ys, c, label=f"{label} ({name})", dash=dash)
    if database_size is not None:
        plot.vline(database_size, dash="1 2", label=f"D = {database_size:.3g}")
    return plot.render(legend="lower right")
