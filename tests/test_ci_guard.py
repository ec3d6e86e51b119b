"""The CI guard cannot be fooled: code-aware cache, multiplicity-aware verdicts, config drift.

Every scenario goes through the commands a CI job runs (``hash-harness run`` with the hash
cache, ``baseline create``, ``check``) in a fresh interpreter, with a real plugin installed the
way a wheel would be (package + dist-info with entry points on ``sys.path``).
"""

import json
import os
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import codehash, golden, guard
from transforms.geometry import Crop

ROOT = Path(__file__).resolve().parent.parent
CI_SUITE = ROOT / "benchmarks" / "suites" / "ci.toml"

PLUGIN = '''"""A pHash plugin whose release can go wrong: FLIP bits flipped per hash, TARGET: only
edited images of that size get 20 flipped bits."""

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from harness.algorithms.base import ALGORITHMS, HashAlgorithm, OperatingThreshold, make_algorithm

FLIP = 0
TARGET = None


@ALGORITHMS.register("flip_phash")
@dataclass(frozen=True)
class FlipPhash(HashAlgorithm):
    name: ClassVar[str] = "flip_phash"
    libraries: ClassVar[tuple[str, ...]] = ("flip-plugin", "imagehash", "pillow")

    @property
    def n_bits(self):
        return 64

    def operating_thresholds(self):
        return (OperatingThreshold(10, "as imagehash pHash"),)

    def hash_bits(self, image):
        bits = np.unpackbits(make_algorithm("phash").hash(image)).astype(bool)
        seed = int.from_bytes(hashlib.sha256(image.tobytes()).digest()[:8], "big")
        rng = np.random.default_rng(seed)  # the same image always gets the same flips
        flips = 20 if TARGET is not None and image.size == tuple(TARGET) else FLIP
        if flips:
            bits[rng.choice(64, flips, replace=False)] ^= True
        return bits
'''


def _install(site: Path) -> Path:
    package = site / "flip_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN)
    info = site / "flip_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flip-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hash_harness.algorithms]\nflip = flip_plugin\n")
    return package / "__init__.py"


def _edit(module: Path, old: str, new: str) -> None:
    text = module.read_text()
    assert old in text
    module.write_text(text.replace(old, new))


