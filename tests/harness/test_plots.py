"""The report's SVG plots: well-formed, escaped, deterministic, honest axes."""

import xml.etree.ElementTree as ET

from harness import results
from harness.report import plots
from harness.report.svg import Plot, nice_ticks

HOSTILE = '<script>alert(1)</script> & "quotes"'


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output


def test_plot_escapes_every_label_and_is_well_formed():
    plot = Plot(HOSTILE, HOSTILE, HOSTILE, (0.0, 1.0), (0.0, 1.0))
    plot.line([0, 0.5, 1], [0, 1, 0.5], "#1f77b4", label=HOSTILE, marker="diamond")
    plot.stairs([0.2, 0.5, 0.3], "#999", label=HOSTILE, fill=True)
    plot.vline(0.5, label=HOSTILE)
    svg = plot.render()
    root = _parse(svg)
    assert root.tag.endswith("svg")
    assert "<script>" not in svg
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts.count(HOSTILE) == 6  # title, two axis labels, three legend entries
    assert svg == plot.render()  # deterministic


def test_log_axis_ticks_and_limits():
    plot = Plot("t", "x", "y", (1e-5, 1.0), (0.0, 1.0), xlog=True)
    assert plot.x(1e-5) == plot.left
    assert plot.x(1.0) == plot.width - plot.right
    assert abs(plot.x(1e-3) - (plot.left + (plot.width - plot.left - plot.right) * 0.4)) < 1e-9
    assert plot._ticks((1e-5, 1.0), True) == [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(30, 90) == [40, 60, 80]


def test_report_plots_use_the_edit_parameter_and_the_observable_floor(tmp_path):
    """Severity on JPEG quality (not an abstract intensity), ROC from 1/n with the limit drawn."""
    from tests.conftest import run_cli

    suite = tmp_path / "s.toml"
    suite.write_text(
        'name = "p"\nversion = 1\nalgorithms = ["phash", "dhash"]\nbootstrap_resamples = 0\n'
        'transforms = ["identity", "jpeg@S1-S3", "resize@S2"]\n'
    )
    assert run_cli(suite, "skimage[10]", tmp_path / "out") == 0
    result = results.to_builtins(results.load(tmp_path / "out" / "results.json"))
    colour = plots.colours([a["id"] for a in result["algorithms"]])
    (jpeg,) = plots.severity_panels(result, colour)
    assert ">jpeg quality</text>" in jpeg
    assert "intensity" not in jpeg
    assert jpeg.count("<polyline") == 2  # one line per algorithm, each with a legend entry
    assert ">phash ≤10</text>" in jpeg
    assert ">dhash ≤10</text>" in jpeg
    n = next(c["n_pairs"] for c in result["collisions"] if c["protocol"] == "originals_all_pairs")
    roc, det = plots.roc_det(result["curves"], colour, dict.fromkeys(colour, n))
    assert f"1/n = {1 / n:.2g} (smallest observable)" in roc
    assert "(AUC " in roc
    assert ">phash</text>" in det  # the DET has its legend too
    for svg in (jpeg, roc, det, *plots.distance_histograms(result, colour)):
        _parse(svg)
