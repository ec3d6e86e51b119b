"""Ctrl-C during a run: it stops within seconds, leaves no process behind and loses nothing."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX"),
]

N_IMAGES = 40


def _group(pgid: int) -> list[str]:
    """``pid state`` of every process (zombies included) in process group ``pgid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if int(fields[2]) == pgid:
            found.append(f"{stat.parent.name} {fields[0]}")
    return found


def _cached_files(cache: Path, env: dict[str, str]) -> int:
    info = subprocess.run(
        [sys.executable, "-m", "harness", "cache", "info", "--cache", str(cache)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(re.search(r"hashes of (\d+) files", info).group(1))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see processes")
def test_ctrl_c_stops_the_run_at_once_and_a_rerun_resumes(tmp_path):
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(N_IMAGES):  # enough that the whole run takes a minute or more
        noise = rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
        Image.fromarray(noise).save(images / f"photo{i:02d}.jpg", quality=90)
    cache = tmp_path / "cache.sqlite"
    env = {**os.environ, "HASH_HARNESS_CACHE": str(tmp_path / "cache-home")}
    log = tmp_path / "run.log"
    command = [sys.executable, "-m", "harness", "run", "--dataset", str(images)]
    command += ["--out", str(tmp_path / "out"), "--workers", "2", "--cache", str(cache)]
    with log.open("w") as stderr:
        # A session of its own: the signal goes to the whole group, as a terminal's Ctrl-C does.
        run = subprocess.Popen(command, env=env, stderr=stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + 600  # the first images, however loaded the machine is
        done = 0
        while done == 0 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            counts = re.findall(rf"(\d+)/{N_IMAGES} images hashed", log.read_text())
            done = max(map(int, counts), default=0)
        assert run.poll() is None, log.read_text()
        assert done > 0, "no image was hashed in time"
        started = time.monotonic()
        os.killpg(run.pid, signal.SIGINT)
        code = run.wait(timeout=120)
        stopped = time.monotonic() - started
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert code == 130
    assert "hash-harness: interrupted" in log.read_text()
    # Seconds: the process ends its workers rather than waiting for the images in flight (up
    # to 32 with 2 workers, at 2-3 s each on an idle machine: about 40 s, more when loaded).
    assert stopped < 15, f"took {stopped:.1f} s to stop"
    deadline = time.monotonic() + 5  # the run reaps what it started before it exits
    while _group(run.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _group(run.pid) == []  # no worker, fork server, resource tracker or zombie left
    assert not (tmp_path / "out" / "results.json").exists()
    # Every image finished before the signal is in the cache: a rerun starts from there.
    assert done <= _cached_files(cache, env) < N_IMAGES
