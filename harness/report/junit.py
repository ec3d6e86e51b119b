"""JUnit XML of a run, for CI systems that display test results.

One test case per (algorithm, transform) cell, passing, with its TPR and FPR at the first threshold
in the output; one failing test case per image failure, with the reason. Regressions against a
baseline are the job of ``hash-harness check`` (its own JUnit output).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr


def render_junit(result: dict[str, Any]) -> str:
    suite = result["suite"]
    name = f"hash-harness {suite['name']} v{suite['version']}"
    cases = []
    for cell in result["cells"]:
        tpr = next(
            (m for m in cell["metrics"] if m["name"] == "tpr" and len(m["params"]) == 1), None
        )
        summary = (
            "n/a"
            if tpr is None or tpr["value"] is None
            else (
                f"TPR {tpr['value']:.3f} ({tpr['k']}/{tpr['n']}) at <= {tpr['params']['threshold']}"
            )
        )
        attrs = f"classname={quoteattr(cell['algorithm'])} name={quoteattr(cell['transform'])}"
        cases.append(f"  <testcase {attrs}><system-out>{escape(summary)}</system-out></testcase>")
    for f in result["failures"]:
        label = f"{f['stage']}: {f['image']}" + (
            f" / {f['transform']}" if f.get("transform") else ""
        )
        cases.append(
            f'  <testcase classname="failures" name={quoteattr(label)}>'
            f"<failure message={quoteattr(f['error'])}>{escape(f['error'])}</failure></testcase>"
        )
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name={quoteattr(name)} '
        f'tests="{len(cases)}" failures="{len(result["failures"])}">'
    )
    return "\n".join([head, *cases, "</testsuite>"]) + "\n"
