"""The worker pool's lifecycle: processes that hash images, started only when there is work.

Work is spread over processes (pdqhash and imagehash hold the GIL), one image per task, taken as
each finishes; the caller writes each outcome at its dataset index, so 1 and N workers give
identical output and one slow image never idles the other workers.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import multiprocessing
import os
import signal
import threading
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from harness.algorithms import HashAlgorithm
from harness.hashing import ImageOutcome, Task, hash_task
from transforms import Chain

# Per-process work description, set once per worker by the pool initializer so that chains and
# algorithms are pickled once per process rather than once per image.
_WORK: tuple[tuple[Chain, ...], tuple[HashAlgorithm, ...], int] | None = None


def _init_worker(
    chains: tuple[Chain, ...], algorithms: tuple[HashAlgorithm, ...], seed: int
) -> None:
    global _WORK  # per-process state is the point of a pool initializer
    _WORK = (chains, algorithms, seed)
    # Ctrl-C reaches every process of the terminal's group: the run decides (it stops the
    # workers), so a worker never turns it into a failed task and takes the next one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: Any) -> None:
    """End this worker when the run's process dies. A pool worker waits for its next task
    forever, so after a ``kill -9`` of the run it (and the fork server it keeps alive) would
    otherwise stay behind, holding memory, for every killed run."""
    parent.join()  # returns when the parent's sentinel closes, i.e. when it has died
    os._exit(1)


def _hash_in_worker(task: Task) -> ImageOutcome:
    if _WORK is None:
        raise RuntimeError("worker used before initialisation")
    chains, algorithms, seed = _WORK
    return hash_task(task, chains, algorithms, seed)


def _as_completed(
    pool: ProcessPoolExecutor, tasks: Sequence[Task], window: int
) -> Iterator[tuple[int, ImageOutcome]]:
    """``(task index, outcome)`` as tasks finish, with at most ``window`` in flight.

    Completion order, not task order: one huge image never holds back the results behind it,
    so the other workers stay busy and progress keeps moving (the caller puts outcomes back in
    dataset order). One image per task keeps every core busy when images differ in cost, and
    memory stays bounded however many images there are (``Executor.map`` would submit them all).
    """
    pending: dict[Future[ImageOutcome], int] = {}
    queue = iter(enumerate(tasks))

    def refill() -> None:
        for index, task in itertools.islice(queue, window - len(pending)):
            pending[pool.submit(_hash_in_worker, task)] = index

    refill()
    while pending:
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            index = pending.pop(future)
            refill()
            yield index, future.result()


def _context() -> Any:
    """Worker start method: forkserver where available - workers are forked from a clean server
    process that imported the hashing stack once (start-up drops from about a second per
    worker to milliseconds), with no locks or threads inherited from the parent; spawn elsewhere.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["harness.pool", "harness.algorithms", "transforms"])
        _stop_helpers_at_exit()
        return ctx
    return multiprocessing.get_context("spawn")


@functools.cache
def _stop_helpers_at_exit() -> None:
    """At exit, stop and reap the fork server and resource tracker this process started, so
    that nothing of a run outlives it, not even as a zombie waiting for init to reap it (the
    command line ends with ``os._exit``, which skips multiprocessing's own teardown)."""
    from multiprocessing import forkserver, resource_tracker

    def stop() -> None:
        for helper in (forkserver._forkserver, resource_tracker._resource_tracker):
            with contextlib.suppress(Exception):  # private API; a failure leaves init to reap
                getattr(helper, "_stop")()  # noqa: B009 - not in the type stubs

    atexit.register(stop)


def prestart_workers() -> None:
    """Start the fork server now, so that its imports run on another core while this process
    is still importing the statistics and report stack; the pool later forks from it at once."""
    if _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def iter_outcomes(
    tasks: Sequence[Task],
    chains: tuple[Chain, ...],
    algorithms: tuple[HashAlgorithm, ...],
    seed: int,
    workers: int,
    executor: Any = None,
) -> Generator[tuple[int, ImageOutcome]]:
    """``(index in tasks, outcome)`` as each finishes, computed in-process (1 worker), in
    ``workers`` processes, or on a Dask cluster when ``executor`` is a ``distributed.Client``. With
    no tasks (everything came from the cache) no process is started."""
    if not tasks:
        return
    if executor is not None:
        from harness.distributed import dask_outcomes

        yield from dask_outcomes(executor, tasks, chains, algorithms, seed)
        return
    if workers <= 1:
        for index, task in enumerate(tasks):
            yield index, hash_task(task, chains, algorithms, seed)
        return
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_context(),
        initializer=_init_worker,
        initargs=(chains, algorithms, seed),
    )
    try:
        yield from _as_completed(pool, tasks, window=16 * workers)
    except BaseException:  # Ctrl-C, an error, or the caller stopped reading: stop now
        _stop(pool)
        raise
    pool.shutdown()


def _stop(pool: ProcessPoolExecutor) -> None:
    """End ``pool`` at once: queued tasks cancelled, workers terminated and reaped. Waiting for
    the tasks in flight would take minutes on large images; every finished image is already
    in the cache, so a rerun resumes from there."""
    workers = list((pool._processes or {}).values())  # no public handle before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()
    for process in workers:
        process.join()
