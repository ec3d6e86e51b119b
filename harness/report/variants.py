"""The report table of real variant pairs (see :mod:`harness.variants`), for every format."""

from __future__ import annotations

from typing import Any

from harness.report.model import Cell, Table, code, header, metric, rate, text

#: What the section says above its table.
INTRO = (
    "Files the manifest declares as real re-uploads of an image (variant_of: a platform "
    "re-encode, a screenshot, a photograph of a screen), matched against their own original, "
    "one row per algorithm and kind: at the algorithm's first given threshold, and at the "
    "threshold the run chose for each target false-match rate. Those thresholds were chosen on "
    "the calibration images' synthetic negative pairs before any variant was hashed - never "
    "tuned on the variants - so every variant is scored at them. A variant whose hash the "
    "algorithm discards is a miss; variants are in no collision count. Unpaired: variants whose "
    "original or own hash is missing (listed in results.json)."
)


def _at(cell: Cell, where: str, bad: bool = False) -> Cell:
    """A rate cell whose note starts with the threshold it was read at."""
    return Cell(cell.text, "rate", f"{where}: {cell.note}" if cell.note else where, bad)


def chosen_cell(entry: dict[str, Any] | None) -> Cell:
    """A variant TPR at a chosen threshold: the rate, with the threshold and, when the choice
    is not ok, its status in the note."""
    if entry is None:
        return rate(None)
    where = "none" if entry["threshold"] is None else f"≤{entry['threshold']}"
    flag = "" if entry["status"] == "ok" else f" {entry['status']}"
    return _at(rate(entry["tpr"]), where + flag, entry["status"] != "ok")


def _targets(found: list[dict[str, Any]]) -> list[float]:
    return list(dict.fromkeys(c["target_fpr"] for r in found for c in r.get("chosen", [])))


def table(result: dict[str, Any]) -> Table | None:
    """The report table: per algorithm and kind, the TPR with interval and count at the first
    given threshold and at each chosen one, and the variants that could not be paired."""
    found = (result.get("variants") or {}).get("rows", [])
    if not found:
        return None
    first = {a["id"]: a["thresholds"][0] for a in result["algorithms"]}
    targets = _targets(found)
    out = []
    for r in found:
        chosen = {c["target_fpr"]: c for c in r.get("chosen", [])}
        given = metric(r, "tpr", first[r["algorithm"]])
        unpaired = len(r["positives"]["unpaired"])
        out.append(
            [
                code(r["transform"]),
                code(r["algorithm"]),
                _at(rate(given), f"≤{first[r['algorithm']]}"),
                *[chosen_cell(chosen.get(f)) for f in targets],
                text(unpaired, bad=unpaired > 0),
            ]
        )
    notes = [
        f"{r['algorithm']} {r['transform']}: {m['variant']} of {m['original']} escaped at "
        f"{m['distance']} bits"
        for r in found
        for m in r["misses"][:10]
        if m["distance"] > first[r["algorithm"]]
    ]
    return Table(
        header(
            "variants",
            "algorithm",
            "TPR at the given threshold",
            *[f"TPR at the threshold chosen for FPR ≤ {f:g}" for f in targets],
            "unpaired",
        ),
        out,
        notes=notes,
    )


def by_kind(result: dict[str, Any], algorithm: str, target_fpr: float) -> dict[str, Cell]:
    """Per variant row name, ``algorithm``'s variant TPR at the threshold chosen for
    ``target_fpr`` (what the Thresholds section shows beside the held-out synthetic rates)."""
    out = {}
    for r in (result.get("variants") or {}).get("rows", []):
        if r["algorithm"] == algorithm:
            entry = next((c for c in r.get("chosen", []) if c["target_fpr"] == target_fpr), None)
            out[r["transform"]] = rate(entry["tpr"]) if entry else rate(None)
    return out


def names(result: dict[str, Any]) -> list[str]:
    """The variant row names of a document, in row order (empty without variants)."""
    rows = (result.get("variants") or {}).get("rows", [])
    return list(dict.fromkeys(r["transform"] for r in rows))
