"""Report rendering: the HTML report's plots as hand-drawn SVG against the same figures drawn by
matplotlib (ratios in one run). This measurement chose the SVG kit (harness/report/svg.py).

Run explicitly::

    python benchmarks/perf/bench_report.py RESULTS.json [--repeat 3]

Measured in one process, one after another, on the given results (e.g. a run of the default
suite on skimage_tiles):

* ``render_html`` (everything: tables, answer box, SVG plots, galleries);
* the SVG plots alone (severity panels, distance histograms, ROC and DET);
* matplotlib drawing the same figures (errorbar lines per family, stairs per algorithm, step
  ROC/DET on log axes, saved as SVG), its import timed apart (a fresh process pays it once).
"""

from __future__ import annotations

import argparse
import io
import time
from typing import Any

from harness import results
from harness.report import plots
from harness.report.html import render_html


def _best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _svg_plots(result: dict[str, Any]) -> None:
    colour = plots.colours([a["id"] for a in result["algorithms"]])
    n = {
        c["algorithm"]: c["n_pairs"]
        for c in result["collisions"]
        if c["protocol"] == "originals_all_pairs"
    }
    plots.severity_panels(result, colour)
    plots.distance_histograms(result, colour)
    plots.roc_det(result.get("curves", []), colour, n)


def _matplotlib_plots(result: dict[str, Any]) -> None:
    """The same figures with matplotlib (what the report drew before the SVG kit)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from harness.report.model import metric
    from harness.report.plots import edit_families

    def save(fig: Any) -> None:
        fig.savefig(io.StringIO(), format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)

    algos = {a["id"]: a for a in result["algorithms"]}
    by = {(c["algorithm"], c["transform"]): c for c in result["cells"]}
    for members in (m for m in edit_families(result).values() if len(m) > 1):
        fig, ax = plt.subplots(figsize=(4.4, 3.0))
        for a, meta in algos.items():
            ms = [metric(by[(a, t["id"])], "tpr", meta["thresholds"][0]) for t in members]
            y = [m["value"] for m in ms]
            err = [
                [v - m["ci95"][0] for v, m in zip(y, ms, strict=True)],
                [m["ci95"][1] - v for v, m in zip(y, ms, strict=True)],
            ]
            ax.errorbar([t["intensity"] for t in members], y, yerr=err, marker="o", label=a)
        ax.legend(fontsize=6)
        save(fig)
    for coll in (c for c in result["collisions"] if c["protocol"] == "originals_all_pairs"):
        fig, ax = plt.subplots(figsize=(4.4, 3.0))
        neg = np.asarray(coll["hist"], float)
        ax.stairs(neg / neg.sum(), np.arange(len(neg) + 1) - 0.5, fill=True, label="negatives")
        for c in (c for c in result["cells"] if c["algorithm"] == coll["algorithm"]):
            pos = np.asarray(c["positives"]["hist"], float)
            if pos.sum():
                ax.stairs(pos / pos.sum(), np.arange(len(pos) + 1) - 0.5, label=c["transform"])
        ax.legend(fontsize=6)
        save(fig)
    fig, (roc, det) = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for c in (c for c in result.get("curves", []) if c.get("status") == "ok"):
        roc.step(
            np.maximum(c["roc"]["fpr"], 1e-6),
            c["roc"]["tpr"],
            where="post",
            marker="o",
            label=c["algorithm"],
        )
        det.step(
            np.maximum(c["det"]["fpr"], 1e-6),
            np.maximum(c["det"]["fnr"], 1e-6),
            where="post",
            label=c["algorithm"],
        )
    roc.set_xscale("log")
    det.set_xscale("log")
    det.set_yscale("log")
    roc.legend(fontsize=6)
    det.legend(fontsize=6)
    save(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result = results.load(args.results)
    html = _best(lambda: render_html(result), args.repeat)
    svg = _best(lambda: _svg_plots(result), args.repeat)
    t0 = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    imported = time.perf_counter() - t0
    mpl = _best(lambda: _matplotlib_plots(result), args.repeat)
    print(f"render_html (SVG plots):        {html:.3f} s")
    print(f"SVG plots alone:                {svg:.3f} s")
    print(f"matplotlib, same figures:       {mpl:.3f} s  (+ {imported:.2f} s import, once)")
    print(f"ratio matplotlib / SVG plots:   {mpl / svg:.0f}x")


if __name__ == "__main__":
    main()
