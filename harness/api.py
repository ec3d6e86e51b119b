"""The public Python API: run suites, read results as tidy tables, recommend thresholds.

Everything here is re-exported by :mod:`harness` (``harness.run``, ``harness.Results``, ...); the
command line is a thin layer over the same functions. The engine is imported only when a function
is called, so ``import harness`` stays cheap, and pandas is needed only by
:meth:`Table.to_pandas` (``pip install 'hash-harness[pandas]'``).

:class:`Results` wraps the typed results document (:class:`harness.result_model.Results`, what
``results.json`` holds) and derives every table from it, so the document stays the single source
of truth.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.errors import HarnessError
from harness.core.words import plural

if TYPE_CHECKING:
    import pandas

    from harness import result_model
    from harness.suite import Suite


@dataclass(frozen=True)
class Table:
    """A tidy table: named columns, one row per observation.

    Attributes
    ----------
    columns : tuple of str
        Column names, in order.
    rows : tuple of tuple
        One tuple per row, aligned with ``columns``; missing values are ``None``.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name (no pandas needed)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_pandas(self) -> pandas.DataFrame:
        """The table as a :class:`pandas.DataFrame` (missing values become NaN / None).

        Raises
        ------
        HarnessError
            When pandas is not installed, saying which extra installs it.
        """
        try:
            import pandas
        except ImportError as exc:
            raise HarnessError(
                "Table.to_pandas() needs pandas: pip install 'hash-harness[pandas]' "
                "(or use .records())."
            ) from exc
        return pandas.DataFrame.from_records(list(self.rows), columns=list(self.columns))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records())

    def __repr__(self) -> str:
        return (
            f"Table({len(self.rows)} rows x {len(self.columns)} columns: {', '.join(self.columns)})"
        )


_FAILURE = ("image", "stage", "transform", "algorithm", "error")
_CELL = ("tpr", "fpr")


def _rates(document: result_model.Results, keep: Callable[[dict[str, Any]], bool]) -> Table:
    """The rows of the tidy export (results.csv: one row per algorithm x edit x metric, with
    ``k``, ``n``, ``value`` and the 95% interval ``lo``/``hi``) that ``keep`` selects."""
    from harness.report.tidy import COLUMNS, rows

    kept = (tuple(r[c] for c in COLUMNS) for r in rows(document) if keep(r))
    return Table(COLUMNS, tuple(kept))


