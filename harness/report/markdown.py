"""Markdown summary of a run: readable in a terminal, a CI log or a pull-request comment.

Everything shown is read from the results document; nothing is recomputed. Strings that come from
users (file names, suite names, error messages) are escaped so they cannot break a table or inject
markup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.escaping import visible
from harness.report import model
from harness.report import variants as report_variants
from harness.report.model import Cell, Table
from harness.result_model import Results
from harness.results import RUN_ID_MARK, to_builtins

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def esc(text: Any) -> str:
    """Escape Markdown/HTML-significant characters; control characters (newlines too) and
    undecodable bytes become visible escapes."""
    return _MD_SPECIAL.sub(r"\\\1", visible(text))


def code(text: Any) -> str:
    """Inline code span that survives backticks, pipes and control characters in ``text``."""
    s = visible(text).replace("|", "\\|")
    fence = "``" if "`" in s else "`"
    return f"{fence}{s}{fence}" if fence == "`" else f"{fence} {s} {fence}"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def md_cell(cell: Cell) -> str:
    """A model cell as Markdown: user text escaped, code in a span, rates with their note."""
    if cell.kind == "code":
        body = code(cell.text)
    elif cell.kind == "text":
        body = esc(cell.text)
    else:  # numbers and rates are made by the harness, not users
        body = cell.text.replace("|", "\\|")
    if cell.note:  # notes are the harness's own words and numbers
        body += " " + cell.note.replace("|", "\\|")
    return f"**{body}**" if cell.bad else body


def table(t: Table) -> list[str]:
    """A model table as Markdown lines."""
    return _table([md_cell(c) for c in t.header], ([md_cell(c) for c in r] for r in t.rows))


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


def render_markdown(document: Results | Mapping[str, Any]) -> str:
    """The whole report as one Markdown string: its sections in order."""
    # The section builders read the document as JSON values, as the table model does; the
    # typed document converts to them losslessly.
    result = to_builtins(document)
    # Rates depend on how pixels were decoded (transparency!), so every rate section says it.
    decode = f" (decode: {esc(result['dataset'].get('decode', 'viewer'))})"
    out = [
        *_md_header(result, decode),
        *_md_answers(result),
        *_md_robustness(result, decode),
        *_md_variants(result, decode),
        *_md_leaderboard(result, decode),
        *_md_collisions(result, decode),
        *_render_hygiene(result.get("hygiene")),
        *_md_quality(result),
        *_render_recommendations(result, decode),
        *_md_sweeps(result, decode),
        *_md_escapes(result),
        *_md_failures(result),
    ]
    return "\n".join(out).rstrip("\n") + "\n"


def _md_header(result: dict[str, Any], decode: str) -> list[str]:
    """Title, verdict, exclusions, environment and the matching rule."""
    suite, dataset, env = result["suite"], result["dataset"], result["environment"]
    status = result.get("status", {})
    verdict = "OK" if status.get("ok", True) else "FAILED (too many image failures)"
    out = [
        f"# hash-harness report: suite {esc(suite['name'])} v{suite['version']} "
        f"on {esc(dataset['name'])}{decode}",
        "",
        f"**{verdict}** - {model.run_counts(result)} "
        f"(failure rate {status.get('failure_rate', 0):.3f}, allowed "
        f"{status.get('max_failure_rate', 0):.3f}).",
    ]
    excluded = model.exclusions(result)
    if excluded:
        out += ["", "Excluded or gated (not failures):", ""]
        out += [f"- {esc(line)}" for line in excluded]
    pkgs = env["packages"]
    out += [
        "",
        f"Environment: Python {env['python']} on {env['platform']} {env['machine']}; "
        + ", ".join(f"{k} {v}" for k, v in pkgs.items())
        + f"; libjpeg-turbo {env['codecs'].get('libjpeg_turbo')}. "
        f"Suite sha256 `{suite['config_sha256'][:12]}`, seed {result['seed']}.",
        "",
        f"A pair **matches** when its {_distance_words(result['algorithms'])} is at most the "
        "threshold. Rates are "
        "fractions with a 95% Clopper-Pearson interval and the count (k/n) beside them.",
    ]
    return out


def _distance_words(algorithms: list[dict[str, Any]]) -> str:
    """What a pair's distance is: Hamming bits, and each hash scored in other levels by name."""
    other = [a for a in algorithms if a.get("level_unit", "bits") != "bits" and a.get("distance")]
    if not other:
        return "Hamming distance"
    named = "; ".join(f"`{a['id']}`: {esc(a['distance'])}" for a in other)
    return f"distance (Hamming bits; {named})"


