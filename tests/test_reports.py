"""HTML, JUnit and comparison reports, including a real render in headless Chromium."""

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from msgspec.structs import replace
from PIL import Image

from harness import compare, results
from harness.cli import main
from harness.report import comparison
from harness.report.html import render_html
from tests.conftest import run_cli, synthetic_image

SUITE = """
name = "report <b>test</b>"
version = 1
algorithms = ["phash", "pdq"]
transforms = ["identity", "jpeg@S3", "crop@S2", "crop@S4", "rotate@S3"]
bootstrap_resamples = 0
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    folder = tmp / "imgs"
    folder.mkdir()
    for i in range(6):
        synthetic_image(120 + 10 * i, 90, seed=i).save(folder / f"img{i}.png")
    synthetic_image(100, 80, seed=42).save(folder / "<script>alert(1).png")
    (folder / "broken <img src=x onerror=alert(2)>.jpg").write_bytes(b"\xff\xd8 truncated")
    suite = tmp / "suite.toml"
    suite.write_text(SUITE)
    out = tmp / "out"
    code = run_cli(str(suite), str(folder), str(out), "--max-failure-rate", "0.5")
    assert code == 0
    return out


def test_run_writes_every_format(run_dir):
    for name in ("results.json", "report.md", "report.html", "report.junit.xml", "results.csv"):
        assert (run_dir / name).stat().st_size > 0
    junit = ET.parse(run_dir / "report.junit.xml").getroot()  # noqa: S314 - our own output
    assert junit.get("failures") == "1"  # the broken file
    assert (
        main(
            [
                "report",
                str(run_dir / "results.json"),
                "--format",
                "junit",
                "--out",
                str(run_dir / "x.xml"),
            ]
        )
        == 0
    )


def test_results_csv_is_tidy_and_loads_with_pandas(run_dir, tmp_path):
    """One row per algorithm x edit x metric with k, n, value, lo, hi; parquet holds the same."""
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(run_dir / "results.csv")
    assert list(frame.columns[-6:]) == ["k", "n", "value", "lo", "hi", "status"]
    result = results.to_builtins(results.load(run_dir / "results.json"))
    n_cell = sum(len(c["metrics"]) for c in result["cells"])
    n_coll = sum(len(c["metrics"]) for c in result["collisions"])
    cells = frame[frame["transform"].notna() & ~frame["metric"].str.startswith("held_out")]
    assert len(cells) == n_cell
    assert len(frame[frame["transform"].isna() & (frame["metric"] == "fpr")]) == n_coll
    row = frame.query(
        "algorithm == 'phash' and transform == 'jpeg(quality=50)' and metric == 'tpr' "
        "and category.isna()",
        engine="python",
    )
    assert len(row) == 1
    cell = next(
        c
        for c in result["cells"]
        if (c["algorithm"], c["transform"]) == ("phash", "jpeg(quality=50)")
    )
    first = cell["metrics"][0]
    assert row.iloc[0][["k", "n"]].tolist() == [first["k"], first["n"]]
    assert row.iloc[0]["value"] == pytest.approx(first["value"])
    ok = frame.dropna(subset=["value"])
    assert (ok["lo"] <= ok["value"] + 1e-12).all()
    assert (ok["value"] <= ok["hi"] + 1e-12).all()
    assert (frame["k"] <= frame["n"]).all()
    assert {"held_out_fpr", "held_out_tpr", "held_out_tpr_pooled"} <= set(frame["metric"])
    # A held-out rate at a target the corpus cannot support carries that verdict, not "ok".
    verdicts = {
        (r["algorithm"], t["target_fpr"]): t["status"]
        for r in result["recommendations"]
        for t in r["targets"]
    }
    held_out = frame[frame["metric"].str.startswith("held_out")]
    assert "unresolved" in set(verdicts.values())
    for _, r in held_out.iterrows():
        expected = verdicts[(r["algorithm"], r["target_fpr"])]
        assert r["status"] == expected or (expected == "ok" and r["status"] != "unresolved")
    pytest.importorskip("pyarrow")
    out = tmp_path / "r.parquet"
    assert (
        main(["report", str(run_dir / "results.json"), "--format", "parquet", "--out", str(out)])
        == 0
    )
    parquet = pd.read_parquet(out)
    assert len(parquet) == len(frame)
    assert parquet["k"].tolist() == frame["k"].tolist()
    csv_out = tmp_path / "r.csv"
    assert (
        main(["report", str(run_dir / "results.json"), "--format", "csv", "--out", str(csv_out)])
        == 0
    )
    assert csv_out.read_text() == (run_dir / "results.csv").read_text()


def test_html_and_binary_refuse_a_terminal(run_dir, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    for fmt in ("html", "parquet"):
        assert main(["report", str(run_dir / "results.json"), "--format", fmt]) == 2
        assert "give --out FILE" in capsys.readouterr().err
    assert main(["report", str(run_dir / "results.json"), "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# hash-harness report")


def test_html_is_self_contained_escaped_and_complete(run_dir):
    html = (run_dir / "report.html").read_text()
    assert '<meta name=viewport content="width=device-width, initial-scale=1">' in html
    assert '<nav class=toc aria-label="Contents">' in html
    for section in (
        "answer",
        "summary",
        "leaderboard",
        "robustness",
        "distances",
        "roc",
        "collisions",
        "thresholds",
        "quality",
        "galleries",
        "provenance",
        "failures",
    ):
        assert f'id="{section}"' in html, section
    assert "<script" not in html.lower()  # no scripts at all, and hostile names are escaped
    assert "&lt;script&gt;alert(1).png" in html
    assert "onerror=alert(2)&gt;" in html
    assert "<img src=x" not in html
    assert "report &lt;b&gt;test&lt;/b&gt;" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing fetched from anywhere
    assert html.count("<svg") >= 4  # a severity curve, two histograms, ROC/DET
    assert "data:image/jpeg;base64," in html  # gallery thumbnails
    for label in (
        "distance (bits)",
        "false-match rate (FPR, log",
        "TPR (fraction of edited copies matched)",
    ):
        assert label in html


def test_html_renders_from_the_results_file_alone(run_dir, tmp_path):
    """Reports read only results.json: thumbnails and leaderboard were stored by the run."""
    result = results.to_builtins(results.load(run_dir / "results.json"))
    result["dataset"]["name"] = "/nonexistent/folder"
    html = render_html(result)
    assert "data:image/jpeg;base64," in html
    assert result["gallery"]["escapes"]
    assert result["leaderboard"]["rows"]


def test_gallery_without_thumbnails_says_so(run_dir):
    """Picks whose thumbnails the hashing pass could not make are listed without pictures."""
    from harness.summaries import gallery

    result = results.to_builtins(results.load(run_dir / "results.json"))
    pics = gallery(result, lambda image_id, column: None)
    assert "thumbnails unavailable" in pics["note"]
    assert all(e["thumbnails"]["original"] == "" for e in pics["escapes"])
    assert (
        "<img"
        not in render_html({**result, "gallery": pics})
        .split('id="galleries"')[1]
        .split('id="provenance"')[0]
    )


def _chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs the Debian package when it can)")
    return browser


#: A quiet, self-contained headless browser: no network, updates, sync or first-run pages.
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def _browse(browser, tmp_path, page, width, *args):
    """Headless Chromium on ``page`` at ``width`` x 2000 with a fresh profile; returns stdout
    and stderr. Headless Chromium never makes a window narrower than 500 px."""
    flags = [
        *_FLAGS,
        f"--user-data-dir={tmp_path / f'profile-{width}-{len(args)}'}",
        f"--window-size={width},2000",
    ]
    done = subprocess.run(
        [browser, *flags, *args, page.as_uri()], capture_output=True, text=True, timeout=180
    )
    return done.stdout, done.stderr


#: Injected into a copy of the report only (the report itself has no script): the page's width
#: against the viewport's, and the table of contents' targets that exist.
MEASURE = """<script>addEventListener("load", () => {
  const links = [...document.querySelectorAll("nav.toc a")];
  document.body.dataset.measure = JSON.stringify({
    page: document.documentElement.scrollWidth, viewport: window.innerWidth,
    toc: links.length, targets: links.filter(a => document.querySelector(a.hash)).length});
});</script></body>"""


@pytest.mark.parametrize("width", [1400, 500])
def test_html_layout_in_headless_chromium(run_dir, tmp_path, width):
    """No sideways scroll of the page at a wide and at a phone-like width (tables scroll in their
    own box), a table of contents whose links all land, and a real, non-blank screenshot."""
    import json

    browser = _chromium()
    report = run_dir / "report.html"
    shot = tmp_path / "report.png"
    _, err = _browse(browser, tmp_path, report, width, f"--screenshot={shot}")
    assert shot.exists(), err[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2000, width)
    assert pixels.std() > 10  # not a blank page: text, tables and plots drawn
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", MEASURE))
    dom, err = _browse(browser, tmp_path, probe, width, "--dump-dom")
    found = re.search(r'data-measure="([^"]+)"', dom)
    assert found, err[-2000:]
    measure = json.loads(found.group(1).replace("&quot;", '"'))
    assert measure["viewport"] == width
    assert measure["page"] == width, measure  # no horizontal page scroll
    assert measure["toc"] >= 10
    assert measure["targets"] == measure["toc"]
    for heading in ("Answer", "Robustness summary", "Distance distributions", "Galleries"):
        assert heading in dom
    assert "&lt;script&gt;alert(1).png" in dom


def _devtools(browser, tmp_path, page, width, height=2000, timeout=120.0):
    """Open ``page`` in headless Chromium with the viewport set through the DevTools protocol
    (``Emulation.setDeviceMetricsOverride``, as a phone: below the 500 px minimum window) over
    ``--remote-debugging-pipe`` (fd 3 in, fd 4 out, NUL-separated JSON). Returns the page and
    viewport widths, the number of table-of-contents links, and a PNG screenshot."""
    import base64
    import json
    import os
    import select
    import time

    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def child():  # the pipe's ends become fds 3 and 4 of the browser
        a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(a, 3)
        os.dup2(b, 4)

    flags = [*_FLAGS, f"--user-data-dir={tmp_path / 'profile-devtools'}", "--remote-debugging-pipe"]
    proc = subprocess.Popen(
        [browser, *flags, "about:blank"],
        close_fds=False,
        preexec_fn=child,  # only dup and dup2: safe between fork and exec
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    deadline = time.monotonic() + timeout
    pending = b""
    ids = iter(range(1, 1000))

    def send(method, session=None, until=None, **params):
        nonlocal pending
        msg_id = next(ids)
        msg = {"id": msg_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(to_chrome_w, json.dumps(msg).encode() + b"\0")
        result, seen = None, until is None
        while result is None or not seen:
            while b"\0" not in pending:
                ready, _, _ = select.select([from_chrome_r], [], [], deadline - time.monotonic())
                chunk = os.read(from_chrome_r, 1 << 20) if ready else b""
                assert chunk, f"no answer from chromium to {method}"
                pending += chunk
            raw, _, pending = pending.partition(b"\0")
            reply = json.loads(raw)
            if reply.get("id") == msg_id:
                assert "error" not in reply, reply
                result = reply["result"]
            seen = seen or reply.get("method") == until
        return result

    try:
        target = send("Target.createTarget", url="about:blank")["targetId"]
        session = send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        send("Page.enable", session)
        send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=True,
        )
        send("Page.navigate", session, until="Page.loadEventFired", url=page.as_uri())
        probe = (
            "[document.documentElement.scrollWidth, window.innerWidth,"
            " document.querySelectorAll('nav.toc a').length]"
        )
        value = send("Runtime.evaluate", session, expression=probe, returnByValue=True)
        shot = send("Page.captureScreenshot", session, format="png")["data"]
        send("Browser.close")
    finally:
        os.close(to_chrome_w)
        proc.wait(timeout=60)
        os.close(from_chrome_r)
    page_width, viewport, toc = value["result"]["value"]
    return {"page": page_width, "viewport": viewport, "toc": toc}, base64.b64decode(shot)


def test_html_layout_on_a_phone_through_devtools(run_dir, tmp_path):
    """At 400 px (a phone; only the DevTools protocol can go below Chromium's 500 px window):
    the viewport meta keeps the layout at device width and nothing scrolls sideways. Without it
    a mobile browser lays the page out at its full width and shrinks it (innerWidth 1393)."""
    import io

    measure, shot = _devtools(_chromium(), tmp_path, run_dir / "report.html", 400)
    assert measure == {"page": 400, "viewport": 400, "toc": measure["toc"]}
    assert measure["toc"] >= 10
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"), dtype=float)
    assert pixels.shape == (2000, 400)
    assert pixels.std() > 10


def test_gallery_shows_the_real_collision_on_the_embedded_corpus(tmp_path):
    """wHash matches an edited crop of retina to the clock at 10 bits: the one real collision of
    the embedded corpus is in wHash's gallery (computed by the run, read by the report)."""
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'name = "w"\nversion = 1\nalgorithms = ["whash", "phash", "pdq"]\n'
        "bootstrap_resamples = 0\ntarget_fprs = [1e-3, 1e-6]\n"
        'transforms = ["identity", "crop(keep_area=0.81, anchor=\'bottom_right\')"]\n'
    )
    assert run_cli(suite, "skimage", tmp_path / "out") == 0
    # Exclusions by name at the top of both reports, before any table.
    md = (tmp_path / "out" / "report.md").read_text()
    page = (tmp_path / "out" / "report.html").read_text()
    line = "pdq: clock excluded (PDQ quality 34 is below the gate 50), with its 2 edited copies"
    assert md.index(line.replace("(", "\\(").replace(")", "\\)")) < md.index("\n|")
    assert line + ": left out of n" in page  # not counted with gated copies, which are misses
    assert page.index(line) < page.index("<table>")
    # The answer box: threshold, held-out rates, excluded images, what cannot be supported.
    answer = page.split('<section id="answer">')[1].split("</section>")[0]
    assert answer.count("<div class=answer>") == 3
    assert "Excluded images: clock" in answer
    assert "Cannot support:" in answer
    assert "needs 3,000 negative pairs per split" in answer
    # Targets 1e-3 and 1e-6 give the same answer here: one row each, not two.
    thresholds = page.split('<section id="thresholds">')[1].split("</table>")[0]
    assert thresholds.count("<code>pdq</code>") == 1
    assert "0.001, 1e-06" in thresholds
    result = results.to_builtins(results.load(tmp_path / "out" / "results.json"))
    found = [
        (p["algorithm"], p["a"], p["b"], p["distance"]) for p in result["gallery"]["collisions"]
    ]
    assert ("whash", "retina", "clock", 10) in found
    assert all(
        p["thumbnails"]["a"].startswith("data:image/jpeg") for p in result["gallery"]["collisions"]
    )
    html = render_html(result).split('id="galleries"')[1]
    whash = html.split("<h3><code>whash</code></h3>")[1].split("<h3>")[0]
    assert (
        "<b>retina</b> after <code>crop(anchor=&#39;bottom_right&#39;,keep_area=0.81)</code>"
        in whash
    )
    assert "<b>clock</b>" in whash
    assert "distance 10" in whash
    phash = html.split("<h3><code>phash</code></h3>")[1].split("<h3>")[0]
    assert "No pair of different images matched" in phash