@dataclass(frozen=True)
class Results:
    """The results of one run, with tidy tables for notebooks.

    Attributes
    ----------
    document : harness.result_model.Results
        The typed results document, what ``results.json`` holds (see
        :mod:`harness.result_model`); every table below is derived from it.
    """

    document: result_model.Results

    @property
    def suite(self) -> str:
        """Suite name and version, e.g. ``"ci v1"``."""
        return f"{self.document.suite.name} v{self.document.suite.version}"

    @cached_property
    def cells(self) -> Table:
        """Robustness and false-match rates per edit: one row per algorithm x transform x
        metric (``tpr`` per threshold and image ``category``, ``""`` meaning all images;
        ``fpr`` per threshold and negative ``protocol``), with ``k`` of ``n``, ``value`` and the
        95% interval ``lo``/``hi``. The columns are those of ``results.csv``. Real variant
        rows are in :attr:`variants`."""
        real = self._variant_rows
        return _rates(
            self.document,
            lambda r: bool(r["transform"]) and r["metric"] in _CELL and r["transform"] not in real,
        )

    @cached_property
    def _variant_rows(self) -> frozenset[str]:
        from harness import variants

        return frozenset(r.transform for r in variants.rows(self.document))

    @cached_property
    def variants(self) -> Table:
        """Real re-uploads the manifest declares (``variant_of``) against their own original,
        kept apart from the synthetic edits of :attr:`cells`: one row per algorithm x variant
        row (``transform`` is ``variant_of:<kind>``) x metric - ``tpr`` (and ``tpr_hashed``,
        ``fpr`` per negative protocol) at each given threshold, and ``chosen_tpr`` at the
        threshold chosen for each ``target_fpr`` on the calibration images' synthetic pairs
        (never on variants; ``status`` carries the choice's verdict). Empty without variants;
        the columns are those of ``results.csv``."""
        real = self._variant_rows
        return _rates(self.document, lambda r: r["transform"] in real)

    @cached_property
    def collisions(self) -> Table:
        """False-match rates over pairs of different images: one row per algorithm x negative
        ``protocol`` x threshold, with ``k`` colliding pairs of ``n``."""
        return _rates(self.document, lambda r: not r["transform"] and r["metric"] == "fpr")

    @cached_property
    def thresholds(self) -> Table:
        """Recommended thresholds scored on the held-out images: per algorithm and
        ``target_fpr``, the held-out false-match rate, pooled true-match rate and the true-match
        rate per edit (metrics ``held_out_fpr``, ``held_out_tpr_pooled``, ``held_out_tpr``),
        and the real variants' true-match rate at it per variant row (``chosen_tpr``, every
        variant: none informed the choice)."""
        return _rates(
            self.document,
            lambda r: r["metric"].startswith("held_out_") or r["metric"] == "chosen_tpr",
        )

    @property
    def failures(self) -> Table:
        """Images or edits that could not be decoded, edited or hashed, with the reason."""
        import msgspec

        failures = msgspec.to_builtins(self.document.failures or [])
        rows = [tuple(f.get(c) for c in _FAILURE) for f in failures]
        return Table(_FAILURE, tuple(rows))

    def report(self, format: str = "md") -> str:
        """The report as text: ``"md"`` (Markdown), ``"html"`` or ``"junit"``."""
        from harness.report import render_markdown
        from harness.report.html import render_html
        from harness.report.junit import render_junit

        renderers = {"md": render_markdown, "html": render_html, "junit": render_junit}
        if format not in renderers:
            raise HarnessError(f"format must be one of {', '.join(renderers)}; got {format!r}.")
        return renderers[format](self.document)

    def save(self, path: str | Path) -> Path:
        """Write the document to ``path`` (e.g. ``results/results.json``) with its impostor
        sidecar beside it, as one set (``path`` last)."""
        from harness import results

        return results.dump(self.document, path)

    def __repr__(self) -> str:
        doc = self.document
        return (
            f"Results(suite {self.suite!r}, dataset {doc.dataset.name!r}: "
            f"{plural(doc.dataset.n_evaluated, 'image')}, "
            f"{plural(len(doc.algorithms), 'algorithm')} x "
            f"{plural(len(doc.transforms), 'transform')})"
        )


def load_suite(suite: str | Path) -> Suite:
    """Read and validate a suite without touching any image.

    Parameters
    ----------
    suite
        A bundled suite's name (``"default"``, ``"ci"``, ``"thorn"``; see :func:`suites`) or the
        path of a suite TOML file.

    Raises
    ------
    SuiteError
        Naming every problem of the file, or the bundled suites when nothing matches.
    """
    from harness.suite import load_suite as _load

    return _load(suite)


def suites() -> Table:
    """The bundled suites: ``name``, ``version``, ``description`` and ``path``."""
    from harness import data

    rows = [
        (name, *data.suite_description(path), str(path)) for name, path in data.suites().items()
    ]
    return Table(("name", "version", "description", "path"), tuple(rows))


def _suite(suite: str | Path | Suite) -> Suite:
    from harness.suite import Suite

    return suite if isinstance(suite, Suite) else load_suite(suite)


@contextlib.contextmanager
def _execution(
    cache: str | Path | bool, executor: str, scheduler: str | None, workers: int
) -> Iterator[tuple[Any, Any]]:
    """The hash cache (unless ``cache`` is False) and the Dask client (``executor="dask"``)."""
    from harness.store import HashStore, default_path

    store = None
    if cache is not False:
        store = HashStore(default_path() if cache is True else cache)
    client = None
    try:
        if executor == "dask":
            from harness.distributed import client_for

            client = client_for(scheduler or "local", workers)
        yield store, client
    finally:
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
        if store is not None:
            store.close()


def _computes(cache: str | Path | bool) -> bool:
    """Whether the run will surely compute hashes (no cache, or no cache file yet), so the
    worker processes may start before the run has planned. Otherwise the runner starts them
    only if some cell is missing from the cache: a fully cached run starts no process."""
    if cache is False:
        return True
    from harness.store import default_path

    return not Path(default_path() if cache is True else cache).exists()


