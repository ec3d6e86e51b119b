"""The package layering (docs/architecture.md): lower layers never import higher ones.

The static check reads every import with ``ast`` (tools/import_graph.py, lazy imports included);
the runtime check imports the lower layers in a fresh interpreter and lists what they loaded.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "import_graph.py"


@pytest.fixture(scope="module")
def graph():
    spec = importlib.util.spec_from_file_location("import_graph", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_lower_layer_imports_a_higher_one(graph):
    assert graph.violations() == []


def test_the_check_names_an_import_against_the_rules(graph, monkeypatch):
    monkeypatch.setitem(graph.RULES, "transforms", set())  # as if transforms might import nothing
    bad = graph.violations()
    assert any("transforms/base.py" in v and "(transforms -> harness.core)" in v for v in bad)


def test_layers_as_documented(graph):
    layers = graph.layer_graph()
    assert layers["harness.core"] == set()
    assert layers["transforms"] == {"harness.core"}
    assert layers["datasets_benign"] == {"harness.core"}
    assert "transforms" not in layers["harness.report"]
    doc = (TOOL.parents[1] / "docs" / "architecture.md").read_text()
    assert graph.mermaid(layers) in doc, "regenerate with `python tools/import_graph.py`"


_LOADED = "import sys, json, {0}; print(json.dumps(sorted(sys.modules)))"


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("transforms", ("transforms", "harness.core")),
        ("datasets_benign", ("datasets_benign", "harness.core")),
        ("harness.core.spec", ("harness.core",)),
    ],
)
def test_importing_a_lower_layer_loads_nothing_above_it(package, allowed):
    out = subprocess.run(
        [sys.executable, "-c", _LOADED.format(package)], capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout)
    project = [m for m in loaded if m.split(".")[0] in ("harness", "transforms", "datasets_benign")]
    # harness/__init__.py runs first (it is the parent package) and stays light: the API facade
    # imports only harness.core at import time.
    above = [
        m
        for m in project
        if m not in ("harness", "harness.api")
        and not any(m == a or m.startswith(a + ".") for a in allowed)
    ]
    assert above == [], f"import {package} loaded {above}"


def test_the_algorithm_registry_registers_no_transforms():
    out = subprocess.run(
        [sys.executable, "-c", _LOADED.format("harness.algorithms")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [m for m in json.loads(out.stdout) if m.startswith("transforms")] == []