@pytest.mark.slow
def test_gallery_sets_degenerate_tiles_apart(tmp_path):
    """skimage_tiles has flat black and grey tiles: flagged by hygiene, they are listed apart and
    no gallery card shows one."""
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'name = "t"\nversion = 1\nalgorithms = ["phash", "dhash"]\nbootstrap_resamples = 0\n'
        'transforms = ["identity", "crop@S3", "resize(scale=0.25)"]\n'
    )
    assert run_cli(suite, "skimage_tiles", tmp_path / "out") == 0
    result = results.to_builtins(results.load(tmp_path / "out" / "results.json"))
    degenerate = {d["image"] for d in result["hygiene"]["degenerate"]}
    pics = result["gallery"]
    assert degenerate
    assert degenerate <= {s["image"] for s in pics["set_apart"]}
    shown = {e["image"] for e in pics["escapes"]}
    shown |= {p[k] for p in pics["collisions"] for k in ("a", "b")}
    assert pics["escapes"]
    assert pics["collisions"]
    assert not shown & degenerate
    html = render_html(result)
    cards = (
        html.split('id="galleries"')[1].split('id="provenance"')[0].split("<div class=card>")[1:]
    )
    assert cards
    for card in cards:
        assert not any(f"<b>{image}</b>" in card for image in degenerate)


