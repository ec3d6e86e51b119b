"""Project-level checks: the README's commands are the ones CI runs, and the code is lint-clean."""

import importlib.util
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    command = re.search(r"pip install [^`\n]*pytest[^`\n]*", readme)
    assert command, "README.md must show a one-line install-and-test command"
    assert command.group(0) in (REPO / ".ci" / "run").read_text()


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed")
def test_ruff_lint_and_format():
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def _requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [*project["dependencies"], *extras]


def test_floors_admit_the_pinned_versions():
    """Every requirement in pyproject (core and extras) admits the version constraints.txt pins,
    so `pip install -c constraints.txt` can always resolve; and the floors exclude releases
    known to break (imagehash 4.3.0 imports `six` without requiring it)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"constraints.txt pins exactly: {line}"
            pins[canonicalize_name(req.name)] = spec.version
    checked = 0
    for text in _requirements():
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name == "hash-harness":
            continue
        assert name in pins, f"{req.name} is a requirement but not pinned in constraints.txt"
        assert req.specifier.contains(pins[name]), f"{text} refuses the pinned {pins[name]}"
        checked += 1
    assert checked >= 15
    imagehash = next(Requirement(r) for r in _requirements() if r.lower().startswith("imagehash"))
    assert not imagehash.specifier.contains("4.3.0")
    assert imagehash.specifier.contains("4.3.1")


#: Longest function in ``harness/`` that needs no explanation.
MAX_FUNCTION_LINES = 80


def test_long_functions_say_why():
    """A function over 80 lines in harness/ carries a ``# Long:`` comment saying why it must be."""
    import ast

    unexplained = []
    for path in sorted((REPO / "harness").rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body = lines[node.lineno - 1 : node.end_lineno]
            if len(body) > MAX_FUNCTION_LINES and not any("# Long:" in line for line in body):
                unexplained.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert not unexplained, f"over {MAX_FUNCTION_LINES} lines without '# Long:': {unexplained}"
