"""Markdown summary of a run: readable in a terminal, a CI log or a pull-request comment.

Everything shown is read from the results document; nothing is recomputed. Strings that come from
users (file names, suite names, error messages) are escaped so they cannot break a table or inject
markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def esc(text: Any) -> str:
    """Escape Markdown/HTML-significant characters and flatten newlines."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")


def code(text: Any) -> str:
    """Inline code span that survives backticks and pipes inside ``text``."""
    s = str(text).replace("|", "\\|").replace("\n", " ")
    fence = "``" if "`" in s else "`"
    return f"{fence}{s}{fence}" if fence == "`" else f"{fence} {s} {fence}"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def fmt_rate(metric: dict[str, Any], digits: int = 2) -> str:
    """``0.94 [0.71, 1.00] (16/17)``; ``n/a (0 pairs)`` when undefined."""
    if metric["value"] is None:
        return f"n/a ({metric['n']} pairs)"
    lo, hi = metric["ci95"]
    return (
        f"{metric['value']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] "
        f"({metric['k']}/{metric['n']})"
    )


def fmt_small_rate(metric: dict[str, Any]) -> str:
    """Rates near zero in scientific notation, with the exact upper bound."""
    if metric["value"] is None:
        return f"n/a ({metric['n']} pairs)"
    lo, hi = metric["ci95"]
    return f"{metric['value']:.2g} [{lo:.2g}, {hi:.2g}] ({metric['k']}/{metric['n']})"


def _metric(cell: dict[str, Any], name: str, threshold: int, **params: Any) -> dict[str, Any]:
    """The metric ``name`` at ``threshold`` with exactly the extra ``params`` (e.g. protocol)."""
    want = {"threshold": threshold, **params}
    for m in cell["metrics"]:
        if m["name"] == name and m["params"] == want:
            return m
    raise KeyError(f"{name}@{threshold} missing for {cell['algorithm']} / {cell['transform']}")