def _md_answers(result: dict[str, Any]) -> list[str]:
    answers = model.answers(result)
    if not answers:
        return []
    out = [
        "",
        "## Answer",
        "",
        "Per algorithm: the threshold chosen on calibration images at the first target "
        "false-match rate, scored on held-out images; the worst held-out edits.",
        "",
    ]
    for ans in answers:
        worst = "; ".join(f"{code(e)} {md_cell(c)}" for e, c in ans.worst_edits)
        out += [
            f"- {code(ans.algorithm)}: threshold {esc(ans.threshold)}; held-out FPR "
            f"{md_cell(ans.fpr)}, TPR (edits pooled) {md_cell(ans.tpr)}",
            f"  - worst edits: {worst or model.NO_MISSES}",
            f"  - excluded images: {esc(ans.excluded)}",
            *[f"  - cannot support: {esc(c)}" for c in ans.cannot],
        ]
    return out


def _md_robustness(result: dict[str, Any], decode: str) -> list[str]:
    return [
        "",
        "## Robustness: true-match rate (TPR) of edited copies against their original" + decode,
        "",
        *table(model.robustness_table(result)),
        *_meanings(result),
        "",
        "### Distances of edited copies to their original (median / max bits)",
        "",
        *table(model.distances_table(result)),
    ]


def _meanings(result: dict[str, Any]) -> list[str]:
    """Under a table of thresholds in use: what a fusion's default threshold means."""
    lines = model.threshold_meanings(result)
    return ["", *[f"- {esc(line)}" for line in lines]] if lines else []


def _md_variants(result: dict[str, Any], decode: str) -> list[str]:
    real = report_variants.table(result)
    if real is None:
        return []
    out = ["", "## Real variants: re-uploads against their original" + decode, ""]
    out += [report_variants.INTRO, "", *table(real)]
    out += ["", *[f"- {esc(line)}" for line in real.notes]] if real.notes else []
    return out


def _md_leaderboard(result: dict[str, Any], decode: str) -> list[str]:
    lb = model.leaderboard_table(result)
    if lb is None:
        return []
    target = result["leaderboard"]["target_fpr"]
    return [
        "",
        f"## Leaderboard: held-out TPR per transform family at false-match rate <= {target:g}"
        + decode,
        "",
        leaderboard_note(result) + " " + STATUS_LEGEND,
        "",
        *table(lb),
    ]


def _md_collisions(result: dict[str, Any], decode: str) -> list[str]:
    """Collision rates, the colliding originals and the retrieval view of edited copies."""
    names = model.labels(result)
    out = ["", "## Collisions: different images that match" + decode, ""]
    out.append(
        "Negative protocols: "
        + "; ".join(f"{code(k)}: {esc(v)}" for k, v in result["protocols"].items())
        + ". Edited protocols pool every edit except identity. Pairs share images, so the "
        "intervals, which treat pairs as independent, are optimistic; with n pairs no FPR much "
        "below 3/n can be claimed."
    )
    out += ["", *table(model.collisions_table(result))]
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
    return out


def _md_quality(result: dict[str, Any]) -> list[str]:
    quality = model.quality_table(result)
    if quality is None:
        return []
    return [
        "",
        "## Hash quality over the evaluated originals",
        "",
        QUALITY_NOTE,
        "",
        *table(quality),
    ]


def _md_sweeps(result: dict[str, Any], decode: str) -> list[str]:
    algos = {a["id"]: a for a in result["algorithms"]}
    out = ["", "## Threshold sweep (describes the data; not a tuned recommendation)" + decode, ""]
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
    return out


def _md_escapes(result: dict[str, Any]) -> list[str]:
    names = model.labels(result)
    misses = [
        (c["algorithm"], c["transform"], m) for c in result["cells"] for m in c.get("misses", [])
    ]
    if not misses:
        return []
    out = ["", "## Edited copies that escaped (distance above the first threshold)", ""]
    out += _table(
        ["algorithm", "transform", "image", "distance"],
        ([code(a), code(names[t]), esc(m["image"]), str(m["distance"])] for a, t, m in misses[:60]),
    )
    if len(misses) > 60:
        out.append(f"\n… and {len(misses) - 60} more in results.json.")
    return out


