"""Shared fixtures, hypothesis profiles and the --update-golden switch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
GOLDEN = Path(__file__).resolve().parent / "golden"
# The example plugin's own tests run against an installed copy (tests/test_plugins.py): here its
# import would register the plugin into this process's registries.
collect_ignore = ["plugin_example"]

# Image work has variable latency on a shared machine: no deadlines. The "ci" profile is
# derandomized so a run never fails on an example another run did not draw.
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=60)
# Long fuzzing runs (benchmarks/fuzz.md): HYPOTHESIS_PROFILE=fuzz pytest tests/test_hostile.py
settings.register_profile(
    "fuzz", deadline=None, max_examples=20_000, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    # Runs and downloads in tests use a cache of their own, never the user's (and never a stale
    # one from an earlier session, in which adapters or transforms may have changed).
    import tempfile

    os.environ["HASH_HARNESS_CACHE"] = tempfile.mkdtemp(prefix="hash-harness-test-cache-")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the golden files (tests/golden, benchmarks/golden) for the current "
        "environment instead of checking them",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def reference_dir(*parts: str) -> Path:
    """A folder of ../shared/reference, or skip the test with the reason."""
    path = SHARED_REFERENCE.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"reference vectors not found at {path} (../shared/reference is absent)")
    return path


def synthetic_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth gradient with blobs: structured enough for hashes to be meaningful."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), dtype=np.float64)
    for c in range(3):
        fx, fy, phase = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0, 6.28)
        img[..., c] = 127.5 + 127.5 * np.sin(
            2 * np.pi * (fx * x / max(width, 1) + fy * y / max(height, 1)) + phase
        )
    return Image.fromarray(img.clip(0, 255).astype(np.uint8), mode="RGB")


@pytest.fixture
def gradient() -> Image.Image:
    return synthetic_image(96, 64)


@pytest.fixture(scope="session")
def embedded():
    from datasets_benign import open_dataset

    return open_dataset("skimage")


def run_cli(suite: object, dataset: object, out: object, *extra: str) -> int:
    """``hash-harness run --suite S --dataset D --out O --quiet [extra]``, in-process."""
    from harness.cli import main

    command = ["run", "--suite", str(suite), "--dataset", str(dataset), "--out", str(out)]
    return main([*command, "--quiet", *extra])


@contextmanager
def holding_output_lock(out: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``out``'s output-folder lock, as a command writing there does;
    killed on exit, as a crash would be (its lock file stays behind, its lock does not)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from harness import results; "
         "results.check_output_folder(sys.argv[1], ()); print('locked', flush=True); "
         "sys.stdin.read()", str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()
