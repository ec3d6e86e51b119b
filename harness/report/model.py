"""What a report shows, as data: tables and boxes built once from the results document and
rendered by both the Markdown and the HTML report (and plain text on a terminal).

Cells carry raw strings and a kind; each renderer escapes for its own format (Markdown escapes,
Jinja2 autoescaping), so no builder here ever produces markup. Everything is read from the
results document; nothing is recomputed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.core.words import plural

Kind = Literal["text", "code", "num", "rate"]


@dataclass(frozen=True)
class Cell:
    """One table cell: ``text`` is the value; ``note`` is secondary detail (interval and count)
    shown smaller in HTML; ``bad`` marks a value the reader must not miss."""

    text: str
    kind: Kind = "text"
    note: str = ""
    bad: bool = False


@dataclass(frozen=True)
class Table:
    """A header and rows of cells; ``title`` is the id-free caption above it, if any."""

    header: list[Cell]
    rows: list[list[Cell]]
    title: str = ""
    notes: list[str] = field(default_factory=list)


def text(value: Any, bad: bool = False) -> Cell:
    return Cell(str(value), "text", bad=bad)


def code(value: Any) -> Cell:
    return Cell(str(value), "code")


def num(value: Any) -> Cell:
    return Cell(str(value), "num")


def rate(metric: dict[str, Any] | None, small: bool = False) -> Cell:
    """``0.94 [0.71, 1.00] (16/17)`` as value + note; small rates in scientific notation."""
    if metric is None:
        return Cell("n/a", "rate")
    if metric.get("value") is None:
        return Cell("n/a", "rate", f"({metric.get('n', 0)} pairs)")
    spec = ".2g" if small else ".2f"
    lo, hi = metric["ci95"]
    return Cell(
        f"{metric['value']:{spec}}",
        "rate",
        f"[{lo:{spec}}, {hi:{spec}}] ({metric['k']}/{metric['n']})",
    )


def header(*names: str | Cell) -> list[Cell]:
    """Column heads: the harness's own words (not escaped like user text) or cells."""
    return [n if isinstance(n, Cell) else num(n) for n in names]


# -- lookups ---------------------------------------------------------------------------------


def metric(cell: dict[str, Any], name: str, threshold: int, **params: Any) -> dict[str, Any] | None:
    """The metric ``name`` at ``threshold`` with exactly the extra ``params`` (e.g. protocol)."""
    want = {"threshold": threshold, **params}
    return next((m for m in cell["metrics"] if m["name"] == name and m["params"] == want), None)


def labels(result: dict[str, Any]) -> dict[str, str]:
    return {t["id"]: t.get("label") or t["id"] for t in result["transforms"]}


def short_reason(reason: str) -> str:
    """The first clause of an exclusion reason: "PDQ quality 34 is below the gate 50"."""
    return reason.split(" (", 1)[0]


# -- sections shared by every format ---------------------------------------------------------


#: Images named per algorithm in exclusion lines; the rest are counted.
NAMED = 10


def run_counts(result: dict[str, Any]) -> str:
    """The header's counts: images evaluated, transforms, algorithms, failure records."""
    dataset, fails = result["dataset"], result["failures"]
    variants = sum(1 for f in fails if f.get("variant_of"))
    return (
        f"{dataset['n_evaluated']} of {plural(dataset['n_images'], 'image')} evaluated, "
        f"{plural(len(result['transforms']), 'transform')}, "
        f"{plural(len(result['algorithms']), 'algorithm')}, "
        f"{plural(len(fails), 'failure record')}"
        + (f", {variants} of them real variants" if variants else "")
    )