def _fake(distances_by_algo, n_pairs=100, collisions=None):
    """A minimal results document with one edit and per-image distances per algorithm."""
    n = len(next(iter(distances_by_algo.values())))
    collisions = collisions or {}
    images = [{"id": f"i{k}"} for k in range(n)]
    return results.from_builtins(
        {
            "schema_version": results.SCHEMA_VERSION,
            "suite": {"name": "fake", "version": 1, "config": {"target_fprs": [0.05]}},
            "dataset": {
                "name": "fake",
                "content_sha256": "x",
                "n_images": n,
                "n_evaluated": n,
                "images": images,
            },
            "environment": {"packages": {}, "codecs": {}},
            "algorithms": [{"id": a, "n_bits": 20, "thresholds": [10]} for a in distances_by_algo],
            "transforms": [{"id": "identity", "steps": []}, {"id": "crop", "steps": []}],
            "cells": [
                {
                    "algorithm": a,
                    "transform": "crop",
                    "positives": {"n": n, "hist": [], "distances": d},
                    "metrics": [],
                }
                for a, d in distances_by_algo.items()
            ],
            "collisions": [
                {
                    "algorithm": a,
                    "protocol": "originals_all_pairs",
                    "hist": [collisions.get(a, 0)] + [0] * 19 + [n_pairs - collisions.get(a, 0)],
                    "metrics": [],
                }
                for a in distances_by_algo
            ],
        }
    )


