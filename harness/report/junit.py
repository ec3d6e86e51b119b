"""JUnit XML of a run, for CI systems that display test results.

One test case per (algorithm, transform) cell, passing, with its TPR and FPR at the first threshold
in the output; one failing test case per image failure, with the reason. Regressions against a
baseline are the job of ``hash-harness check`` (its own JUnit output).
"""

from __future__ import annotations

from harness.escaping import xml_attr as quoteattr
from harness.escaping import xml_text as escape
from harness.result_model import Results
from harness.results import RUN_ID_MARK


def render_junit(result: Results) -> str:
    suite = result.suite
    name = f"hash-harness {suite.name} v{suite.version}"
    cases = []
    for cell in result.cells:
        tpr = next((m for m in cell.metrics if m.name == "tpr" and len(m.params) == 1), None)
        summary = (
            "n/a"
            if tpr is None or tpr.value is None
            else f"TPR {tpr.value:.3f} ({tpr.k}/{tpr.n}) at <= {tpr.threshold}"
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
