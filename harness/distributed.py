"""Dask executor: the same per-image work on a ``distributed`` cluster.

Optional extra: ``pip install 'hash-harness[dask]'``. ``hash-harness run --executor dask --scheduler
tcp://HOST:8786`` connects to a running scheduler (``--scheduler local`` starts a ``LocalCluster``
on this machine). Chains and algorithms are sent to the workers once; images are submitted one task
each and results are read back as they finish (one slow image holds nothing up); the runner puts
them in dataset order, so the output is identical to the local executor's. Workers need hash-harness
and the same library versions installed (the results record the scheduler-side environment).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from harness.core.errors import InvalidParameterError


def client_for(scheduler: str, workers: int) -> Any:
    """A ``distributed.Client`` for ``scheduler`` (an address, or "local" for a LocalCluster)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise InvalidParameterError(
            "--executor dask needs the optional package: pip install 'hash-harness[dask]'."
        ) from exc
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None
        )
        return Client(cluster)
    if not scheduler.startswith(("tcp://", "tls://", "inproc://")):
        raise InvalidParameterError(
            "The --scheduler must be an address such as tcp://HOST:8786 or 'local'. "
            f"Got {scheduler!r} instead."
        )
    return Client(scheduler)


def _run(task: Any, chains: Any, algorithms: Any, seed: int) -> Any:
    from harness.hashing import hash_task

    return hash_task(task, chains, algorithms, seed)


def dask_outcomes(
    client: Any, tasks: Sequence[Any], chains: Any, algorithms: Any, seed: int
) -> Iterator[tuple[int, Any]]:
    """``(task index, outcome)`` in completion order."""
    from distributed import as_completed

    chains_f, algos_f = client.scatter([chains, algorithms], broadcast=True)
    futures = client.map(
        _run, list(tasks), chains=chains_f, algorithms=algos_f, seed=seed, pure=False
    )
    index = {future.key: i for i, future in enumerate(futures)}
    try:
        for future in as_completed(futures):
            yield index[future.key], future.result()
    finally:
        client.cancel(futures)
