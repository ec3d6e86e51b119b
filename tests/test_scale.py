"""Cache, resume after kill -9, progress display and the Dask executor."""

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from harness import results
from harness.cli import main
from harness.pipeline import run_suite
from harness.progress import Progress
from harness.store import HashStore
from harness.suite import parse_suite
from tests.conftest import synthetic_image

SUITE = {
    "algorithms": ["phash", "pdq"],
    "transforms": ["identity", "jpeg@S3", "crop@S2", "gaussian_noise(sigma=5.0)"],
    "bootstrap_resamples": 0,
}


@pytest.fixture
def folder(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(12):
        synthetic_image(90 + 5 * i, 70, seed=i).save(imgs / f"img{i:02d}.png")
    return imgs


def _comparable(result):
    return results.to_json(results.comparable(result))


def test_cache_gives_identical_results_and_computes_only_new_cells(folder, tmp_path):
    suite = parse_suite(SUITE)
    plain = results.to_builtins(run_suite(suite, dataset=str(folder)))
    with HashStore(tmp_path / "c.sqlite") as store:
        first = results.to_builtins(run_suite(suite, dataset=str(folder), store=store))
        assert store.info()["hashes"] == 12 * 5 * 2 - len(first["exclusions"])
        again = results.to_builtins(run_suite(suite, dataset=str(folder), store=store))
        bigger = parse_suite({**SUITE, "algorithms": ["phash", "pdq", "dhash"]})
        before = store.info()["hashes"]
        extended = results.to_builtins(run_suite(bigger, dataset=str(folder), store=store))
        assert store.info()["hashes"] - before == 12 * 5  # only the new algorithm was hashed
    assert _comparable(plain) == _comparable(first) == _comparable(again)
    assert [c for c in extended["cells"] if c["algorithm"] != "dhash"] == first["cells"]


def test_changed_files_are_not_served_from_the_cache(folder, tmp_path):
    suite = parse_suite(SUITE)
    with HashStore(tmp_path / "c.sqlite") as store:
        run_suite(suite, dataset=str(folder), store=store)
        synthetic_image(90, 70, seed=99).save(folder / "img00.png")  # same name, new pixels
        cached = results.to_builtins(run_suite(suite, dataset=str(folder), store=store))
    assert _comparable(cached) == _comparable(run_suite(suite, dataset=str(folder)))


def _wait_for_committed_images(cache, n, timeout=60):
    """Until the cache holds ``n`` finished images (then a kill lands mid-run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cache.exists():
            with HashStore(cache) as store:
                if store.info()["files"] >= n:
                    return
        time.sleep(0.05)


def test_a_killed_run_resumes_to_identical_results(folder, tmp_path):
    """kill -9 in the middle of a run, rerun the same command: same results as without a kill."""
    env = {**os.environ, "HASH_HARNESS_CACHE": str(tmp_path / "cache")}
    suite_file = tmp_path / "suite.toml"
    suite_file.write_text(
        'algorithms = ["phash", "pdq", "whash"]\n'
        'transforms = ["identity", "jpeg@S1-S5", "crop@S1-S5", "rotate@S1-S3"]\n'
        "bootstrap_resamples = 0\n"
    )
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--suite",
        str(suite_file),
        "--dataset",
        str(folder),
        "--workers",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "killed")], env=env)
    cache = tmp_path / "cache" / "hashes.sqlite"
    _wait_for_committed_images(cache, 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with HashStore(cache) as store:
        done = store.info()["files"]
    assert 3 <= done < 12, done  # killed mid-way
    subprocess.run([*cmd, "--out", str(tmp_path / "resumed")], env=env, check=True)
    subprocess.run([*cmd, "--out", str(tmp_path / "clean"), "--no-cache"], env=env, check=True)
    resumed = results.to_builtins(results.load(tmp_path / "resumed" / "results.json"))
    clean = results.to_builtins(results.load(tmp_path / "clean" / "results.json"))
    assert _comparable(resumed) == _comparable(clean)
    edited = [e["thumbnails"]["edited"] for e in resumed["gallery"]["escapes"]]
    assert edited, "the run picked escapes"
    assert all(edited), "the resumed gallery shows its escapes' edited copies"


def test_a_killed_run_leaves_no_worker_processes_behind(folder, tmp_path):
    """Pool workers wait for tasks forever; after kill -9 of the run they must exit on their own."""
    psutil = pytest.importorskip("psutil")
    env = {**os.environ, "HASH_HARNESS_CACHE": str(tmp_path / "cache")}
    edits = ["jpeg@S1-S5", "rotate@S1-S5", "gaussian_blur@S1-S5"]
    cmd = [sys.executable, "-m", "harness", "run", "--dataset", str(folder), "--workers", "2"]
    proc = subprocess.Popen(
        [*cmd, "--transforms", *edits, "--quiet", "--out", str(tmp_path / "o")], env=env
    )
    _wait_for_committed_images(tmp_path / "cache" / "hashes.sqlite", 1)
    descendants = psutil.Process(proc.pid).children(recursive=True)
    assert len(descendants) >= 3  # fork server, two workers (and the resource tracker)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # killed mid-run, not finished

    def alive(p):
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(p) for p in descendants):
        time.sleep(0.1)
    assert [p.pid for p in descendants if alive(p)] == []


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_log():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, log = Tty(), io.StringIO()
    bar, lines = Progress(3, quiet=False, stream=tty), Progress(3, quiet=False, stream=log)
    for _ in range(3):
        bar.step()
        lines.step()
    assert "\r  [" in tty.getvalue()
    assert "##############################] 3/3 images hashed" in tty.getvalue()
    assert tty.getvalue().endswith("\n")
    assert log.getvalue().startswith("  1/3 images hashed (")
    assert "ETA 0s)" in log.getvalue().splitlines()[-1]
    assert "\r" not in log.getvalue()
    quiet = io.StringIO()
    Progress(3, quiet=True, stream=quiet).step()
    assert quiet.getvalue() == ""


def _run_cli_with_stderr(args, stderr_fd):
    cmd = [sys.executable, "-m", "harness", "run", *args]
    return subprocess.run(cmd, stderr=stderr_fd, stdout=subprocess.DEVNULL, timeout=300)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_cli_progress_is_a_bar_in_a_real_terminal_and_lines_in_a_pipe(folder, tmp_path):
    """The same command, its stderr once a pseudo-terminal and once a pipe (a CI log)."""
    common = ["--dataset", str(folder), "--transforms", "jpeg@S3", "--no-cache", "--workers", "1"]
    primary, secondary = os.openpty()
    try:
        proc = _run_cli_with_stderr([*common, "--out", str(tmp_path / "tty")], secondary)
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 0
    terminal = seen.decode()
    assert "\r  [##############################] 12/12 images hashed" in terminal
    log = _run_cli_with_stderr([*common, "--out", str(tmp_path / "log")], subprocess.PIPE).stderr
    lines = log.decode().splitlines()
    assert any(line.startswith("  12/12 images hashed (") for line in lines)
    assert any(line.startswith("  statistics 1/5: ") for line in lines)  # one per algorithm
    assert "\r" not in log.decode()
    assert all("[" not in line for line in lines if "images hashed" in line)


def test_progress_rate_and_eta_count_only_computed_images():
    log = io.StringIO()
    progress = Progress(4, quiet=False, stream=log)
    progress.interval = 0.0  # a line per image
    progress.step(cached=True)
    progress.step(cached=True)
    assert "2/4 images hashed (2 from cache, 0.0/s" in log.getvalue()
    assert log.getvalue().splitlines()[-1].endswith("ETA ?)")  # nothing computed yet: unknown
    progress.step()
    assert "3/4 images hashed (2 from cache, " in log.getvalue().splitlines()[-1]


def test_dask_local_cluster_gives_identical_results(folder, tmp_path):
    pytest.importorskip("distributed")
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'algorithms = ["phash", "pdq"]\ntransforms = ["identity", "jpeg@S3", "gaussian_noise"]\n'
        "bootstrap_resamples = 0\n"
    )
    common = ["run", "--suite", str(suite), "--dataset", str(folder), "--quiet", "--no-cache"]
    assert main([*common, "--out", str(tmp_path / "local"), "--workers", "1"]) == 0
    assert (
        main(
            [
                *common,
                "--out",
                str(tmp_path / "dask"),
                "--executor",
                "dask",
                "--scheduler",
                "local",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    local = results.to_builtins(results.load(tmp_path / "local" / "results.json"))
    dask = results.to_builtins(results.load(tmp_path / "dask" / "results.json"))
    assert _comparable(local) == _comparable(dask)


def test_cache_command(tmp_path, capsys):
    path = tmp_path / "c.sqlite"
    assert main(["cache", "info", "--cache", str(path)]) == 0
    assert "0 hashes" in capsys.readouterr().out
    assert main(["cache", "prune", "--cache", str(path)]) == 0


def test_external_hashers_are_never_served_from_the_cache(folder, tmp_path):
    from tests.harness.test_external import CLIENT

    served = f"external(label='acme', command={[sys.executable, CLIENT, 'phash']!r}, bits=64)"
    suite = parse_suite({**SUITE, "algorithms": ["phash", served]})
    with HashStore(tmp_path / "c.sqlite") as store:
        run_suite(suite, dataset=str(folder), store=store)
        keys = store.info()["by_algorithm"]
    assert all(not k.startswith("external") for k in keys)


def test_a_fully_cached_run_starts_no_worker_process(folder, tmp_path, monkeypatch):
    """Nothing to compute, nothing to start: no fork server, no pool."""
    from harness import pool

    suite = tmp_path / "suite.toml"
    suite.write_text(
        'algorithms = ["phash", "pdq"]\ntransforms = ["identity", "jpeg@S3"]\n'
        "bootstrap_resamples = 0\n"
    )
    cache = tmp_path / "c.sqlite"
    common = ["run", "--suite", str(suite), "--dataset", str(folder), "--cache", str(cache)]
    assert main([*common, "--out", str(tmp_path / "cold"), "--workers", "1", "--quiet"]) == 0

    started = []

    class PoolStarted(Exception):
        pass

    def no_pool(*args, **kwargs):
        started.append("pool")
        raise PoolStarted

    monkeypatch.setattr(pool, "ProcessPoolExecutor", no_pool)
    monkeypatch.setattr(pool, "prestart_workers", lambda: started.append("fork server"))
    assert main([*common, "--out", str(tmp_path / "warm"), "--workers", "2", "--quiet"]) == 0
    assert started == []
    cold = results.to_builtins(results.load(tmp_path / "cold" / "results.json"))
    warm = results.to_builtins(results.load(tmp_path / "warm" / "results.json"))
    assert _comparable(cold) == _comparable(warm)
    # One new edit: the same run must now start workers for the missing cells.
    with pytest.raises(PoolStarted):
        main(
            [
                *common,
                "--out",
                str(tmp_path / "more"),
                "--workers",
                "2",
                "--quiet",
                "--transforms",
                "identity",
                "jpeg@S3",
                "crop@S2",
            ]
        )
    assert started == ["pool"]
