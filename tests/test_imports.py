"""Import budget of the quick commands, guarded by what they import (not by timing).

``hash-harness --help`` and ``hash-harness list ...`` should start in well under a second: every
heavy module (statistics, plotting, compiled kernels, the encoder stack, the golden-hash checker)
is imported only by the commands that use it. Each command runs in a fresh interpreter and
reports the modules it loaded.
"""

import json
import subprocess
import sys

import pytest

#: Loaded by no quick command: statistics, plots, compiled kernels, evaluation, the pool.
NEVER = (
    "scipy.stats",
    "matplotlib",
    "sklearn",
    "numba",
    "harness.golden",
    "harness.evaluate",
    "harness.pipeline",
    "harness.runner",
    "harness.hashing",
    "harness.pool",
    "harness.report",
    "multiprocessing",
)

#: Per command, what it must not import beyond NEVER.
CASES = {
    ("--help",): ("numpy", "PIL", "scipy", "transforms", "harness.algorithms", "datasets_benign"),
    ("list", "transforms"): ("scipy", "harness.algorithms", "datasets_benign"),
    ("list", "presets"): ("scipy", "harness.algorithms", "datasets_benign"),
    ("list", "ladders"): ("scipy", "harness.algorithms", "datasets_benign"),
    ("list", "algorithms"): ("scipy", "transforms", "datasets_benign"),
    ("list", "datasets"): ("scipy", "transforms", "harness.algorithms"),
}

_PROBE = """
import contextlib, io, json, sys
from harness.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)))
"""


def _modules(argv: tuple[str, ...]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", list(CASES), ids=" ".join)
def test_quick_commands_import_only_what_they_use(argv):
    loaded = _modules(argv)
    heavy = [m for m in loaded if any(m == p or m.startswith(p + ".") for p in NEVER + CASES[argv])]
    assert heavy == [], f"`hash-harness {' '.join(argv)}` imported {heavy}"


def test_a_small_run_imports_no_heavy_statistics_stack(tmp_path):
    """A run's statistics need scipy.special only: ROC from the histograms (not scikit-learn),
    the binomial CDF through scipy.special (not scipy.stats), no beta-binomial fit (no
    scipy.optimize) and no compiled kernels for a few images (no numba)."""
    loaded = _modules(
        ("run", "--dataset", "skimage[4]", "--no-cache", "--quiet", "--out", str(tmp_path))
    )
    assert (tmp_path / "results.json").exists()  # the run went through to its outputs
    heavy = ("sklearn", "scipy.stats", "scipy.optimize", "numba", "matplotlib")
    assert [m for m in loaded if any(m == p or m.startswith(p + ".") for p in heavy)] == []
