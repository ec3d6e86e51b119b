"""JUnit XML of a run, for CI systems that display test results.

One test case per (algorithm, transform) cell and per (algorithm, kind) of real variants, passing,
with its TPR at the first threshold in the output (a variant row's also at each threshold the run
chose); one failing test case per image failure, with the reason. A run has no floor to fail
against: regressions against a baseline - variant rows included, one failing case per worse or
missing rate - are the job of ``hash-harness check`` (its own JUnit output).
"""

from __future__ import annotations

from harness import variants
from harness.escaping import xml_attr as quoteattr
from harness.escaping import xml_text as escape
from harness.result_model import Cell, Metric, Rate, Results, VariantRow
from harness.results import RUN_ID_MARK


def _summary(tpr: Metric | Rate | None, threshold: int | None) -> str:
    if tpr is None or tpr.value is None:
        return "n/a"
    at = "no threshold" if threshold is None else f"<= {threshold}"
    return f"TPR {tpr.value:.3f} ({tpr.k}/{tpr.n}) at {at}"


def render_junit(result: Results) -> str:
    suite = result.suite
    name = f"hash-harness {suite.name} v{suite.version}"
    cases = []
    rows: list[Cell | VariantRow] = [*result.cells, *variants.rows(result)]
    for cell in rows:
        tpr = next((m for m in cell.metrics if m.name == "tpr" and len(m.params) == 1), None)
        summary = _summary(tpr, tpr.threshold if tpr else None)
        if isinstance(cell, VariantRow):  # and at the thresholds chosen without any variant
            summary += "".join(
                f"; at the threshold chosen for FPR <= {c.target_fpr:g}: "
                + _summary(c.tpr, c.threshold)
                + ("" if c.status == "ok" else f" ({c.status})")
                for c in cell.chosen or []
            )
        attrs = f"classname={quoteattr(cell.algorithm)} name={quoteattr(cell.transform)}"
        cases.append(f"  <testcase {attrs}><system-out>{escape(summary)}</system-out></testcase>")
    failures = result.failures or []
    for f in failures:
        label = f"{f.stage}: {f.image}" + (f" / {f.transform}" if f.transform else "")
        cases.append(
            f'  <testcase classname="failures" name={quoteattr(label)}>'
            f"<failure message={quoteattr(f.error)}>{escape(f.error)}</failure></testcase>"
        )
    run_id = (result.run.id if result.run else None) or "none"
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- {RUN_ID_MARK}{escape(run_id)} -->\n'
        f'<testsuite name={quoteattr(name)} tests="{len(cases)}" '
        f'failures="{len(failures)}">\n'
        f'  <properties><property name="hash-harness.run" value={quoteattr(run_id)}/>'
        f'<property name="hash-harness.decode" '
        f"value={quoteattr(result.dataset.decode or 'viewer')}/></properties>"
    )
    return "\n".join([head, *cases, "</testsuite>"]) + "\n"