def run(
    suite: str | Path | Suite = "default",
    *,
    dataset: str | None = None,
    decode: str | None = None,
    workers: int = 0,
    cache: str | Path | bool = True,
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool = False,
) -> Results:
    """Run a suite: decode, edit and hash every image, then measure every rate.

    Parameters
    ----------
    suite
        A bundled suite's name, a suite TOML path, or a :class:`~harness.suite.Suite` from
        :func:`load_suite`.
    dataset
        Registered dataset name, folder, manifest or ``NAME[N]``; default: the suite's own.
    decode
        Decode policy, ``"viewer"`` or ``"reference"`` (see :mod:`datasets_benign.decode`);
        default: the suite's own. Recorded in the suite's config like a suite key.
    workers
        Worker processes; 0 means one per core.
    cache
        True: the shared hash cache (``$HASH_HARNESS_CACHE`` or ``~/.cache/hash-harness``);
        a path: that SQLite file; False: compute everything, store nothing.
    executor, scheduler
        ``"local"`` processes, or ``"dask"`` with a scheduler address (default: a local cluster).
    progress
        Print progress to standard error.

    Returns
    -------
    Results
        The run's results; ``Results.save`` writes ``results.json``.

    Raises
    ------
    HarnessError
        Invalid suite, dataset or arguments, before any pixel is touched.
    """
    if workers < 0:
        raise HarnessError(f"workers must be >= 0 (0 = one per core); got {workers}.")
    if executor not in ("local", "dask"):
        raise HarnessError(f"executor must be 'local' or 'dask'; got {executor!r}.")
    spec = _suite(suite)
    if decode is not None:
        from harness.suite import parse_suite

        spec = parse_suite({**spec.config, "decode": decode}, source="decode")
    workers = workers or os.cpu_count() or 1
    if workers > 1 and executor == "local" and _computes(cache):
        from harness.pool import prestart_workers

        prestart_workers()  # before the imports below, which it overlaps
    from harness.pipeline import run_suite

    with _execution(cache, executor, scheduler, workers) as (store, client):
        document = run_suite(
            spec, dataset=dataset, workers=workers, quiet=not progress, store=store, executor=client
        )
    return Results(document)


def load_results(path: str | Path) -> Results:
    """Read a ``results.json`` (older schema versions are migrated).

    Raises
    ------
    HarnessError
        For an unreadable, truncated, newer or malformed file.
    """
    from harness import results

    return Results(results.load(path))