def exclusions(result: dict[str, Any]) -> list[str]:
    """One line per algorithm that left images out by its own rule, naming them, e.g.
    ``pdq: clock excluded (PDQ quality 34 is below the gate 50), with its 14 edited copies:
    left out of n; 1 edited copy of included images gated, counted as misses``."""
    by_algo: dict[str, dict[str, str]] = {}
    for e in result.get("exclusions", []):
        if e.get("transform", "original") == "original":
            by_algo.setdefault(e["algorithm"], {})[e["image"]] = short_reason(e["reason"])
    # Gated copies: those of an excluded original are out of n with it; of an included
    # original (or a real variant's) they stay in n as misses.
    with_original: dict[str, int] = {}
    misses: dict[str, int] = {}
    variants: dict[str, int] = {}
    for e in result.get("exclusions", []):
        a = e["algorithm"]
        if e.get("transform", "original") == "original":
            continue
        if e.get("variant_of"):
            variants[a] = variants.get(a, 0) + 1
        elif e["image"] in by_algo.get(a, {}):
            with_original[a] = with_original.get(a, 0) + 1
        else:
            misses[a] = misses.get(a, 0) + 1
    lines = []
    for a in [x["id"] for x in result["algorithms"]]:
        images = by_algo.get(a, {})
        parts = [f"{image} excluded ({reason})" for image, reason in list(images.items())[:NAMED]]
        if len(images) > NAMED:
            parts.append(f"{len(images) - NAMED} more images (all in results.json, exclusions)")
        if images:
            copies = with_original.get(a, 0)
            parts[-1] += (
                f", with {'its' if len(images) == 1 else 'their'} "
                f"{plural(copies, 'edited copy', 'edited copies')}"
                if copies
                else ""
            ) + ": left out of n"
        if misses.get(a):
            parts.append(
                f"{plural(misses[a], 'edited copy', 'edited copies')} of included images gated, "
                "counted as misses"
            )
        if variants.get(a):
            parts.append(f"{plural(variants[a], 'real variant')} gated, counted as misses")
        if parts:
            lines.append(f"{a}: " + "; ".join(parts))
    by_reason: dict[str, list[str]] = {}
    for e in result["dataset"].get("excluded", []):
        by_reason.setdefault(e["reason"], []).append(e["id"])
    if by_reason:
        lines.append(
            "corpus (left out before any hashing): "
            + "; ".join(f"{_some(ids)} ({reason})" for reason, ids in by_reason.items())
        )
    return lines


#: The answer box lists this many families' worst held-out edits, worst first.
WORST_EDITS = 4
#: The answer box's worst edits when every held-out edited copy matched.
NO_MISSES = "none: every held-out edited copy matched"


@dataclass(frozen=True)
class Answer:
    """The top box for one algorithm: what to deploy and what the corpus cannot tell."""

    algorithm: str
    threshold: str
    fpr: Cell
    tpr: Cell
    worst_edits: list[tuple[str, Cell]]
    excluded: str
    cannot: list[str]


def answers(result: dict[str, Any]) -> list[Answer]:
    """Per algorithm: the threshold recommended at the first target FPR (chosen on calibration
    images), its held-out FPR and pooled TPR, the worst held-out edit of each family, excluded
    images and the claims the corpus cannot support. Further targets are in the thresholds
    table."""
    family = {t: f["family"] for f in result.get("edit_families", []) for t in f["transforms"]}
    names = labels(result)
    excluded: dict[str, list[str]] = {}
    for e in result.get("exclusions", []):
        if e.get("transform", "original") == "original":
            excluded.setdefault(e["algorithm"], []).append(e["image"])
    n_neg = {
        c["algorithm"]: c["n_pairs"]
        for c in result["collisions"]
        if c["protocol"] == "originals_all_pairs"
    }
    out = []
    for rec in result.get("recommendations", []):
        a = rec["algorithm"]
        if not rec["targets"]:
            continue
        t = rec["targets"][0]
        ho = t["held_out"]
        worst: dict[str, dict[str, Any]] = {}
        for r in ho["tpr"]:
            fam = family.get(r["transform"], r["transform"])
            if r.get("value") is None or r["k"] == r["n"]:  # a perfect edit is no worst edit
                continue
            if fam not in worst or r["value"] < worst[fam]["value"]:
                worst[fam] = r
        cannot = []
        if t["status"] != "ok":
            cannot.append(
                f"FPR {t['target_fpr']:g}: needs {math.ceil(3 / t['target_fpr']):,} negative pairs "
                f"per split, has {t['calibration']['negatives']:,} / {ho['negatives']:,}"
            )
        n = n_neg.get(a, 0)
        if n:
            cannot.append(
                f"any FPR below 1/{n:,} = {1 / n:.2g}: only {n:,} pairs of different originals"
            )
        out.append(
            Answer(
                algorithm=a,
                threshold=(
                    f"≤{t['threshold']}" if t["threshold"] is not None else "none (matches nothing)"
                )
                + f" at target FPR {t['target_fpr']:g} ({t['status']})",
                fpr=rate(ho["fpr"], small=True),
                tpr=rate(ho["tpr_pooled"]),
                worst_edits=[
                    (names.get(r["transform"], r["transform"]), rate(r))
                    for r in sorted(worst.values(), key=lambda r: r["value"])[:WORST_EDITS]
                ],
                excluded=_some(excluded.get(a, [])),
                cannot=cannot,
            )
        )
    return out