def _md_failures(result: dict[str, Any]) -> list[str]:
    failures = model.failures_table(result)
    out = ["", "## Failures", "", *(table(failures) if failures is not None else ["None."])]
    # The run id closes the file (an HTML comment: invisible when rendered).
    out.append(f"\n<!-- {RUN_ID_MARK}{esc(result.get('run', {}).get('id', 'none'))} -->")
    return out


QUALITY_NOTE = (
    "Ideal hash: independent fair bits, so distances between different images follow "
    "Binomial(n_bits, 1/2). KS = largest gap between the observed and ideal distance CDFs. "
    "Bit balance = mean |fraction of ones - 0.5| over bits."
)
STATUS_LEGEND = (
    "Status: ok; unresolved = too few pairs to support the target (the images needed are "
    "stated); unachievable = no threshold of this hash meets the target on these images; "
    "undefined = no pairs of that kind. A threshold of none matches nothing."
)
LEADERBOARD_NOTE = (
    "Threshold = the one threshold rule (the Thresholds section's): the largest whose "
    "false-match rate over pairs of calibration originals is at most the target; TPR and FPR "
    "on the held-out images, gated copies counted as misses. Uploads flagged: the share of "
    "innocent held-out uploads with a false match against a database of D held-out hashes (the "
    "suite's largest database_sizes): measured within the corpus, model-based beyond it, or "
    "unresolved. CPU ms/image: median CPU time of one hash call in this run (p95 and hashes "
    "per CPU-second beside it; not measured when the hashes came from the cache)."
)
#: Added to :data:`LEADERBOARD_NOTE` when the dataset declares real variants.
LEADERBOARD_VARIANTS = (
    "Real variants: the TPR of every re-upload the manifest declares (variant_of), per kind, at "
    "the same threshold; it was chosen on synthetic pairs only, so no variant informed it."
)


def leaderboard_note(result: dict[str, Any]) -> str:
    """The leaderboard's note, with the real-variant columns explained when there are some."""
    if report_variants.names(result):
        return f"{LEADERBOARD_NOTE} {LEADERBOARD_VARIANTS}"
    return LEADERBOARD_NOTE


THRESHOLDS_NOTE = (
    "Source images are split once (seeded); the threshold is the largest whose calibration "
    "false-match rate (`originals_all_pairs`) is at most the target, and it is scored only on "
    "the held-out images (gated copies count as misses). Bootstrap intervals resample source "
    "images. Targets with the same answer share a row. " + STATUS_LEGEND
)


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
        second = (
            f" and {code(near['confirm_algorithm'])} within {near['confirm_max_distance']} bits"
            if near.get("confirm_algorithm")
            else ""
        )
        out.append(
            f"Near duplicates ({code(near['algorithm'])} within {near['max_distance']} bits"
            f"{second}): {len(near['pairs'])} linking pairs in {len(near['groups'])} groups; "
            "pairs inside a group are never counted as negatives."
        )
        out += [
            f"- {esc(p['a'])} ↔ {esc(p['b'])} at {p['distance']} bits"
            + (f" ({p['confirm_distance']} by the second hash)" if "confirm_distance" in p else "")
            for p in near["pairs"][:40]
        ]
    out += [f"- **Warning:** {esc(w)}" for w in hygiene.get("warnings", [])]
    return out


def _fmt_ci(ci: list[float | None], digits: int = 2) -> str:
    if ci[0] is None or ci[1] is None:
        return "n/a"
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _render_recommendations(result: dict[str, Any], decode: str = "") -> list[str]:
    if not result.get("recommendations") and not result.get("curves"):
        return []
    out = [
        "",
        "## Thresholds: chosen on calibration images, scored on held-out images" + decode,
        "",
    ]
    out += [THRESHOLDS_NOTE, "", *table(model.thresholds_table(result))]
    reasons = model.threshold_reasons(result)
    if reasons:
        out += ["", *[f"- {code(a)} at {f:g}: {esc(r)}" for a, f, r in reasons]]
    fixed = model.fixed_thresholds_table(result)
    if fixed is not None:
        out += ["", "Given thresholds (the suite's `[thresholds]`), scored on every image:", ""]
        out += table(fixed) + _meanings(result)
    curves = model.curves_table(result)
    if curves is not None:
        out += ["", "Whole-corpus curves (edits pooled vs `originals_all_pairs`; in-sample):", ""]
        out += table(curves)
    precision = model.precision_table(result)
    if precision is not None:
        out += [
            "",
            "Precision (share of matches that are true copies) when a stated fraction of checked "
            "pairs are true copies (the suite's `base_rates`; in-sample, edits pooled):",
            "",
            *table(precision),
        ]
    return out