def test_compare_flags_a_real_difference_and_not_noise():
    rng = np.random.default_rng(0)
    strong = [0] * 40  # always matches
    weak = [0] * 20 + [30] * 20  # misses half
    close = [0] * 39 + [30]  # one discordant image vs strong
    report = compare.compare([("run", _fake({"strong": strong, "weak": weak, "close": close}))])
    by = {(p["a"], p["b"]): p for p in report["pairs"]}
    sig = by[("strong", "weak")]
    assert sig["per_transform"][0]["significant"]
    assert sig["per_transform"][0]["p_value"] < 1e-5
    assert sig["pooled_tpr"]["significant"]
    noise = by[("strong", "close")]
    assert not noise["per_transform"][0]["significant"]
    assert noise["per_transform"][0]["p_value"] == 1.0
    assert not noise["pooled_tpr"]["significant"]
    assert rng is not None


def test_compare_false_match_rates_and_refusals():
    a = _fake({"x": [0] * 30}, n_pairs=1000, collisions={"x": 1})
    b = _fake({"x": [0] * 30}, n_pairs=1000, collisions={"x": 40})
    report = compare.compare([("old", a), ("new", b)])
    assert report["pairs"][0]["fpr_at_threshold"]["significant"]
    other = _fake({"x": [0] * 30})
    other = replace(other, suite=replace(other.suite, version=2))
    with pytest.raises(compare.IncomparableError, match="same suite version"):
        compare.compare([("a", a), ("b", other)])
    b.environment["packages"]["pillow"] = "12.3.0"
    assert compare.compare([("a", a), ("b", b)])["warnings"]


