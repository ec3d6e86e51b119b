"""The HTML report: one self-contained file (inline SVG plots and PNG thumbnails, inline CSS, no
scripts, nothing fetched), readable on a laptop and printable.

Everything is read from the results document, including the galleries' thumbnails (picked and
rendered by the run, :mod:`harness.summaries`): a report can be rebuilt anywhere from
results.json alone. Every string that comes from a user (file names, suite names, error
messages, vendor labels) goes through :func:`html.escape`.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from harness.report import plots
from harness.summaries import family_of

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #555; font-size: 12px; } .bad { color: #b00020; font-weight: 600; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; } .plots > div { flex: 0 0 auto; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #ddd; padding: 6px; font-size: 11px; width: 340px; }
.card img { max-width: 160px; max-height: 160px; margin-right: 4px; }
code { background: #f6f6f6; padding: 0 3px; }
@media print { body { max-width: none; } h2 { page-break-before: always; } }
"""


def _fmt(m: dict[str, Any] | None, small: bool = False) -> str:
    if m is None or m.get("value") is None:
        return "n/a"
    lo, hi = m["ci95"]
    spec = ".2g" if small else ".2f"
    return f"{m['value']:{spec}} <span class=note>[{lo:{spec}}, {hi:{spec}}] ({m['k']}/{m['n']})</span>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already (escape user text before calling)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metric(
    cell: dict[str, Any], name: str, threshold: int, **params: Any
) -> dict[str, Any] | None:
    want = {"threshold": threshold, **params}
    return next((m for m in cell["metrics"] if m["name"] == name and m["params"] == want), None)


