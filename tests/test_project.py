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