def _some(names: list[str]) -> str:
    if not names:
        return "none"
    more = f" and {len(names) - NAMED} more" if len(names) > NAMED else ""
    return ", ".join(names[:NAMED]) + more


def robustness_table(result: dict[str, Any]) -> Table:
    algos = {a["id"]: a for a in result["algorithms"]}
    by = {(c["algorithm"], c["transform"]): c for c in result["cells"]}
    rows = []
    for t in result["transforms"]:
        row = [code(t.get("label") or t["id"])]
        for a, meta in algos.items():
            cell = by.get((a, t["id"]))
            row.append(rate(metric(cell, "tpr", meta["thresholds"][0]) if cell else None))
        rows.append(row)
    return Table(
        header("transform", *[Cell(a, "code", f"≤{m['thresholds'][0]}") for a, m in algos.items()]),
        rows,
    )


def threshold_meanings(result: dict[str, Any]) -> list[str]:
    """What the threshold in use means for each algorithm whose distance is a grid of levels
    rather than bits (a fusion: "``pdq & phash`` <= 40: ... pdq <= 40 and phash <= 10"), when
    it is the algorithm's own default (its ``operating_thresholds`` source says it)."""
    out = []
    for a in result["algorithms"]:
        if a.get("level_unit", "bits") == "bits" or not a["thresholds"]:
            continue
        used = a["thresholds"][0]
        source = next(
            (o["source"] for o in a.get("operating_thresholds", []) if o["bits"] == used), None
        )
        if source:
            out.append(f"{a['id']} <= {used}: {source}")
    return out


def distances_table(result: dict[str, Any]) -> Table:
    algos = {a["id"]: a for a in result["algorithms"]}
    by = {(c["algorithm"], c["transform"]): c for c in result["cells"]}
    rows = []
    for t in result["transforms"]:
        row = [code(t.get("label") or t["id"])]
        for a in algos:
            s = by[(a, t["id"])]["positives"]["summary"] if (a, t["id"]) in by else {"n": 0}
            row.append(num("n/a" if s["n"] == 0 else f"{s['median']} / {s['max']}"))
        rows.append(row)
    return Table(
        header("transform", *[Cell(a, "code", f"/{m['n_bits']}") for a, m in algos.items()]), rows
    )


def _threshold_cell(threshold: int | None, status: str, note: str = "") -> Cell:
    """A threshold (``none`` when nothing matches) with its status when it is not ok."""
    shown = "none" if threshold is None else str(threshold)
    flag = "" if status == "ok" else status
    return Cell(shown, "num", " ".join(x for x in (note, flag) if x), status != "ok")