def render_html(result: dict[str, Any]) -> str:
    suite, dataset, env = result["suite"], result["dataset"], result["environment"]
    algos = [a["id"] for a in result["algorithms"]]
    meta = {a["id"]: a for a in result["algorithms"]}
    colour = plots.colours(algos)
    names = {t["id"]: t.get("label") or t["id"] for t in result["transforms"]}
    out: list[str] = []
    title = f"hash-harness report: {escape(suite['name'])} v{suite['version']} on {escape(dataset['name'])}"
    out.append(f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{title}</title>")
    out.append(f"<style>{CSS}</style></head><body><h1>{title}</h1>")
    status = result.get("status", {})
    verdict = "OK" if status.get("ok", True) else "<span class=bad>too many image failures</span>"
    out.append(
        f"<p><b>{verdict}</b> - {dataset['n_evaluated']} of {dataset['n_images']} images evaluated, "
        f"{len(result['transforms'])} transforms, {len(algos)} algorithms, "
        f"{len(result['failures'])} failure records, {len(result.get('exclusions', []))} exclusions. "
        "A pair matches when its distance is at most the threshold; every rate has its 95% "
        "Clopper-Pearson interval and count beside it.</p>"
    )

    # Summary: algorithm x transform
    out.append('<h2 id="summary">Robustness summary</h2>')
    header = [
        "transform",
        *[
            f"<span style='color:{colour[a]}'>&#9632;</span> <code>{escape(a)}</code> &le;{meta[a]['thresholds'][0]}"
            for a in algos
        ],
    ]
    by = {(c["algorithm"], c["transform"]): c for c in result["cells"]}
    rows = []
    for t in result["transforms"]:
        row = [f"<code>{escape(names[t['id']])}</code>"]
        for a in algos:
            cell = by.get((a, t["id"]))
            row.append(_fmt(_metric(cell, "tpr", meta[a]["thresholds"][0])) if cell else "n/a")
        rows.append(row)
    out.append(_table(header, rows))

    # Leaderboard (computed by the run: harness.summaries.leaderboard)
    lb = result.get("leaderboard")
    if lb:
        target, fams = lb["target_fpr"], lb["families"]
        out.append(
            f'<h2 id="leaderboard">Leaderboard: TPR at false-match rate &le; {target:g}</h2>'
        )
        out.append(
            "<p class=note>Threshold per algorithm = the largest whose observed FPR over distinct "
            "originals is at most the target (in-sample; see Thresholds for the held-out version). "
            "<b>unresolved</b>: too few negative pairs to support the target.</p>"
        )
        out.append(
            _table(
                ["algorithm", "threshold", "FPR", *[f"<code>{escape(f)}</code>" for f in fams]],
                [
                    [
                        f"<code>{escape(r['algorithm'])}</code>",
                        str(r["threshold"])
                        + ("" if r["resolved"] else " <span class=bad>unresolved</span>"),
                        _fmt(r["fpr"], small=True),
                        *[_fmt(r["tpr"][f]) for f in fams],
                    ]
                    for r in lb["rows"]
                ],
            )
        )

    # Severity curves per family
    out.append('<h2 id="robustness">Robustness vs severity</h2><div class=plots>')
    families: dict[str, list[dict[str, Any]]] = {}
    for t in result["transforms"]:
        if t["id"] != "identity":
            families.setdefault(family_of(t), []).append(t)
    for fam, members in families.items():
        if len(members) < 2:
            continue
        series = {}
        for a in algos:
            pts = []
            for t in members:
                m = (
                    _metric(by[(a, t["id"])], "tpr", meta[a]["thresholds"][0])
                    if (a, t["id"]) in by
                    else None
                )
                if m and m["value"] is not None:
                    pts.append((t["intensity"], m["value"], m["ci95"][0], m["ci95"][1]))
            series[a] = pts
        out.append(f"<div>{plots.severity_curves(fam, series, colour)}</div>")
    out.append(
        "</div><p class=note>Families with a single member appear only in the summary table.</p>"
    )

    # Distance histograms
    out.append('<h2 id="distances">Distance distributions</h2><div class=plots>')
    orig = {
        c["algorithm"]: c for c in result["collisions"] if c["protocol"] == "originals_all_pairs"
    }
    for a in algos:
        edited = [
            c["positives"]["hist"]
            for c in result["cells"]
            if c["algorithm"] == a and c["transform"] != "identity"
        ]
        pos = np.sum(edited, axis=0) if edited else np.zeros(len(orig[a]["hist"]), np.int64)
        unit = meta[a].get("level_unit", "bits")
        out.append(
            "<div>"
            + plots.distance_histogram(
                a, pos.tolist(), orig[a]["hist"], meta[a]["thresholds"][0], unit, colour[a]
            )
            + "</div>"
        )
    out.append("</div>")

    # ROC / DET
    out.append('<h2 id="roc">ROC and DET</h2>')
    out.append(
        "<p class=note>Edits pooled (identity excluded) against pairs of different originals; in-sample curves; the log axis starts at 1e-4 where no false match was observed.</p>"
    )
    out.append(plots.roc_det(result.get("curves", []), colour))

    # Collisions
    out.append('<h2 id="collisions">Collisions by protocol</h2>')
    out.append(
        "<ul class=note>"
        + "".join(
            f"<li><code>{escape(k)}</code>: {escape(v)}</li>"
            for k, v in result["protocols"].items()
        )
        + "</ul>"
    )
    protocols = list(result["protocols"])
    colls = {(c["algorithm"], c["protocol"]): c for c in result["collisions"]}
    rows = []
    for a in algos:
        for th in meta[a]["thresholds"]:
            rows.append(
                [
                    f"<code>{escape(a)}</code>",
                    f"&le;{th}",
                    *[
                        _fmt(_metric(colls[(a, p)], "fpr", th), small=True)
                        if (a, p) in colls
                        else "n/a"
                        for p in protocols
                    ],
                ]
            )
    out.append(_table(["algorithm", "threshold", *[f"<code>{p}</code>" for p in protocols]], rows))

    # Thresholds
    out.append(
        '<h2 id="thresholds">Thresholds chosen on calibration images, scored on held-out images</h2>'
    )
    rows = []
    for rec in result.get("recommendations", []):
        for t in rec["targets"]:
            ho = t["held_out"]
            status = "ok" if t["status"] == "ok" else "<span class=bad>unresolved</span>"
            rows.append(
                [
                    f"<code>{escape(rec['algorithm'])}</code>",
                    f"{t['target_fpr']:g}",
                    status,
                    str(t["threshold"]),
                    _fmt(ho["tpr_pooled"]),
                    _fmt(ho["fpr"], small=True),
                    escape(t["explanation"]),
                ]
            )
    out.append(
        _table(
            [
                "algorithm",
                "target FPR",
                "status",
                "threshold",
                "held-out TPR",
                "held-out FPR",
                "why",
            ],
            rows,
        )
    )
    out.append(
        "<p class=note>For the operational translation (false matches per day at a database size and upload rate) run <code>hash-harness threshold --database-size N --uploads-per-day U</code>.</p>"
    )

    # Quality
    out.append('<h2 id="quality">Hash quality</h2>')
    rows = []
    for q in result.get("quality", []):
        d = q.get("distances", {})
        bal = q.get("bit_balance")
        rows.append(
            [
                f"<code>{escape(q['algorithm'])}</code>",
                str(q.get("n_hashes", 0)),
                "n/a"
                if not d or d.get("mean") is None
                else f"{d['mean']:.1f}"
                + (f" (ideal {d['ideal_mean']:g})" if "ideal_mean" in d else ""),
                "n/a"
                if not d or d.get("sd") is None
                else f"{d['sd']:.1f} (ideal {d['ideal_sd']:.1f})",
                "n/a" if not d or d.get("ks_distance") is None else f"{d['ks_distance']:.3f}",
                "n/a"
                if not bal
                else f"{bal['mean_abs_deviation']:.3f}; {len(bal['constant_bits'])} constant",
                str(q.get("identical_hash_groups", {}).get("count", 0)),
            ]
        )
    out.append(
        _table(
            [
                "algorithm",
                "hashes",
                "mean distance",
                "sd",
                "KS vs Binomial",
                "bit balance",
                "identical-hash groups",
            ],
            rows,
        )
    )

    # Galleries (picked and thumbnailed by the run: harness.summaries.gallery)
    out.append('<h2 id="galleries">Galleries</h2>')
    pics = result.get("gallery")
    if pics is None:
        out.append(
            "<p class=note>This results file has no gallery (written by an older version).</p>"
        )
        pics = {"escapes": [], "collisions": [], "note": ""}
    if pics.get("note"):
        out.append(f"<p class=note>{escape(pics['note'])}</p>")

    def img(uri: str, alt: str) -> str:
        # Only inline images the run made: anything else in the document is not rendered.
        ok = uri.startswith(("data:image/jpeg;base64,", "data:image/png;base64,"))
        return f'<img alt="{escape(alt)}" src="{escape(uri)}">' if ok else ""

    out.append("<h3>Edited copies that escaped (worst true matches)</h3><div class=gallery>")
    for e in pics["escapes"]:
        a, t = e["algorithm"], e["transform"]
        out.append(
            f"<div class=card>{img(e['thumbnails']['original'], e['image'])}{img(e['thumbnails']['edited'], e['image'])}<br>"
            f"<b>{escape(e['image'])}</b> ({escape(e['licence'])})<br>"
            f"<code>{escape(a)}</code>: distance {e['distance']} &gt; {meta[a]['thresholds'][0]} after <code>{escape(names.get(t, t))}</code></div>"
        )
    out.append(
        "</div><h3>Different images that matched (closest false pairs)</h3><div class=gallery>"
    )
    if not pics["collisions"]:
        out.append(
            "<p class=note>No pair of different originals matched at the thresholds used.</p>"
        )
    for p in pics["collisions"]:
        la, lb_ = p["licences"]
        out.append(
            f"<div class=card>{img(p['thumbnails']['a'], p['a'])}{img(p['thumbnails']['b'], p['b'])}<br>"
            f"<b>{escape(p['a'])}</b> ({escape(la)}) and <b>{escape(p['b'])}</b> ({escape(lb_)})<br>"
            f"<code>{escape(p['algorithm'])}</code>: distance {p['distance']}</div>"
        )
    out.append("</div>")

    # Provenance and failures
    out.append('<h2 id="provenance">Provenance</h2>')
    pk = env.get("packages", {})
    out.append(
        _table(
            ["what", "value"],
            [
                [
                    "suite",
                    f"{escape(suite['name'])} v{suite['version']} (sha256 <code>{suite['config_sha256'][:16]}</code>)",
                ],
                [
                    "dataset",
                    f"{escape(dataset['name'])} (content sha256 <code>{dataset['content_sha256'][:16]}</code>)",
                ],
                [
                    "python",
                    escape(f"{env.get('python')} on {env.get('platform')} {env.get('machine')}"),
                ],
                ["packages", escape(", ".join(f"{k} {v}" for k, v in pk.items()))],
                ["codecs", escape(", ".join(f"{k} {v}" for k, v in env.get("codecs", {}).items()))],
                ["seed", str(result.get("seed"))],
            ],
        )
    )
    out.append('<h2 id="failures">Failures and exclusions</h2>')
    fails = result["failures"]
    out.append(
        _table(
            ["image", "stage", "transform", "algorithm", "reason"],
            [
                [
                    escape(f["image"]),
                    escape(f["stage"]),
                    escape(f.get("transform", "")),
                    escape(f.get("algorithm", "")),
                    escape(f["error"]),
                ]
                for f in fails
            ],
        )
        if fails
        else "<p>No failures.</p>"
    )
    excl = result.get("exclusions", [])
    if excl:
        out.append(
            f"<p>{len(excl)} hashes excluded by an algorithm's own rule (not failures), e.g. {escape(excl[0]['reason'])}.</p>"
        )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