def threshold(
    algorithm: str,
    target_fpr: float | None = None,
    *,
    at: int | None = None,
    suite: str | Path | Suite = "default",
    dataset: str | None = None,
    results: str | Path | None = None,
    protocol: str = "originals_all_pairs",
    calibration_fraction: float | None = None,
    workers: int = 0,
    cache: str | Path | bool = True,
    progress: bool = False,
    database_sizes: Sequence[float] = (1e6, 1e7),
) -> dict[str, Any]:
    """Recommend a threshold at a target false-match rate, or score a given one.

    With ``target_fpr`` the threshold is chosen on the calibration images and scored on the
    held-out ones (the suite's split); with ``at`` the given threshold needs no calibration and
    is scored on every image, exactly as a suite's ``[thresholds]`` entry. The answer's
    ``status`` is ``unresolved`` (with the images that would resolve it) when the corpus is too
    small for the target.

    Parameters
    ----------
    algorithm
        Algorithm spec, e.g. ``"pdq"`` or ``"phash(hash_size=16)"``.
    target_fpr
        False-match rate strictly between 0 and 1, e.g. ``1e-3``. Exactly one of
        ``target_fpr`` and ``at`` is given.
    at
        A given threshold in distance levels (``0 <= at <= levels``), e.g. PDQ's 31.
    suite
        The suite (corpus, edits, split): bundled name, path or :class:`~harness.suite.Suite`.
        Ignored with ``results``.
    dataset
        Dataset overriding the suite's.
    results
        A run's ``results.json``: answer from its hashes and per-image impostor histograms
        without opening an image (the run's split and protocol only).
    protocol
        Negative pairs the rate is measured on: ``"originals_all_pairs"`` or
        ``"edited_vs_other_originals"``.
    calibration_fraction
        Share of images to calibrate on (default: the suite's).
    workers
        Worker processes; 0 means one per core.
    cache
        The hash cache: True for the default location, a path, or False for none.
    progress
        Print progress to standard error.
    database_sizes
        Database sizes for the share of innocent uploads flagged (``flagged_share``: measured up
        to the corpus size, model-based beyond; :mod:`harness.flagged`).

    Returns
    -------
    dict
        The answer document that ``hash-harness threshold --json`` prints; ``hashes_computed``
        says how many hashes were computed (0 when everything came from the cache or the file).
    """
    # Long: two sources of evidence (a run's file, or hashing) with their own checks, then
    # one answer and the flagged share; splitting would scatter the argument checks.
    import dataclasses

    from harness.algorithms import make_algorithm
    from harness.core.params import check_real
    from harness.evaluate import answer_threshold

    if (target_fpr is None) == (at is None):
        raise HarnessError("give exactly one of target_fpr and at.")
    for name, value in (("target_fpr", target_fpr), ("calibration_fraction", calibration_fraction)):
        if value is not None:
            check_real(
                name,
                value,
                owner="threshold()",
                min_value=0.0,
                max_value=1.0,
                min_open=True,
                max_open=True,
            )
    if workers < 0:
        raise HarnessError(f"workers must be >= 0 (0 = one per core); got {workers}.")
    if results is not None:
        from harness import results as results_mod
        from harness.evaluate import evidence_from_results

        if dataset is not None:
            raise HarnessError("results answers from that run's own images; drop dataset.")
        document = results_mod.load(results)
        algo_id = _algorithm_id(algorithm, document)
        levels = next((a.levels for a in document.algorithms if a.id == algo_id), None)
        _check_at(at, levels)
        config = document.suite.config or {}
        fraction = float(config.get("calibration_fraction", 0.5))
        resamples = int(config.get("bootstrap_resamples", 1000))
        seed = int(document.seed or 0)
        evidence, context = evidence_from_results(
            str(results),
            document,
            algo_id,
            protocol=protocol,
            calibration_fraction=calibration_fraction,
        )
    else:
        from harness.pipeline import threshold_evidence

        spec = _suite(suite)
        hasher = make_algorithm(algorithm)
        _check_at(at, hasher.n_levels)
        if calibration_fraction is not None:
            spec = dataclasses.replace(spec, calibration_fraction=calibration_fraction)
        fraction, resamples, seed = spec.calibration_fraction, spec.bootstrap_resamples, spec.seed
        n_workers = workers or os.cpu_count() or 1
        with _execution(cache, "local", None, n_workers) as (store, _):
            evidence, context = threshold_evidence(
                spec,
                hasher,
                protocol=protocol,
                dataset=dataset,
                workers=n_workers,
                quiet=not progress,
                store=store,
            )
    doc = answer_threshold(
        evidence,
        context,
        target_fpr=target_fpr,
        at=at,
        resamples=resamples,
        seed=seed,
        calibration_fraction=fraction,
    )
    if doc["threshold"] is not None:
        from harness.evaluate import flagged_answer

        # What a platform sees: the share of uploads flagged; a chosen threshold is scored with
        # held-out images as uploads and database, a given one with every image.
        share = flagged_answer(
            evidence,
            doc["threshold"],
            held_out=doc["mode"] == "chosen",
            database_sizes=database_sizes,
            seed=seed,
        )
        if share:
            doc["flagged_share"] = share
    return doc


def _algorithm_id(spec: str, document: result_model.Results) -> str:
    """The id under which a results ``document`` stores the algorithm ``spec`` names."""
    from harness.algorithms.base import make_algorithm
    from harness.compare import resolve

    # Any case, any spelling of a policy, a label of a file from before labels were ids.
    return resolve(spec, [a.id for a in document.algorithms]) or make_algorithm(spec).id


def _check_at(at: int | None, levels: int | None) -> None:
    from harness.core.errors import InvalidParameterError

    if at is not None and levels is not None and not 0 <= at <= levels:
        raise InvalidParameterError(f"at (--at) must be a distance in [0, {levels}], got {at}.")


__all__ = ["Results", "Table", "load_results", "load_suite", "run", "suites", "threshold"]