def cpu_cost(run: dict[str, Any] | None) -> dict[str, Cell]:
    """Per algorithm, CPU milliseconds per image (one hash call: median, p95 and hashes per
    CPU-second in the note) from a ``run`` block; "not measured" when the run timed none."""
    rows = (run or {}).get("cost", {}).get("algorithms", [])
    out = {}
    for r in rows:
        if r.get("status") != "measured":
            out[r["algorithm"]] = Cell(r.get("status", "not measured"), "num")  # own words
            continue
        speed = r.get("hashes_per_cpu_s")
        note = f"p95 {r['p95_ms']:.3g} ms" + (f", {speed:,.0f}/CPU-s" if speed else "")
        out[r["algorithm"]] = Cell(f"{r['median_ms']:.3g}", "num", f"{note}, n={r['n']:,}")
    return out


def leaderboard_table(result: dict[str, Any]) -> Table | None:
    lb = result.get("leaderboard")
    if not lb or not lb["rows"]:
        return None
    fams = lb["families"]
    with_flagged = any("flagged" in r for r in lb["rows"])
    cost = cpu_cost(result.get("run"))
    # Real variants: columns of their own after the edit families, all variants scored.
    real = list(dict.fromkeys(k for r in lb["rows"] for k in r.get("variants") or {}))
    rows = [
        [
            code(r["algorithm"]),
            _threshold_cell(r["threshold"], r["status"]),
            rate(r["fpr"], small=True),
            *([flagged(r.get("flagged"))] if with_flagged else []),
            cost.get(r["algorithm"], Cell("not measured", "num")),
            *[rate(r["tpr"][f]) for f in fams],
            *[rate((r.get("variants") or {}).get(v)) for v in real],
        ]
        for r in lb["rows"]
    ]
    extra = ["uploads flagged"] if with_flagged else []
    return Table(
        header(
            "algorithm",
            "threshold",
            "held-out FPR",
            *extra,
            "CPU ms/image",
            *[code(f) for f in fams],
            *[Cell(v, "code", REAL) for v in real],
        ),
        rows,
    )


#: What marks a real-variant column beside the synthetic edits' columns.
REAL = "(real variants, all)"


def threshold_reasons(result: dict[str, Any]) -> list[tuple[str, float, str]]:
    """``(algorithm, target, reason)`` for every target whose status is not ok (plain text)."""
    from harness.report.markdown import why

    return [
        (rec["algorithm"], t["target_fpr"], why(t, str))
        for rec in result.get("recommendations", [])
        for t in rec["targets"]
        if t["status"] != "ok"
    ]


def flagged(at: dict[str, Any] | None) -> Cell:
    """The share of uploads flagged at a database size: value, interval and whether it was
    measured or model-based, or "unresolved"."""
    if not at:
        return text("n/a")
    size = f"D = {at['database_size']:.3g}"
    if at["kind"] == "unresolved":
        return Cell("unresolved", "text", size, bad=True)
    lo, hi = at["ci95"]
    kind = "measured" if at["kind"] == "measured" else "model-based"
    return Cell(f"{at['share']:.3g}", "num", f"[{lo:.3g}, {hi:.3g}] at {size}, {kind}")


def collisions_table(result: dict[str, Any]) -> Table:
    algos = {a["id"]: a for a in result["algorithms"]}
    protocols = list(result["protocols"])
    by_algo: dict[str, dict[str, dict[str, Any]]] = {}
    for coll in result["collisions"]:
        by_algo.setdefault(coll["algorithm"], {})[coll["protocol"]] = coll
    rows = []
    for a, colls in by_algo.items():
        base = colls["originals_all_pairs"]
        s = base["summary"]
        for th in algos[a]["thresholds"]:
            rows.append(
                [
                    code(a),
                    num(f"≤{th} of {base['n_bits']}"),
                    num("n/a" if s["n"] == 0 else f"{s['mean']:.1f} / {s['min']}"),
                    *[
                        rate(metric(colls[p], "fpr", th), small=True) if p in colls else rate(None)
                        for p in protocols
                    ],
                ]
            )
    return Table(
        header("algorithm", "threshold", "mean / min distance", *[code(p) for p in protocols]), rows
    )


