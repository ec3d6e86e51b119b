"""The report table of real variant pairs (see :mod:`harness.variants`), for every format."""

from __future__ import annotations

from typing import Any

from harness.report.model import Table, code, header, metric, rate, text

#: What the section says above its table.
INTRO = (
    "Files the manifest declares as real re-uploads of an image (variant_of: a platform "
    "re-encode, a screenshot, a photograph of a screen), matched against their own original at "
    "each algorithm's first threshold, one row per kind. A variant whose hash the algorithm "
    "discards is a miss; variants are in no collision count. Unpaired: variants whose original "
    "or own hash is missing (listed in results.json)."
)


def table(result: dict[str, Any]) -> Table | None:
    """The report table: one row per kind, per algorithm its TPR at the first threshold with
    interval and count, and the variants that could not be paired."""
    found = (result.get("variants") or {}).get("rows", [])
    if not found:
        return None
    algos = {a["id"]: a for a in result["algorithms"]}
    by = {(r["algorithm"], r["transform"]): r for r in found}
    names = list(dict.fromkeys(r["transform"] for r in found))
    out = []
    for name in names:
        row = [code(name)]
        unpaired = 0
        for a, meta in algos.items():
            r = by.get((a, name))
            row.append(rate(metric(r, "tpr", meta["thresholds"][0]) if r else None))
            unpaired = max(unpaired, len(r["positives"]["unpaired"]) if r else 0)
        row.append(text(unpaired, bad=unpaired > 0))
        out.append(row)
    first = {a: m["thresholds"][0] for a, m in algos.items()}
    notes = [
        f"{r['algorithm']} {r['transform']}: {m['variant']} of {m['original']} escaped at "
        f"{m['distance']} bits"
        for r in found
        for m in r["misses"][:10]
        if m["distance"] > first[r["algorithm"]]
    ]
    return Table(
        header("variants", *[f"{a} ≤{t}" for a, t in first.items()], "unpaired"),
        out,
        notes=notes,
    )