class Guard:
    """A CI job's view: the plugin's site folder, one hash cache, the suite file."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.module = _install(tmp / "site")
        config = tomllib.loads(CI_SUITE.read_text())
        self.suite = tmp / "suite.toml"
        self.write_suite(config["transforms"])
        self.env = {
            **os.environ,
            "PYTHONPATH": str(tmp / "site"),
            "HASH_HARNESS_CACHE": str(tmp / "cache"),
        }

    def write_suite(self, transforms: list[str], extra: str = "") -> None:
        self.suite.write_text(
            'name = "ci"\nversion = 1\nseed = 0\ndataset = "skimage"\n'
            'algorithms = ["flip_phash"]\n'
            f"transforms = {json.dumps(transforms)}\nbootstrap_resamples = 0\n{extra}"
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.tmp,
            check=False,
        )

    def run(self, name: str) -> Path:
        done = self.cli("run", "--suite", str(self.suite), "--out", name, "--workers", "1")
        assert done.returncode == 0, done.stderr
        self.last_stderr = done.stderr
        return self.tmp / name / "results.json"

    def check(self, results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("check", str(results), "--baseline", "baseline.json", *extra)


@pytest.fixture(scope="module")
def ci_guard(tmp_path_factory):
    g = Guard(tmp_path_factory.mktemp("ci-guard"))
    g.base = g.run("base")
    made = g.cli("baseline", "create", "--results", str(g.base), "--out", "baseline.json")
    assert made.returncode == 0, made.stderr
    return g


@pytest.mark.slow
def test_identical_rerun_passes_from_the_cache(ci_guard):
    again = ci_guard.run("again")
    assert "119/119 images hashed" not in ci_guard.last_stderr  # 17 images, all from the cache
    assert "17 from cache" in ci_guard.last_stderr
    done = ci_guard.check(again)
    assert done.returncode == 0, done.stdout
    assert "**OK**" in done.stdout
    assert "0 changed within noise" in done.stdout


@pytest.mark.slow
def test_one_image_category_flip_is_reported_not_failed(ci_guard):
    """The one astronomy image stops matching after the crop; every other hash is unchanged."""
    images = json.loads(ci_guard.base.read_text())["dataset"]["images"]
    alone = [i for i in images if sum(j["category"] == i["category"] for j in images) == 1]
    image = alone[0]
    size = Crop(keep_area=0.9).output_size((image["width"], image["height"]))
    try:
        _edit(ci_guard.module, "TARGET = None", f"TARGET = {list(size)}")
        flipped = ci_guard.run("one-image")
    finally:
        _edit(ci_guard.module, f"TARGET = {list(size)}", "TARGET = None")
    done = ci_guard.check(flipped, "--json", "one.json")
    assert done.returncode == 0, done.stdout
    report = json.loads((ci_guard.tmp / "one.json").read_text())
    row = next(
        r
        for r in report["rows"]
        if r["key"]
        == f"tpr | flip_phash | crop(keep_area=0.9) | category={image['category']},threshold=10"
    )
    assert (row["baseline"]["k"], row["current"]["k"]) == (1, 0)
    assert row["status"] == "changed"  # reported ...
    assert f"category={image['category']}" in done.stdout  # ... in the printed table
    assert report["counts"]["worse"] == 0


@pytest.mark.slow
def test_plugin_code_change_without_version_bump_is_recomputed_and_fails(ci_guard):
    """A release whose 64-bit hashes flip 3 random bits per image, same package version: the
    cache must not serve the old hashes, and the paired tests must fail the build."""
    try:
        _edit(ci_guard.module, "FLIP = 0", "FLIP = 3")
        broken = ci_guard.run("broken")
    finally:
        _edit(ci_guard.module, "FLIP = 3", "FLIP = 0")
    assert "from cache" not in ci_guard.last_stderr
    done = ci_guard.check(broken, "--junit", "broken.xml")
    assert done.returncode == 1, done.stdout
    assert "**REGRESSION**" in done.stdout
    assert "| **worse** |" in done.stdout
    assert "familywise level 0.05" in done.stdout
    failures = ET.parse(ci_guard.tmp / "broken.xml").getroot().iter("testcase")  # noqa: S314
    failed = [c for c in failures if c.find("failure") is not None]
    assert failed
    assert {c.get("classname") for c in failed} == {"hash-harness.flip_phash"}
    message = failed[0].find("failure").get("message")
    assert "baseline " in message
    assert "current " in message
    assert "change -" in message


@pytest.mark.slow
def test_threshold_changed_without_version_bump_is_not_comparable(ci_guard):
    transforms = tomllib.loads(CI_SUITE.read_text())["transforms"]
    try:
        ci_guard.write_suite(transforms, "[thresholds]\nflip_phash = [6]\n")
        drifted = ci_guard.run("drifted")
    finally:
        ci_guard.write_suite(transforms)
    done = ci_guard.check(drifted)
    assert done.returncode == 2
    assert "changed without a version bump" in done.stderr
    assert "flip_phash threshold 10 -> 6" in done.stderr
    assert "missing" not in done.stdout  # no wall of missing/new rows


def test_config_diff_names_transform_and_setting_changes():
    base = {"config": {"seed": 0, "transforms": ["identity", "jpeg@S3"], "description": "a"}}
    config = {"seed": 1, "transforms": ["identity", "crop@S2"], "description": "b"}
    assert guard.config_diff(base, config, {}) == [
        "seed: 0 -> 1",
        "transforms: added 'crop@S2', removed 'jpeg@S3'",
    ]


def test_code_fingerprints_follow_the_code(tmp_path, monkeypatch):
    """Plugin package files, external executables and built-in module sources."""
    package = tmp_path / "fp_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n")
    (package / "table.json").write_text("[1]")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = codehash.package_fingerprint("fp_pkg")
    (package / "table.json").write_text("[2]")  # a data file counts as code
    codehash.package_fingerprint.cache_clear()
    assert codehash.package_fingerprint("fp_pkg") != before

    script = tmp_path / "vendor.py"
    script.write_text("print(1)\n")
    command = (sys.executable, str(script))
    first = codehash.command_fingerprint(command, os.environ.get("PATH"))
    script.write_text("print(2)\n")
    codehash.command_fingerprint.cache_clear()
    assert codehash.command_fingerprint(command, os.environ.get("PATH")) != first

    from harness import store
    from harness.algorithms import make_algorithm
    from transforms import parse_chain

    phash = make_algorithm("phash")
    assert store.algorithm_key(phash).endswith(f"code={phash.code_fingerprint()}")
    assert phash.code_fingerprint().startswith("src:")
    keys = store.column_keys([parse_chain("jpeg(quality=50)")], 0, "img", "env")
    assert "|code=" in keys[1]


def test_holm_tarone_ignores_rows_that_cannot_be_significant():
    # 30 rows where nothing changed cannot dilute one clear change ...
    tests = {f"r{i}": (1.0, 1.0) for i in range(30)}
    tests["moved"] = (0.5**6, 0.5**6)
    rejected, counted = guard.holm_tarone(tests, 0.05)
    assert rejected == {"moved"}
    assert counted == 1
    # ... while ten rows that each could be significant share the level (Holm: 0.05 / 10).
    tests = {f"r{i}": (0.5**6, 0.5**8) for i in range(10)}
    assert guard.holm_tarone(tests, 0.05)[0] == set()  # 0.0156 > 0.005
    tests["r0"] = (0.001, 0.5**8)
    assert guard.holm_tarone(tests, 0.05)[0] == {"r0"}


def test_committed_golden_covers_every_default_algorithm(capsys):
    """`golden create` pins every default algorithm; the committed file must hold them all,
    so `golden check` in CI watches each one."""
    from harness.cli import main

    recorded = golden.load(golden.DEFAULT_PATH)
    missing = set(golden.default_algorithms()) - set(recorded["hashes"])
    assert not missing, f"regenerate with `hash-harness golden create`; missing: {missing}"
    code = main(["golden", "check"])
    out = capsys.readouterr().out
    for algorithm in golden.default_algorithms():
        assert f"`{algorithm}`" in out
    if code != 0:  # other library versions than the recorded ones: drift is named, not hidden
        assert "recorded" in out or "drift" in out.lower()


@pytest.mark.slow
def test_pytest_fixture_reruns_on_the_baselines_own_folder(tmp_path, monkeypatch):
    """A baseline made with `--dataset DIR` is re-run on DIR (found beside the baseline when
    its recorded path is relative), not on the suite's registered corpus."""
    from harness.cli import main
    from harness.pytest_plugin import HashHarnessGuard
    from tests.conftest import synthetic_image

    project = tmp_path / "project"
    (project / "images").mkdir(parents=True)
    for i in range(6):
        synthetic_image(96 + 8 * i, 80, seed=i).save(project / "images" / f"{i}.png")
    suite = project / "suite.toml"
    suite.write_text(
        'name = "folder"\nversion = 1\ndataset = "skimage"\nalgorithms = ["phash"]\n'
        'transforms = ["identity", "jpeg@S3"]\nbootstrap_resamples = 0\n'
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("HASH_HARNESS_CACHE", str(tmp_path / "cache"))
    args = ["--suite", "suite.toml", "--dataset", "images", "--workers", "1", "--quiet"]
    assert main(["run", *args, "--out", "out"]) == 0
    assert main(["baseline", "create", "--results", "out/results.json", "--out", "base.json"]) == 0
    monkeypatch.chdir(tmp_path)  # a test run from elsewhere: the path is found beside the baseline
    report = HashHarnessGuard(workers=1).assert_no_regression(project / "base.json")
    assert report["counts"]["unchanged"] == len(report["rows"])
    base = json.loads((project / "base.json").read_text())
    assert base["dataset"]["name"] == "images"
    # The counts add up to what they say they count: the baseline's metrics, the pooled tests.
    judged = report["judged"]
    assert judged["baseline_metrics"] == len(base["metrics"])
    assert judged["baseline_metrics"] + judged["new_metrics"] + judged["pooled_tests"] == len(
        report["rows"]
    )
