"""The HTML report: one self-contained file (inline SVG plots and JPEG thumbnails, inline CSS, no
scripts, nothing fetched) that reads on a phone, a laptop and on paper.

Rendered from a Jinja2 template with autoescaping, so every string from a user (file names, suite
names, error messages, vendor labels) is escaped; only the harness's own SVG plots are inserted as
markup. Tables come from :mod:`harness.report.model`, shared with the Markdown report. Everything
is read from the results document, including the galleries' thumbnails (picked and rendered by the
run, :mod:`harness.summaries`): a report can be rebuilt anywhere from results.json alone.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from harness.escaping import visible
from harness.report import model, plots
from harness.report import variants as report_variants
from harness.report.markdown import QUALITY_NOTE, STATUS_LEGEND, leaderboard_note
from harness.result_model import Results
from harness.results import RUN_ID_MARK, to_builtins

#: Section ids and headings, in page order (the table of contents).
SECTIONS = [
    ("answer", "Answer"),
    ("summary", "Robustness summary"),
    ("variants", "Real variants"),
    ("leaderboard", "Leaderboard"),
    ("robustness", "Robustness vs severity"),
    ("distances", "Distance distributions"),
    ("roc", "ROC and DET"),
    ("collisions", "Collisions by protocol"),
    ("thresholds", "Thresholds"),
    ("flagged", "Uploads flagged"),
    ("quality", "Hash quality"),
    ("galleries", "Galleries"),
    ("provenance", "Provenance"),
    ("failures", "Failures and exclusions"),
]
#: Thumbnails the run made; anything else in a document is not rendered.
_IMAGE_URIS = ("data:image/jpeg;base64,", "data:image/png;base64,")


def _trusted(markup: str) -> Markup:
    """The harness's own CSS and SVG (harness.report.svg escapes every text it draws)."""
    return Markup(markup)  # noqa: S704 - never user text


def _visible(value: Any) -> Any:
    """Every text shown: control characters and undecodable bytes as visible escapes (then
    autoescaped); the harness's own markup is left alone."""
    return visible(value) if isinstance(value, str) and not isinstance(value, Markup) else value


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,
        finalize=_visible,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


@functools.cache
def _css() -> str:
    return resources.files("harness.report").joinpath("templates/report.css").read_text("utf-8")


def render_html(document: Results | Mapping[str, Any]) -> str:
    """The whole report as one HTML document."""
    # The section builders below still read the document as JSON values (a typed rewrite of
    # the report sections is the next step); the typed document converts losslessly.
    result = to_builtins(document)
    suite, dataset = result["suite"], result["dataset"]
    algos = [a["id"] for a in result["algorithms"]]
    colour = plots.colours(algos)
    leaderboard = model.leaderboard_table(result)
    flagged = _flagged(result)
    absent = {"leaderboard"} if leaderboard is None else set()
    variants = report_variants.table(result)
    absent |= {"variants"} if variants is None else set()
    absent |= set() if flagged["plot"] else {"flagged"}
    sections = [s for s in SECTIONS if s[0] not in absent]
    n_neg = {
        c["algorithm"]: c["n_pairs"]
        for c in result["collisions"]
        if c["protocol"] == "originals_all_pairs"
    }
    pics = _galleries(result)
    return _template().render(
        title=f"hash-harness report: {suite['name']} v{suite['version']} on {dataset['name']}",
        css=_trusted(_css()),
        run_id_mark=RUN_ID_MARK,
        run_id=result.get("run", {}).get("id", "none"),
        ok=result.get("status", {}).get("ok", True),
        dataset=dataset,
        counts=model.run_counts(result),
        exclusions=model.exclusions(result),
        toc=sections,
        answers=model.answers(result),
        robustness=model.robustness_table(result),
        variants=variants,
        variants_intro=report_variants.INTRO,
        leaderboard=leaderboard,
        leaderboard_target=f"{result['leaderboard']['target_fpr']:g}" if leaderboard else "",
        severity=[_trusted(svg) for svg in plots.severity_panels(result, colour)],
        histograms=[_trusted(svg) for svg in plots.distance_histograms(result, colour)],
        roc=[_trusted(svg) for svg in plots.roc_det(result.get("curves", []), colour, n_neg)],
        curves=model.curves_table(result),
        precision=model.precision_table(result),
        protocols=result["protocols"],
        collisions=model.collisions_table(result),
        thresholds=model.thresholds_table(result),
        threshold_reasons=model.threshold_reasons(result),
        fixed_thresholds=model.fixed_thresholds_table(result),
        meanings=model.threshold_meanings(result),
        no_misses=model.NO_MISSES,
        leaderboard_note=leaderboard_note(result),
        status_legend=STATUS_LEGEND,
        flagged=flagged,
        quality_note=QUALITY_NOTE,
        quality=model.quality_table(result),
        gallery_note=pics["note"],
        set_apart=pics["set_apart"],
        galleries=pics["algorithms"],
        provenance=_provenance(result),
        failures=model.failures_table(result),
    )


