"""A real third-party plugin package, installed and discovered through entry points."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent / "plugin_example"

SCRIPT = """
import json, sys
from harness.cli import main
from harness import results
from harness.algorithms import ALGORITHMS
from transforms import TRANSFORMS
suite = sys.argv[1]
code = main(["run", "--suite", suite, "--out", sys.argv[2], "--quiet", "--workers", "2"])
r = results.to_builtins(results.load(sys.argv[2] + "/results.json"))
print(json.dumps({"code": code, "algos": [a["id"] for a in r["algorithms"]],
                  "cells": len(r["cells"]), "failures": r["failures"],
                  "registered": "example_row_bands" in ALGORITHMS.names()
                                 and "example_invert" in TRANSFORMS.names()}))
"""


def install(target: Path) -> None:
    """Lay the plugin out as an installed wheel would (package + dist-info with entry points),
    without building: importlib.metadata discovers it on sys.path exactly the same way."""
    meta = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    shutil.copytree(PLUGIN / "hash_harness_example", target / "hash_harness_example")
    info = target / "hash_harness_example_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
    )
    lines = []
    for group, eps in meta["entry-points"].items():
        lines += [f"[{group}]", *(f"{k} = {v}" for k, v in eps.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines))


def test_entry_point_plugin_is_discovered_and_runs(tmp_path):
    target = tmp_path / "site"
    install(target)
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'algorithms = ["example_row_bands", "phash"]\n'
        'transforms = ["identity", "example_invert", "example_invert|jpeg@S3"]\n'
        "bootstrap_resamples = 0\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(suite), str(tmp_path / "out")],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    assert report["algos"] == ["example_row_bands", "phash"]
    assert report["cells"] == 2 * 3
    assert report["failures"] == []
    assert report["registered"]


def test_the_plugins_own_conformance_tests_pass_with_the_kit(tmp_path):
    """What a plugin author runs: ``harness.testing`` over the plugin's units, from its own
    test folder, with the plugin installed."""
    target = tmp_path / "site"
    install(target)
    tests = tmp_path / "plugin_tests"
    shutil.copytree(PLUGIN / "tests", tests)
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 passed" in out.stdout