def _flat(text: Any) -> str:
    """Plain terminal text: one line, control characters as visible escapes."""
    return visible(text)


def _text_table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    """Columns padded to line up in a terminal."""
    grid = [header, *rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in grid]
    return [lines[0], "  ".join("-" * w for w in widths), *lines[1:]]


def _bold(text: str) -> str:
    return f"**{text}**"


def why(doc: dict[str, Any], escape: Callable[[str], str] = esc) -> str:
    """The status's reason, and for an unresolved target the sample that would resolve it."""
    text = escape(doc["reason"])
    need = doc.get("required")
    if doc["status"] == "unresolved" and need:
        images = doc["calibration"]["images"] + doc["held_out"]["images"]
        text += (
            f"; resolving it needs about {need['images']:,} images "
            f"({need['negative_pairs_per_part']:,} negative pairs per part under the all-pairs "
            f"protocol); this corpus has {images:,}"
        )
    return text


#: Above the real variants' rates in a ``threshold`` answer.
THRESHOLD_VARIANTS = (
    "Real variants (manifest variant_of) at this threshold: every re-upload against its own "
    "original - no variant informed the threshold, so all are scored; gated = misses:"
)


def render_threshold(doc: dict[str, Any], plain: bool = False) -> str:
    """One ``hash-harness threshold`` answer (chosen or given threshold): Markdown, or with
    ``plain`` text for a terminal or a pipe (no escapes, no emphasis, no code spans)."""
    e, c, b = (_flat, _flat, _flat) if plain else (esc, code, _bold)
    tab = _text_table if plain else _table
    h1 = "" if plain else "# "
    algo = doc["algorithm"]
    unit = f"{algo['n_bits']} ({algo.get('level_unit', 'bits')})"
    where = (
        f"Suite {e(doc['suite']['name'])} v{doc['suite']['version']} on "
        f"{e(doc['dataset']['name'])} (decode: {e(doc['dataset'].get('decode', 'viewer'))}; "
        f"{doc['dataset']['n_evaluated']} images evaluated); "
        f"negatives: {c(doc['protocol'])}; from {e(doc['source'])}, "
        f"{doc['hashes_computed']} hashes computed."
    )
    if doc["mode"] == "fixed":
        pooled = doc["tpr_pooled"]
        out = [
            f"{h1}Given threshold ≤{doc['threshold']} for {c(algo['id'])}",
            "",
            where + f" A given threshold needs no calibration: scored on all {doc['images']} "
            "images.",
            "",
            f"{b('Status: ' + doc['status'])} - {e(doc['reason'])}",
            "",
            f"- Threshold: {b('≤' + str(doc['threshold']))} of {unit}",
            f"- FPR: {fmt_small_rate(doc['fpr'])}, bootstrap "
            f"{_fmt_ci(doc['fpr']['bootstrap_ci95'], 3)}",
            f"- TPR, edits pooled: {fmt_rate(pooled)}, bootstrap "
            f"{_fmt_ci(pooled['bootstrap_ci95'])}",
        ]
        per_edit = doc["tpr"]
        title = "TPR per edit (one pair per image; Clopper-Pearson; gated copies are misses):"
    else:
        cal, ho = doc["calibration"], doc["held_out"]
        pooled = ho["tpr_pooled"]
        lo, hi = doc["threshold_ci95"]
        threshold = (
            f"{b('≤' + str(doc['threshold']))} of {unit}"
            if doc["threshold"] is not None
            else f"{b('none')} (no threshold of {unit} meets the target: nothing would match)"
        )
        if doc["threshold"] is not None and lo is not None:
            threshold += f" (bootstrap 95% over calibration images: {lo:g}..{hi:g})"
        out = [
            f"{h1}Threshold for {c(algo['id'])} at false-match rate {doc['target_fpr']:g}",
            "",
            where + f" {cal['images']} calibration and {ho['images']} held-out source images.",
            "",
            f"{b('Status: ' + doc['status'])} - {why(doc, e)}.",
            "",
            f"- Threshold: {threshold}",
            f"- Calibration FPR at that threshold: {fmt_small_rate(cal['fpr'])}",
            f"- Held-out FPR: {fmt_small_rate(ho['fpr'])}, bootstrap "
            f"{_fmt_ci(ho['fpr']['bootstrap_ci95'], 3)}",
            f"- Held-out TPR, edits pooled: {fmt_rate(pooled)}, bootstrap "
            f"{_fmt_ci(pooled['bootstrap_ci95'])}",
        ]
        if doc["status"] == "unresolved" and doc["threshold"] is not None:
            out.append(
                "- The threshold is only the largest with no more observed collisions than the "
                "target allows on this corpus; do not deploy it as a guarantee of the target rate."
            )
        per_edit = ho["tpr"]
        title = "Held-out TPR per edit (one pair per image; Clopper-Pearson; gated = misses):"
    if pooled.get("gated"):
        out.append(
            f"- {pooled['gated']} edited copies were discarded by the algorithm's quality gate: "
            "counted as misses (a platform cannot match a discarded hash)"
        )
    if doc["bootstrap"]["note"]:
        out.append(f"- Note: {e(doc['bootstrap']['note'])}.")
    out += ["", title, ""]
    out += tab(["transform", "TPR", "gated"], _edit_rates(per_edit, c))
    if doc.get("variants"):
        out += ["", THRESHOLD_VARIANTS, ""]
        out += tab(["real variants", "TPR", "gated"], _edit_rates(doc["variants"], c))
    if doc.get("flagged_share"):
        out += render_flagged(doc["flagged_share"], doc.get("operational", []), plain)
    return "\n".join(out) + "\n"