def _flagged(result: dict[str, Any]) -> dict[str, Any]:
    """The share of uploads flagged against database size: one curve per algorithm and given
    threshold (every image as upload and database), and why the model is missing where it is;
    nothing for a result that keeps no curves."""
    entries = result.get("flagged_share", [])
    curves = {
        f"{e['algorithm']} ≤{g['threshold']}": g["curve"]
        for e in entries
        for g in e["given"]
        if g["curve"]
    }
    if not curves:
        return {"plot": None, "unresolved": []}
    sizes = [s for e in entries for s in e["database_sizes"]]
    return {
        "plot": _trusted(
            plots.flagged_share(curves, plots.colours(list(curves)), max(sizes, default=None))
        ),
        "unresolved": [
            f"{e['algorithm']} ≤{g['threshold']}: {g['model']['reason']}"
            for e in entries
            for g in e["given"]
            if g["model"]["status"] != "ok"
        ],
    }


def _galleries(result: dict[str, Any]) -> dict[str, Any]:
    """The run's gallery picks grouped per algorithm, thumbnails vetted."""
    pics = result.get("gallery")
    if pics is None:
        pics = {"escapes": [], "collisions": [], "note": "no gallery in this results file"}
    names = model.labels(result)

    def uri(value: str) -> str:
        return value if value.startswith(_IMAGE_URIS) else ""

    out = []
    for a in result["algorithms"]:
        collisions = [
            {
                "a": p["a"],
                "b": p["b"],
                "transform": names.get(p.get("transform", ""), p.get("transform", "")),
                "distance": p["distance"],
                "licence_a": p["licences"][0],
                "licence_b": p["licences"][1],
                "thumb_a": uri(p["thumbnails"]["a"]),
                "thumb_b": uri(p["thumbnails"]["b"]),
            }
            for p in pics["collisions"]
            if p["algorithm"] == a["id"]
        ]
        escapes = [
            {
                "image": e["image"],
                "transform": names.get(e["transform"], e["transform"]),
                "distance": e["distance"],
                "licence": e["licence"],
                "thumb_original": uri(e["thumbnails"]["original"]),
                "thumb_edited": uri(e["thumbnails"]["edited"]),
            }
            for e in pics["escapes"]
            if e["algorithm"] == a["id"]
        ]
        out.append(
            {
                "algorithm": a["id"],
                "threshold": a["thresholds"][0],
                "collisions": collisions,
                "escapes": escapes,
            }
        )
    return {"algorithms": out, "set_apart": pics.get("set_apart", []), "note": pics.get("note")}


def _provenance(result: dict[str, Any]) -> model.Table:
    suite, dataset, env = result["suite"], result["dataset"], result["environment"]
    rows = [
        ("suite", f"{suite['name']} v{suite['version']} (sha256 {suite['config_sha256'][:16]})"),
        ("dataset", f"{dataset['name']} (content sha256 {dataset['content_sha256'][:16]})"),
        ("python", f"{env.get('python')} on {env.get('platform')} {env.get('machine')}"),
        ("packages", ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())),
        ("codecs", ", ".join(f"{k} {v}" for k, v in env.get("codecs", {}).items())),
        ("seed", str(result.get("seed"))),
    ]
    return model.Table(
        model.header("what", "value"), [[model.text(k), model.text(v)] for k, v in rows]
    )