def test_compare_pairs_each_algorithm_with_itself_across_runs():
    old = _fake({"x": [0] * 30, "y": [0] * 15 + [30] * 15})
    new = _fake({"x": [0] * 30, "y": [0] * 30})
    report = compare.compare([("old", old), ("new", new)])
    assert [(p["a"], p["b"]) for p in report["pairs"]] == [("old:x", "new:x"), ("old:y", "new:y")]
    assert report["pairing"] == "each algorithm with itself across runs"
    summary = {s["a"]: s for s in report["summary"]}
    assert summary["old:y"]["pooled_tpr"] == "B better"
    assert summary["old:x"]["pooled_tpr"] == "within noise"
    only = compare.compare([("old", old), ("new", new)], algorithms=["y"])
    assert [p["a"] for p in only["pairs"]] == ["old:y"]
    with pytest.raises(compare.IncomparableError, match="not in these results"):
        compare.compare([("old", old), ("new", new)], algorithms=["z"])
    assert compare.compare([("old", old), ("new", new)], algorithms=["Y"])["pairs"] == only["pairs"]
    # Runs sharing no algorithm (a vendor's score beside a run): every one with every other.
    vendor = _fake({"v": [0] * 30})
    side = compare.compare([("old", old), ("vendor", vendor)])
    assert side["pairing"] == "every algorithm with every other"
    pairs = [(p["a"], p["b"]) for p in side["pairs"]]
    assert pairs == [("old:x", "old:y"), ("old:x", "vendor:v"), ("old:y", "vendor:v")]
    text = comparison.render_markdown(report)
    assert text.index("## Summary") < text.index("## `old:x`")
    assert "Fisher" in text
    html = comparison.render_html(report)
    assert "font: 14px/1.45 system-ui" in html  # the run report's stylesheet
    assert "not resolved by these corpora" in html  # the same caveats as the Markdown
    assert "not resolved by these corpora" in text


def test_compare_cli(run_dir, capsys, tmp_path):
    path = str(run_dir / "results.json")
    assert main(["compare", path]) == 0
    assert "McNemar" in capsys.readouterr().out
    assert main(["compare", path, "--format", "html", "--out", str(tmp_path / "c.html")]) == 0
    assert "<table>" in (tmp_path / "c.html").read_text()
    assert main(["compare", path, "--format", "json"]) == 0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PDQ", "pdq"),
        ("pdq<=31|phash<=10", "pdq<=31 | phash<=10"),
        ("PHash & PDQ", "pdq & phash"),
        ("phash(hash_size=8)", "phash"),
        ("ACME", "acme"),
        ("dhash", None),
    ],
)
def test_algorithm_names_resolve_as_a_suite_spells_them(name, expected):
    ids = ["pdq", "phash", "pdq<=31 | phash<=10", "pdq & phash", "acme"]
    assert compare.resolve(name, ids) == expected