def render_markdown(result: dict[str, Any]) -> str:
    """The whole report as one Markdown string."""
    suite, dataset, env = result["suite"], result["dataset"], result["environment"]
    algos = {a["id"]: a for a in result["algorithms"]}
    names = {t["id"]: t.get("label") or t["id"] for t in result["transforms"]}
    status = result.get("status", {})
    out: list[str] = []
    out.append(
        f"# hash-harness report: suite {esc(suite['name'])} v{suite['version']} "
        f"on {esc(dataset['name'])}"
    )
    out.append("")
    verdict = "OK" if status.get("ok", True) else "FAILED (too many image failures)"
    out.append(
        f"**{verdict}** - {dataset['n_evaluated']} of {dataset['n_images']} images evaluated, "
        f"{len(result['transforms'])} transforms, {len(algos)} algorithms, "
        f"{len(result['failures'])} failure records "
        f"(failure rate {status.get('failure_rate', 0):.3f}, allowed "
        f"{status.get('max_failure_rate', 0):.3f})."
    )
    pkgs = env["packages"]
    out.append("")
    out.append(
        f"Environment: Python {env['python']} on {env['platform']} {env['machine']}; "
        + ", ".join(f"{k} {v}" for k, v in pkgs.items())
        + f"; libjpeg-turbo {env['codecs'].get('libjpeg_turbo')}. "
        f"Suite sha256 `{suite['config_sha256'][:12]}`, seed {result['seed']}."
    )
    out.append("")
    out.append(
        "A pair **matches** when its Hamming distance is at most the threshold. Rates are "
        "fractions with a 95% Clopper-Pearson interval and the count (k/n) beside them."
    )

    # -- robustness overview -----------------------------------------------------------------
    out += ["", "## Robustness: true-match rate (TPR) of edited copies against their original", ""]
    header = ["transform", *[f"{code(a)} ≤{algos[a]['thresholds'][0]}" for a in algos]]
    by_transform: dict[str, dict[str, dict[str, Any]]] = {}
    for cell in result["cells"]:
        by_transform.setdefault(cell["transform"], {})[cell["algorithm"]] = cell
    rows = []
    for t in result["transforms"]:
        row = [code(t.get("label") or t["id"])]
        for a in algos:
            cell = by_transform[t["id"]][a]
            row.append(fmt_rate(_metric(cell, "tpr", algos[a]["thresholds"][0])))
        rows.append(row)
    out += _table(header, rows)

    out += ["", "### Distances of edited copies to their original (median / max bits)", ""]
    header = ["transform", *[f"{code(a)} /{algos[a]['n_bits']}" for a in algos]]
    rows = []
    for t in result["transforms"]:
        row = [code(t.get("label") or t["id"])]
        for a in algos:
            s = by_transform[t["id"]][a]["positives"]["summary"]
            row.append("n/a" if s["n"] == 0 else f"{s['median']} / {s['max']}")
        rows.append(row)
    out += _table(header, rows)

    # -- leaderboard (computed by the run) -----------------------------------------------------
    lb = result.get("leaderboard")
    if lb and lb["rows"]:
        fams = lb["families"]
        out += [
            "",
            f"## Leaderboard: TPR per transform family at false-match rate <= {lb['target_fpr']:g}",
            "",
        ]
        out.append(
            "Threshold = the largest whose FPR over distinct originals is at most the target "
            "(in-sample); **unresolved** = too few negative pairs to support the target."
        )
        out.append("")
        out += _table(
            ["algorithm", "threshold", *[code(f) for f in fams]],
            (
                [
                    code(r["algorithm"]),
                    f"{r['threshold']}" + ("" if r["resolved"] else " **unresolved**"),
                    *[fmt_rate(r["tpr"][f]) if r["tpr"][f] else "n/a" for f in fams],
                ]
                for r in lb["rows"]
            ),
        )

    # -- collisions ---------------------------------------------------------------------------
    out += ["", "## Collisions: different images that match", ""]
    out.append(
        "Negative protocols: "
        + "; ".join(f"{code(k)}: {esc(v)}" for k, v in result["protocols"].items())
        + ". Edited protocols pool every edit except identity. Pairs share images, so the "
        "intervals, which treat pairs as independent, are optimistic; with n pairs no FPR much "
        "below 3/n can be claimed."
    )
    out.append("")
    protocols = list(result["protocols"])
    header = ["algorithm", "threshold", "mean / min distance", *[code(p) for p in protocols]]
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
                    f"≤{th} of {base['n_bits']}",
                    "n/a" if s["n"] == 0 else f"{s['mean']:.1f} / {s['min']}",
                    *[
                        fmt_small_rate(_metric(colls[p], "fpr", th)) if p in colls else "n/a"
                        for p in protocols
                    ],
                ]
            )
    out += _table(header, rows)
    colliding = [
        (c["algorithm"], p) for c in result["collisions"] for p in c.get("closest_pairs", [])
    ]
    if colliding:
        out += ["", "Colliding original pairs (closest first):", ""]
        out += [
            f"- {code(a)}: {esc(p['a'])} ↔ {esc(p['b'])} at {p['distance']} bits"
            for a, p in colliding
        ]
    flagged = [
        (c["algorithm"], c["transform"], m)
        for c in result["cells"]
        for m in c.get("false_matches", [])
    ]
    if flagged:
        out += ["", "Edited copies whose closest *other* original matches (retrieval view):", ""]
        out += _table(
            ["algorithm", "transform", "edited copy of", "matched original", "distance"],
            (
                [
                    code(a),
                    code(names[t]),
                    esc(m["query"]),
                    esc(m["nearest_other"]),
                    str(m["distance"]),
                ]
                for a, t, m in flagged[:40]
            ),
        )
    out += _render_hygiene(result.get("hygiene"))
    out += _render_quality(result.get("quality", []))
    out += _render_recommendations(result.get("recommendations", []), result.get("curves", []))

    # -- sweep --------------------------------------------------------------------------------
    out += ["", "## Threshold sweep (describes the data; not a tuned recommendation)", ""]
    out.append(
        "TPR pools every edit except identity; FPR is over `originals_all_pairs`. Picking the "
        "best row of this table and quoting its TPR would be in-sample and optimistic."
    )
    for s in result.get("sweeps", []):
        n_bits = s["n_bits"]
        step = max(1, n_bits // 16)
        marks = set(range(0, n_bits // 2 + 1, step)) | set(algos[s["algorithm"]]["thresholds"])
        out += ["", f"**{code(s['algorithm'])}** ({n_bits} bits)", ""]
        out += _table(
            ["threshold", "TPR (edits pooled)", "FPR originals_all_pairs"],
            (
                [str(r["threshold"]), fmt_rate(r["tpr"]), fmt_small_rate(r["fpr"])]
                for r in s["rows"]
                if r["threshold"] in marks
            ),
        )

    # -- escapes ------------------------------------------------------------------------------
    misses = [
        (c["algorithm"], c["transform"], m) for c in result["cells"] for m in c.get("misses", [])
    ]
    if misses:
        out += ["", "## Edited copies that escaped (distance above the first threshold)", ""]
        out += _table(
            ["algorithm", "transform", "image", "distance"],
            (
                [code(a), code(names[t]), esc(m["image"]), str(m["distance"])]
                for a, t, m in misses[:60]
            ),
        )
        if len(misses) > 60:
            out.append(f"\n… and {len(misses) - 60} more in results.json.")

    # -- failures and exclusions -----------------------------------------------------------------
    out += ["", "## Failures", ""]
    if result["failures"]:
        out += _table(
            ["image", "stage", "transform", "algorithm", "reason"],
            (
                [
                    esc(f["image"]),
                    f["stage"],
                    code(f.get("transform", "")) if f.get("transform") else "",
                    code(f.get("algorithm", "")) if f.get("algorithm") else "",
                    esc(f["error"]),
                ]
                for f in result["failures"]
            ),
        )
    else:
        out.append("None.")
    exclusions = result.get("exclusions", [])
    if exclusions:
        out += [
            "",
            f"Hashes excluded by an algorithm's own rule ({len(exclusions)}; not failures):",
            "",
        ]
        excluded_by: dict[str, list[dict[str, Any]]] = {}
        for e in exclusions:
            excluded_by.setdefault(e["algorithm"], []).append(e)
        out += [
            f"- {code(a)}: {len(es)}, e.g. {esc(es[0]['reason'])}" for a, es in excluded_by.items()
        ]
    if dataset.get("excluded"):
        out += ["", "Excluded from the corpus:", ""]
        out += [f"- {esc(e['id'])}: {esc(e['reason'])}" for e in dataset["excluded"]]
    return "\n".join(out).rstrip("\n") + "\n"


def _render_hygiene(hygiene: dict[str, Any] | None) -> list[str]:
    if not hygiene:
        return []
    out = ["", "## Corpus hygiene (before any collision is counted)", ""]
    exact = hygiene.get("exact_duplicates", [])
    out.append(
        f"Exact pixel duplicates excluded: {len(exact)}"
        + (": " + ", ".join(f"{esc(d['image'])} = {esc(d['same_pixels_as'])}" for d in exact))
        * bool(exact)
        + "."
    )
    degenerate = hygiene.get("degenerate", [])
    if degenerate:
        out.append(
            f"Degenerate images flagged (kept, but expect them to collide): {len(degenerate)}: "
            + ", ".join(f"{esc(d['image'])} ({esc(d['reason'])})" for d in degenerate[:20])
            + "."
        )
    near = hygiene.get("near_duplicates")
    if near is None:
        out.append("Near-duplicate detection: off (set `[near_duplicates]` in the suite).")
    else:
        out.append(
            f"Near duplicates ({code(near['algorithm'])} within {near['max_distance']} bits): "
            f"{len(near['pairs'])} linking pairs in {len(near['groups'])} groups; pairs inside a "
            "group are never counted as negatives."
        )
        out += [
            f"- {esc(p['a'])} ↔ {esc(p['b'])} at {p['distance']} bits" for p in near["pairs"][:40]
        ]
    return out


def _render_quality(quality: list[dict[str, Any]]) -> list[str]:
    if not quality:
        return []
    out = ["", "## Hash quality over the evaluated originals", ""]
    out.append(
        "Ideal hash: independent fair bits, so distances between different images follow "
        "Binomial(n_bits, 1/2). KS = largest gap between the observed and ideal distance CDFs. "
        "Bit balance = mean |fraction of ones - 0.5| over bits."
    )
    out.append("")
    rows = []
    for q in quality:
        if q.get("status") == "undefined":
            rows.append([code(q["algorithm"]), *["n/a"] * 7])
            continue
        if "bit_balance" not in q:  # compared by a score, not a bit string
            d = q["distances"]
            mean = "n/a" if d["mean"] is None else f"{d['mean']:.1f} (levels)"
            groups = f"- / {q['identical_hash_groups']['count']}"
            rows.append([code(q["algorithm"]), str(q["n_hashes"]), mean, *["n/a"] * 4, groups])
            continue
        d, bal = q["distances"], q["bit_balance"]
        corr = q.get("bit_correlation", {})
        rows.append(
            [
                code(q["algorithm"]),
                str(q["n_hashes"]),
                "n/a" if d["mean"] is None else f"{d['mean']:.1f} (ideal {d['ideal_mean']:g})",
                "n/a" if d["sd"] is None else f"{d['sd']:.1f} (ideal {d['ideal_sd']:.1f})",
                "n/a" if d["ks_distance"] is None else f"{d['ks_distance']:.3f}",
                f"{bal['mean_abs_deviation']:.3f}, {len(bal['constant_bits'])} constant",
                f"{corr['max_abs']:.2f}" if corr else "n/a",
                f"{len(q['degenerate'])} / {q['identical_hash_groups']['count']}",
            ]
        )
    out += _table(
        [
            "algorithm",
            "hashes",
            "mean distance",
            "sd",
            "KS",
            "bit balance",
            "max bit corr.",
            "degenerate / identical groups",
        ],
        rows,
    )
    return out


def _fmt_ci(ci: list[float | None], digits: int = 2) -> str:
    if ci[0] is None or ci[1] is None:
        return "n/a"
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _render_recommendations(
    recommendations: list[dict[str, Any]], curves: list[dict[str, Any]]
) -> list[str]:
    if not recommendations and not curves:
        return []
    out = ["", "## Thresholds: chosen on calibration images, scored on held-out images", ""]
    out.append(
        "Source images are split once (seeded); the threshold is the largest whose calibration "
        "false-match rate (`originals_all_pairs`) is at most the target, and it is scored only on "
        "the held-out images. Bootstrap intervals resample source images. **unresolved** means the "
        "corpus has too few negative pairs (fewer than 3 / target) to support the target: the "
        "threshold shown is only the largest with no observed collision."
    )
    out.append("")
    rows = []
    for rec in recommendations:
        for t in rec["targets"]:
            ho = t["held_out"]
            lo, hi = t["threshold_ci95"]
            rows.append(
                [
                    code(rec["algorithm"]),
                    f"{t['target_fpr']:g}",
                    f"**{t['status']}**" if t["status"] != "ok" else "ok",
                    str(t["threshold"])
                    + (f" [{lo:g}, {hi:g}]" if lo is not None and hi is not None else ""),
                    fmt_rate(ho["tpr_pooled"])
                    + f" boot {_fmt_ci(ho['tpr_pooled']['bootstrap_ci95'])}",
                    fmt_small_rate(ho["fpr"]),
                    f"{t['calibration']['negatives']:,} / {ho['negatives']:,}",
                ]
            )
    out += _table(
        [
            "algorithm",
            "target FPR",
            "status",
            "threshold [boot 95%]",
            "held-out TPR (edits pooled)",
            "held-out FPR",
            "negatives cal. / held-out",
        ],
        rows,
    )
    if curves:
        out += ["", "Whole-corpus curves (edits pooled vs `originals_all_pairs`; in-sample):", ""]
        out += _table(
            ["algorithm", "AUC", "EER (threshold)", "FPR at TPR 0.9"],
            (
                [
                    code(c["algorithm"]),
                    f"{c['auc']:.4f}",
                    f"{c['eer']['value']:.3f} (≤{c['eer']['threshold']})",
                    next(
                        (
                            fmt_small_rate(x["fpr"]) + f" at ≤{x['threshold']}"
                            for x in c["fpr_at_tpr"]
                            if x["target_tpr"] == 0.9
                        ),
                        "n/a",
                    ),
                ]
                if c.get("status") == "ok"
                else [code(c["algorithm"]), "n/a", "n/a", "n/a"]
                for c in curves
            ),
        )
    return out


def render_threshold(doc: dict[str, Any]) -> str:
    """Markdown for one ``hash-harness threshold`` recommendation."""
    algo = doc["algorithm"]
    cal, ho = doc["calibration"], doc["held_out"]
    lo, hi = doc["threshold_ci95"]
    out = [
        f"# Threshold for {code(algo['id'])} at false-match rate {doc['target_fpr']:g}",
        "",
        f"Suite {esc(doc['suite']['name'])} v{doc['suite']['version']} on "
        f"{esc(doc['dataset']['name'])} ({doc['dataset']['n_evaluated']} images evaluated); "
        f"negatives: {code(doc['protocol'])}; {cal['images']} calibration and {ho['images']} "
        "held-out source images.",
        "",
        f"**Status: {doc['status']}** - {esc(doc['explanation'])}",
        "",
        f"- Threshold: **≤{doc['threshold']}** of {algo['n_bits']} "
        f"({algo.get('level_unit', 'bits')})"
        + (f" (bootstrap 95% over calibration images: {lo:g}..{hi:g})" if lo is not None else ""),
        f"- Calibration FPR at that threshold: {fmt_small_rate(cal['fpr'])}",
        f"- Held-out FPR: {fmt_small_rate(ho['fpr'])}, bootstrap "
        f"{_fmt_ci(ho['fpr']['bootstrap_ci95'], 3)}",
        f"- Held-out TPR, edits pooled: {fmt_rate(ho['tpr_pooled'])}, bootstrap "
        f"{_fmt_ci(ho['tpr_pooled']['bootstrap_ci95'])}",
    ]
    if doc["bootstrap"]["note"]:
        out.append(f"- Note: {esc(doc['bootstrap']['note'])}.")
    if doc["status"] != "ok":
        out.append(
            "- The threshold is only the largest with no more observed collisions than the target "
            "allows on this corpus; do not deploy it as a guarantee of the target rate."
        )
    out += ["", "Held-out TPR per edit (one pair per image; Clopper-Pearson):", ""]
    out += _table(["transform", "TPR"], ([code(t["transform"]), fmt_rate(t)] for t in ho["tpr"]))
    op = doc.get("operational")
    if op:
        inp = op["inputs"]
        out += ["", "## What this means in production", ""]
        out.append(
            f"Database of {inp['database_size']:,} hashes, {inp['uploads_per_day']:,} uploads per "
            f"day, held-out FPR {fmt_small_rate(inp['fpr'])}. Assumes {esc(op['assumptions'])}."
        )
        out.append("")
        labels = {
            "false_matches_per_day": "expected false matches per day",
            "p_upload_flagged": "probability an innocent upload is flagged",
            "flagged_uploads_per_day": "innocent uploads flagged per day",
            "p_account_flagged": (
                f"probability an innocent account with {inp['account_uploads']} uploads reaches "
                f"{inp['account_matches']} matches"
            ),
        }
        out += _table(
            ["quantity", "estimate", "95% interval"],
            (
                [labels[k], f"{v['value']:.3g}", f"{v['ci95'][0]:.3g} .. {v['ci95'][1]:.3g}"]
                for k, v in op["estimates"].items()
            ),
        )
    return "\n".join(out) + "\n"