def thresholds_table(result: dict[str, Any]) -> Table:
    """One row per algorithm and distinct answer: targets that lead to the same threshold,
    status and held-out rates share a row instead of repeating it. Real variants, when the
    dataset has some, get a column per kind: their TPR at the chosen threshold (every variant;
    none informed the choice)."""
    from harness.report.variants import by_kind, names

    kinds = names(result)
    rows = []
    for rec in result.get("recommendations", []):
        merged: list[tuple[list[str], dict[str, Any]]] = []
        for t in rec["targets"]:
            key = _answer_key(t)
            if merged and _answer_key(merged[-1][1]) == key:
                merged[-1][0].append(f"{t['target_fpr']:g}")
            else:
                merged.append(([f"{t['target_fpr']:g}"], t))
        for targets, t in merged:
            ho = t["held_out"]
            lo, hi = t.get("threshold_ci95", [None, None])
            shown = t["threshold"] is not None and lo is not None and hi is not None
            boot = f"[{lo:g}, {hi:g}]" if shown else ""
            real = by_kind(result, rec["algorithm"], t["target_fpr"])
            rows.append(
                [
                    code(rec["algorithm"]),
                    num(", ".join(targets)),
                    text(t["status"], bad=t["status"] != "ok"),
                    _threshold_cell(t["threshold"], "ok", boot),
                    _with_bootstrap(rate(ho["tpr_pooled"]), ho["tpr_pooled"]),
                    rate(ho["fpr"], small=True),
                    num(f"{t['calibration']['negatives']:,} / {ho['negatives']:,}"),
                    *[real.get(v, rate(None)) for v in kinds],
                ]
            )
    return Table(
        header(
            "algorithm",
            "target FPR",
            "status",
            "threshold [boot 95%]",
            "held-out TPR (edits pooled)",
            "held-out FPR",
            "negatives cal. / held-out",
            *[Cell(v, "code", REAL) for v in kinds],
        ),
        rows,
    )


def fixed_thresholds_table(result: dict[str, Any]) -> Table | None:
    """The suite's given thresholds scored on every image (what `threshold --at T` prints)."""
    rows = [
        [
            code(rec["algorithm"]),
            num(f"≤{f['threshold']}"),
            _with_bootstrap(rate(f["tpr_pooled"]), f["tpr_pooled"]),
            _with_bootstrap(rate(f["fpr"], small=True), f["fpr"]),
            num(str(f["tpr_pooled"].get("gated", 0))),
        ]
        for rec in result.get("recommendations", [])
        for f in rec.get("fixed", [])
    ]
    if not rows:
        return None
    return Table(
        header(
            "algorithm",
            "threshold",
            "TPR (edits pooled)",
            "FPR originals_all_pairs",
            "gated copies (misses)",
        ),
        rows,
    )


def _with_bootstrap(cell: Cell, m: dict[str, Any]) -> Cell:
    lo, hi = m.get("bootstrap_ci95") or (None, None)
    if lo is None or hi is None:
        return cell
    return Cell(cell.text, cell.kind, f"{cell.note} boot [{lo:.2f}, {hi:.2f}]", cell.bad)


def _answer_key(t: dict[str, Any]) -> tuple[Any, ...]:
    ho = t["held_out"]
    return (
        t["threshold"],
        t["status"],
        ho["fpr"]["k"],
        ho["fpr"]["n"],
        ho["tpr_pooled"]["k"],
        ho["tpr_pooled"]["n"],
    )


def curves_table(result: dict[str, Any]) -> Table | None:
    curves = result.get("curves", [])
    if not curves:
        return None
    rows = []
    for c in curves:
        if c.get("status") != "ok":
            rows.append([code(c["algorithm"]), *[num("n/a")] * 3])
            continue
        at90 = next((x for x in c["fpr_at_tpr"] if x["target_tpr"] == 0.9), None)
        fpr90 = rate(at90["fpr"], small=True) if at90 else rate(None)
        if at90 and at90["threshold"] is not None:
            fpr90 = Cell(fpr90.text, "rate", f"{fpr90.note} at ≤{at90['threshold']}")
        elif at90:
            fpr90 = text(at90["status"], bad=True)
        rows.append(
            [
                code(c["algorithm"]),
                num(f"{c['auc']:.4f}"),
                num(
                    f"{c['eer']['value']:.3f} (≤"
                    f"{'none' if c['eer']['threshold'] is None else c['eer']['threshold']})"
                ),
                fpr90,
            ]
        )
    return Table(header("algorithm", "AUC", "EER (threshold)", "FPR at TPR 0.9"), rows)


