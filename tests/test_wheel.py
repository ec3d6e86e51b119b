"""The installed wheel, used the way a new user would: a fresh virtual environment outside the
checkout, with nothing of the checkout on ``sys.path``.

The wheel is built from the files git knows (a clean checkout), installed with the pinned
constraints (pdqhash, which has no Linux wheel, comes from pip's wheel cache after its first
build), and every command a user starts with must exit 0 there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _sh(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, ok: bool = True):
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if ok:
        assert proc.returncode == 0, (
            f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the tracked (and new, not ignored) files."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("building the wheel from a clean copy needs a git checkout")
    files = _sh(
        "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO
    ).stdout.split("\0")
    src = tmp_path_factory.mktemp("source")
    for name in filter(None, files):
        if (REPO / name).is_file():  # deleted but not yet committed files are listed too
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src, cwd=src)
    (built,) = dist.glob("hash_harness-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel (and pandas, pytest) installed."""
    root = tmp_path_factory.mktemp("venv")
    _sh(sys.executable, "-m", "venv", root, cwd=root)
    pip = [root / "bin" / "python", "-m", "pip", "install", "-q", "-c", REPO / "constraints.txt"]
    _sh(*pip, f"{wheel}[pandas]", "pytest", cwd=root)
    return root


@pytest.fixture
def user(venv: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run a command of the venv in an empty folder outside the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HASH_HARNESS_CACHE"] = str(tmp_path / "cache")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return _sh(venv / "bin" / args[0], *args[1:], cwd=tmp_path, env=env, ok=ok)

    return run


def test_the_wheel_carries_its_data_and_no_benchmarks_package(wheel: Path):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for suite in ("default", "ci", "thorn", "mckeown", "struppek", "imagededup"):
        assert f"harness/data/suites/{suite}.toml" in names
    assert "harness/data/baselines/ci.json" in names
    assert "harness/data/golden/hashes.json" in names
    assert not [n for n in names if n.startswith(("benchmarks/", "tests/"))]


def test_floor_refuses_the_broken_imagehash(wheel: Path, venv: Path):
    """imagehash 4.3.0 imports ``six`` without declaring it: every command would crash."""
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--dry-run", "-q"]
    proc = _sh(*pip, wheel, "imagehash==4.3.0", cwd=venv, ok=False)
    assert proc.returncode != 0
    assert "ResolutionImpossible" in proc.stderr
    assert "imagehash" in proc.stderr.lower()


def test_a_user_outside_the_checkout(user, venv: Path, tmp_path: Path):
    where = user(
        "python", "-c", "import harness, sys; print(harness.__file__); print('\\n'.join(sys.path))"
    ).stdout
    assert where.startswith(str(venv))
    assert str(REPO) not in where

    listed = user("hash-harness", "list", "suites").stdout
    assert "thorn (v1): Thorn perception benchmark" in listed
    assert "ci (v1): Guard suite" in listed

    user("hash-harness", "run", "--suite", "ci", "--out", "ci", "--workers", "2", "--quiet")
    checked = user("hash-harness", "check", "ci/results.json", "--baseline", "ci").stdout
    assert "**OK**" in checked
    user("hash-harness", "run", "--suite", "thorn", "--out", "thorn", "--workers", "2", "--quiet")
    assert (tmp_path / "thorn" / "report.html").is_file()
    user("hash-harness", "run", "--workers", "2", "--quiet")  # the default suite into ./results
    assert "**OK**" in user("hash-harness", "golden", "check").stdout
    refused = user("hash-harness", "run", "--suite", "thron", ok=False)
    assert refused.returncode == 2
    assert "Did you mean 'thorn'?" in refused.stderr

    table = user(
        "python",
        "-c",
        "import harness; r = harness.run('default', workers=2); print(r.cells.to_pandas().head())",
    ).stdout
    for column in ("algorithm", "transform", "metric", "status"):
        assert column in table
    assert "[5 rows x 13 columns]" in table

    # The pytest plugin from the wheel: the bundled ci baseline, by name, against the ci run.
    (tmp_path / "test_guard.py").write_text(
        "def test_guard(hash_harness):\n"
        "    hash_harness.assert_no_regression('ci', results='ci/results.json')\n"
    )
    assert "1 passed" in user("python", "-m", "pytest", "-q", "-p", "no:cacheprovider").stdout