def _edit_rates(rates: list[dict[str, Any]], c: Callable[[str], str]) -> list[list[str]]:
    """Rows of a TPR-per-edit table (or per variant row): name, rate, gated copies."""
    return [[c(t["transform"]), fmt_rate(t), str(t["gated"])] for t in rates]


def render_flagged(
    share: dict[str, Any], operational: list[dict[str, Any]], plain: bool = False
) -> list[str]:
    """The share of innocent uploads flagged (``harness.flagged.flagged_share``): for each
    database size asked, three lines - measured up to the corpus size, the model-based value (or
    "unresolved" with the images needed) at that size, expected false matches per upload - then
    the operational translation where an upload volume or a k-of-N rule was given."""
    e, b = (_flat, _flat) if plain else (esc, _bold)

    def value(v: float, ci: list[float]) -> str:
        return f"{b(f'{v:.3g}')} (95% {ci[0]:.3g}..{ci[1]:.3g})"

    out = [
        "",
        ("" if plain else "## ") + "Share of innocent uploads flagged",
        "",
        f"{share['n_uploads']:,} uploads ({e(share['queries'])}; {share['n_gated']} "
        f"quality-gated, counted as never flagged), pair FPR {fmt_small_rate(share['pair_fpr'])}. "
        "Each upload is queried against random databases of images of other groups; intervals "
        "are a bootstrap over query images.",
        "",
    ]
    measured = [c for c in share["curve"] if c["kind"] == "measured"]
    for at in share["at"]:
        size = at["database_size"]
        if measured:
            top = measured[-1]
            out.append(
                f"- Measured (exact) up to the corpus size: {value(top['share'], top['ci95'])} "
                f"of uploads flagged against D = {top['database_size']:,} hashes"
            )
        if at["kind"] == "measured":
            out.append(f"- Measured at D = {size:,.0f}: {value(at['share'], at['ci95'])}")
        elif at["kind"] == "model":
            out.append(
                f"- Model-based at D = {size:.3g}: {value(at['share'], at['ci95'])} of uploads "
                f"flagged ({e(at['label'])})"
            )
        else:
            out.append(f"- At D = {size:.3g}: {b('unresolved')} - {e(at['reason'])}")
        matches = at["expected_matches_per_upload"]
        if matches is not None:
            out.append(
                f"- Expected false matches per upload at D = {size:.3g}: p x D = "
                f"{value(matches['value'], matches['ci95'])}; if pairs were independent "
                f"(p_upload_flagged_if_independent, a reference only): "
                f"{at['p_upload_flagged_if_independent']['value']:.3g}"
            )
    for op in operational:
        if op["uploads_per_day"] is None and "p_account_flagged" not in op:
            continue
        out += ["", f"In production at D = {op['database_size']:.3g}: {e(op['verdict'])}."]
        for key, what in (
            ("expected_matches_per_day", "Expected false matches per day"),
            (
                "p_account_flagged",
                "Probability an innocent account reaches the k-of-N rule (per-image share, "
                "uploads as independent draws of images)",
            ),
        ):
            if op.get(key):
                out.append(f"{what}: {value(op[key]['value'], op[key]['ci95'])}.")
    return out