def precision_table(result: dict[str, Any]) -> Table | None:
    """Precision at the suite's base rates (share of checked pairs that are true copies)."""
    rows = []
    rates: list[float] = []
    for c in result.get("curves", []):
        for p in c.get("precision", []):
            if p["base_rate"] not in rates:
                rates.append(p["base_rate"])
    for c in result.get("curves", []):
        by_rate = {p["base_rate"]: p for p in c.get("precision", [])}
        if not by_rate:
            continue
        th = next(iter(by_rate.values()))["threshold"]
        cells = []
        for b in rates:
            p = by_rate.get(b)
            if p is None or p["value"] is None:
                cells.append(num("n/a"))
            else:
                lo, hi = p["ci95"]
                cells.append(Cell(f"{p['value']:.3g}", "rate", f"[{lo:.2g}, {hi:.2g}]"))
        rows.append([code(c["algorithm"]), num(f"≤{th}"), *cells])
    if not rows:
        return None
    return Table(header("algorithm", "threshold", *[f"base rate {b:g}" for b in rates]), rows)


def quality_table(result: dict[str, Any]) -> Table | None:
    quality = result.get("quality", [])
    if not quality:
        return None
    rows = []
    for q in quality:
        if q.get("status") == "undefined":
            rows.append([code(q["algorithm"]), *[num("n/a")] * 7])
            continue
        d = q["distances"]
        if "bit_balance" not in q:  # compared by a score, not a bit string
            mean = "n/a" if d["mean"] is None else f"{d['mean']:.1f} (levels)"
            groups = f"- / {q['identical_hash_groups']['count']}"
            rows.append(
                [
                    code(q["algorithm"]),
                    num(q["n_hashes"]),
                    num(mean),
                    *[num("n/a")] * 4,
                    num(groups),
                ]
            )
            continue
        bal = q["bit_balance"]
        corr = q.get("bit_correlation", {})
        rows.append(
            [
                code(q["algorithm"]),
                num(q["n_hashes"]),
                num("n/a" if d["mean"] is None else f"{d['mean']:.1f} (ideal {d['ideal_mean']:g})"),
                num("n/a" if d["sd"] is None else f"{d['sd']:.1f} (ideal {d['ideal_sd']:.1f})"),
                num("n/a" if d["ks_distance"] is None else f"{d['ks_distance']:.3f}"),
                num(f"{bal['mean_abs_deviation']:.3f}, {len(bal['constant_bits'])} constant"),
                num(f"{corr['max_abs']:.2f}" if corr else "n/a"),
                num(f"{len(q.get('degenerate', []))} / {q['identical_hash_groups']['count']}"),
            ]
        )
    return Table(
        header(
            "algorithm",
            "hashes",
            "mean distance",
            "sd",
            "KS",
            "bit balance",
            "max bit corr.",
            "degenerate / identical groups",
        ),
        rows,
    )


def failures_table(result: dict[str, Any]) -> Table | None:
    fails = result["failures"]
    if not fails:
        return None
    # Real variants that failed say whose re-upload they are (their row names the kind).
    of = any(f.get("variant_of") for f in fails)
    return Table(
        header(
            "image", *(["variant of"] if of else []), "stage", "transform", "algorithm", "reason"
        ),
        [
            [
                text(f["image"]),
                *([text(f.get("variant_of", ""))] if of else []),
                text(f["stage"]),
                code(f["transform"]) if f.get("transform") else text(""),
                code(f["algorithm"]) if f.get("algorithm") else text(""),
                text(f["error"]),
            ]
            for f in fails
        ],
    )
