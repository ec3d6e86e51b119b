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


def _metric(cell: dict[str, Any], name: str, threshold: int) -> dict[str, Any]:
    for m in cell["metrics"]:
        if m["name"] == name and m["params"]["threshold"] == threshold:
            return m
    raise KeyError(f"{name}@{threshold} missing for {cell['algorithm']} / {cell['transform']}")


def render_markdown(result: dict[str, Any]) -> str:
    """The whole report as one Markdown string."""
    suite, dataset, env = result["suite"], result["dataset"], result["environment"]
    algos = {a["id"]: a for a in result["algorithms"]}
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
        row = [code(t["id"])]
        for a in algos:
            cell = by_transform[t["id"]][a]
            row.append(fmt_rate(_metric(cell, "tpr", algos[a]["thresholds"][0])))
        rows.append(row)
    out += _table(header, rows)

    out += ["", "### Distances of edited copies to their original (median / max bits)", ""]
    header = ["transform", *[f"{code(a)} /{algos[a]['n_bits']}" for a in algos]]
    rows = []
    for t in result["transforms"]:
        row = [code(t["id"])]
        for a in algos:
            s = by_transform[t["id"]][a]["positives"]["summary"]
            row.append("n/a" if s["n"] == 0 else f"{s['median']} / {s['max']}")
        rows.append(row)
    out += _table(header, rows)

    # -- collisions ---------------------------------------------------------------------------
    out += ["", "## Collisions: different images that match", ""]
    out.append(
        "`originals_all_pairs`: every unordered pair of distinct originals. "
        "`edited_vs_other_originals`: each edited copy against every *other* original, pooled "
        "over all edits (the upload-vs-database case). Pairs share images, so the intervals, "
        "which assume independent pairs, are optimistic; with n pairs no FPR much below 3/n "
        "can be claimed."
    )
    out.append("")
    header = [
        "algorithm",
        "threshold",
        "images",
        "mean / min distance",
        "FPR originals_all_pairs",
        "FPR edited_vs_other_originals",
    ]
    rows = []
    sweeps = {s["algorithm"]: s for s in result.get("sweeps", [])}
    for coll in result["collisions"]:
        a = coll["algorithm"]
        s = coll["summary"]
        for m in coll["metrics"]:
            th = m["params"]["threshold"]
            edited = sweeps[a]["edited_vs_other_originals"][th] if a in sweeps else None
            rows.append(
                [
                    code(a),
                    f"≤{th} of {coll['n_bits']}",
                    str(coll["n_images"]),
                    "n/a" if s["n"] == 0 else f"{s['mean']:.1f} / {s['min']}",
                    fmt_small_rate(m),
                    fmt_small_rate(edited) if edited else "n/a",
                ]
            )
    out += _table(header, rows)
    colliding = [(c["algorithm"], p) for c in result["collisions"] for p in c["closest_pairs"]]
    if colliding:
        out += ["", "Colliding original pairs (closest first):", ""]
        out += [
            f"- {code(a)}: {esc(p['a'])} ↔ {esc(p['b'])} at {p['distance']} bits"
            for a, p in colliding
        ]

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
            ([code(a), code(t), esc(m["image"]), str(m["distance"])] for a, t, m in misses[:60]),
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
    if dataset.get("excluded"):
        out += ["", "Excluded from the corpus:", ""]
        out += [f"- {esc(e['id'])}: {esc(e['reason'])}" for e in dataset["excluded"]]
    return "\n".join(out).rstrip("\n") + "\n"
