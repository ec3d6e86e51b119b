"""Command line: ``hash-harness`` / ``python -m harness``.

Exit status: 0 success; 2 invalid input (suite, arguments, dataset, incomparable baseline) -
nothing was run; 3 the run finished and wrote its results, but more images failed than the
suite's ``max_failure_rate`` allows; 1 a regression (``check``) or hash drift (``golden check``),
or an unexpected internal error.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.core.errors import HarnessError
from harness.core.words import plural
from harness.escaping import visible

if TYPE_CHECKING:
    from harness.algorithms.base import HashAlgorithm
    from harness.result_model import Results

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_FAILURES = 0, 1, 2, 3


def _cmd_run(args: argparse.Namespace) -> int:
    from harness import api
    from harness.results import check_output_folder
    from harness.suite import DEFAULT_SUITE

    suite = api.load_suite(args.suite or DEFAULT_SUITE)
    _refuse_precomputed(suite.algorithms, "run")
    if args.transforms:
        suite = _with_transforms(suite, args.transforms)
    if args.max_failure_rate is not None:
        suite = dataclasses.replace(suite, max_failure_rate=args.max_failure_rate)
    out = check_output_folder(args.out, OUTPUTS)  # before any work, not after it
    workers = args.workers or os.cpu_count() or 1
    if not args.quiet:
        print(
            visible(
                f"hash-harness {__version__}: suite {suite.name} v{suite.version}, "
                f"{plural(len(suite.transforms), 'transform')} x "
                f"{plural(len(suite.algorithms), 'algorithm')}, "
                f"dataset {args.dataset or suite.dataset} (decode: {args.decode or suite.decode}), "
                f"{plural(workers, 'worker')}"
            ),
            file=sys.stderr,
        )
    result = api.run(
        suite,
        dataset=args.dataset,
        decode=args.decode,
        workers=workers,
        cache=False if args.no_cache else (args.cache or True),
        executor=args.executor,
        scheduler=args.scheduler,
        progress=not args.quiet,
    ).document
    # A damaged or unusable file was reported when found; here: values failing a checksum.
    cache = (result.run.cache if result.run else None) or {}
    faults = [f["detail"] for f in cache.get("faults", []) if f["kind"] == "checksum mismatch"]
    if faults:
        print(
            f"hash-harness: {len(faults)} cache fault(s): cached values failed their checksum "
            "and were computed again, not used: "
            + visible("; ".join(faults[:5]))
            + ("; ..." if len(faults) > 5 else ""),
            file=sys.stderr,
        )
    md_path = _write_outputs(result, out, quiet=args.quiet)
    excluded = result.dataset.excluded
    if excluded and not args.quiet:
        print(
            f"{len(excluded)} image(s) excluded with a reason (dataset policy, links, exact "
            f"duplicates): see dataset.excluded in {out / 'results.json'}",
            file=sys.stderr,
        )
    return _status(result, md_path)


def _refuse_precomputed(algorithms: Sequence[HashAlgorithm], command: str) -> None:
    """Precomputed hashes (at any depth of a policy) cannot hash an image: refused up front,
    pointing to `score`, instead of every hash becoming a failure."""
    from harness.algorithms.precomputed import Precomputed
    from harness.core.errors import InvalidParameterError

    stack = list(algorithms)
    while stack:
        algo = stack.pop()
        if isinstance(algo, Precomputed):
            raise InvalidParameterError(
                f"{algo.name}(label={algo.label!r}) stands for hashes computed elsewhere and "
                f"cannot hash images in `{command}`: score its hash file with "
                "`hash-harness score EXPORT --hashes FILE` (docs/external-hashers.md)."
            )
        stack.extend(getattr(algo, "parts", ()))


def _failures_status(doc: dict[str, Any], max_failure_rate: float) -> int:
    """`threshold`'s failure line and exit status, as `run`'s: how many images and hashes
    failed and the commonest reasons; 3 when over the suite's failure budget."""
    failures = doc.get("failures") or []
    if not failures:
        return EXIT_OK
    from collections import Counter

    images = {f.get("image") for f in failures}
    n_images = max(int(doc.get("dataset", {}).get("n_images") or 0), len(images))
    rate = len(images) / n_images
    reasons = Counter(str(f.get("error", "")).splitlines()[0][:120] for f in failures)
    shown = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(3))
    over = rate > max_failure_rate
    print(
        visible(
            f"hash-harness: {plural(len(failures), 'hash', 'hashes')} of {len(images)} of "
            f"{n_images} images failed (rate {rate:.3f} {'>' if over else '<='} max_failure_rate "
            f"{max_failure_rate}): {shown}{'; ...' if len(reasons) > 3 else ''}; the rates "
            "leave those images out (failures in --json)."
        ),
        file=sys.stderr,
    )
    return EXIT_FAILURES if over else EXIT_OK


def _status(result: Results, md_path: Path) -> int:
    """`run`'s and `score`'s exit status: 3, with a line saying so, when more images failed
    than the suite's max_failure_rate allows (the outputs are written all the same)."""
    status = result.status
    if status and not status.ok:
        print(
            visible(
                f"hash-harness: {status.images_failed} of {_n_images(result)} failed "
                f"(rate {status.failure_rate:.3f} > max_failure_rate "
                f"{status.max_failure_rate}); see the Failures section of {md_path}."
            ),
            file=sys.stderr,
        )
        return EXIT_FAILURES
    return EXIT_OK


def _n_images(result: Results) -> str:
    """The images a run considered, real variants counted apart: "3 images and 2 variants"."""
    n = plural(result.dataset.n_images, "image")
    if not result.variants:
        return n
    return f"{n} and {plural(len(result.variants.images), 'real variant')}"


def _cmd_cache(args: argparse.Namespace) -> int:
    from harness.store import HashStore, default_path

    with HashStore(args.cache or default_path()) as store:
        if args.action == "prune":
            n = store.prune(args.older_than)
            print(f"removed {n} cached hashes from {store.path}")
        info = store.info()
    print(
        f"{info['path']}: {info['hashes']} hashes of {info['files']} files, {info['bytes']:,} bytes"
    )
    for key, n in info["by_algorithm"].items():
        print(f"  {key}: {n}")
    return EXIT_OK


def _with_transforms(suite, selections):  # type: ignore[no-untyped-def]
    """The suite with its transforms replaced, validated as a suite entry would be, and the
    narrowing recorded in the results (``check`` compares only the cells the run has)."""
    from harness.suite import narrowed

    return narrowed(suite, selections)


LISTS = ("suites", "transforms", "presets", "ladders", "algorithms", "datasets")


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what is None:  # everything, one titled block each
        for i, what in enumerate(LISTS):
            print(("\n" if i else "") + f"== {what} ==", flush=True)
            _cmd_list(argparse.Namespace(what=what, markdown=False))
        return EXIT_OK
    if args.what == "suites":
        from harness.api import suites

        for row in suites():
            print(f"{row['name']} (v{row['version']}): {row['description']}")
        print("also: the path of any suite TOML file (`hash-harness validate FILE` checks one)")
    elif args.what in ("transforms", "presets", "ladders"):
        from transforms import catalogue

        if args.what == "presets":
            sys.stdout.write(catalogue.render_presets())
        elif args.what == "ladders":
            sys.stdout.write(catalogue.render_ladders())
            print("\nCategorical families (all variants with FAMILY@all):")
            for family, variants in catalogue.CATEGORICAL.items():
                print(f"  {family}: {', '.join(variants)}")
        else:
            sys.stdout.write(catalogue.render_catalogue(markdown=args.markdown))
    elif args.what == "algorithms":
        from harness.algorithms import ALGORITHMS, make_algorithm
        from harness.core.params import describe

        for name in ALGORITHMS.names():
            cls = ALGORITHMS.get(name)
            aliases = ALGORITHMS.aliases_of(name)
            alias = f" (alias {', '.join(aliases)})" if aliases else ""
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            if not cls.standalone:
                print(f"{name}{alias}: configured per suite (see docs/external-hashers.md)")
                print(f"    {doc}")
                continue
            try:
                algo = cls()
            except HarnessError:
                extra = f"pip install 'hash-harness[{cls.extra}]'"
                print(f"{name}{alias}: needs the optional extra: {extra}")
                print(f"    {doc}")
                continue
            th = algo.default_threshold()
            size = f"{algo.n_bits} bits" if algo.metric() is None else f"{algo.n_levels} levels"
            print(f"{algo.id}{alias}: {size}, {algo.distance}; default <= {th.bits}")
            print(f"    {doc}")
            for line in describe(cls):
                print(f"    - {line}")
        from harness.algorithms.policies import POLICIES

        print("\nMatching policies over any of the above (docs/policies.md):")
        for name in POLICIES.names():
            cls = POLICIES.get(name)
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            example = {"and": "pdq & phash", "or": "pdq | phash", "sum": "pdq + phash"}
            spec = example.get(name, f"{name}(phash)")
            th = make_algorithm(spec).default_threshold()
            print(f"  {spec}: {doc}\n    default <= {th.bits}: {th.source}")
    else:
        _print_datasets()
    return EXIT_OK


def _print_datasets() -> None:
    """Every registered corpus; one that is not installed says how to install it."""
    from datasets_benign import DATASETS

    for name in DATASETS.names():
        try:
            data = DATASETS.get(name)()
        except HarnessError as exc:
            print(f"{name}: not available - {exc}")
            continue
        licences = ", ".join(sorted({r.licence for r in data.records}))
        print(f"{name}: {len(data.records)} images; licences: {licences}")
    print("also: a folder, a CSV/JSON manifest, and NAME[N] for a stable subset of N images")


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.suite import load_suite

    suite = load_suite(args.suite)
    _refuse_precomputed(suite.algorithms, "run")
    print(
        f"{args.suite}: valid suite {suite.name!r} v{suite.version}: "
        f"{plural(len(suite.transforms), 'transform')}, "
        f"{plural(len(suite.algorithms), 'algorithm')}, "
        f"dataset {suite.dataset!r}"
    )
    return EXIT_OK


#: What `run` and `score` write beside results.json, by report format.
REPORT_FILES = {
    "report.md": "md",
    "results.csv": "csv",
    "report.junit.xml": "junit",
    "report.html": "html",
}
#: The files of a run's output set, in the order they are put in place (results.json last;
#: the impostor sidecar is named by ``harness.results.impostors_path``).
OUTPUTS = (*REPORT_FILES, "results.impostors.npz", "results.json")
#: Reports that carry the run's id (`report` checks them against results.json).
MARKED = ("report.md", "report.junit.xml", "report.html")
#: Formats that make no sense on a terminal: written to a file or a pipe only.
NOT_FOR_TERMINALS = {"html", "parquet"}


def _write_outputs(result: Results, out: Path, quiet: bool = False) -> Path:
    """results.json, its impostor sidecar and its reports as one set: every file is rendered
    and written to a temporary file first, then all are renamed into place, results.json last;
    the reports carry the run's id, so a set mixed by a crash between renames is detected by
    `report`. A line on standard error per file unless ``quiet``; returns the .md path."""
    from harness import results

    texts: dict[Path, str | bytes] = {}
    for name, fmt in REPORT_FILES.items():
        texts[out / name] = _renderer(fmt)(result)
    texts.update(results.output_set(result, out / "results.json"))
    for path in results.write_set(texts):
        if not quiet:
            print(visible(f"wrote {path}"), file=sys.stderr)
    return out / "report.md"


def _renderer(fmt: str):  # type: ignore[no-untyped-def]
    """The function turning a results document into ``fmt`` (str, or bytes for parquet)."""
    if fmt == "md":
        from harness.report import render_markdown

        return render_markdown
    if fmt == "html":
        from harness.report.html import render_html

        return render_html
    if fmt == "junit":
        from harness.report.junit import render_junit

        return render_junit
    from harness.report import tidy

    return tidy.to_csv if fmt == "csv" else tidy.to_parquet


def _cmd_report(args: argparse.Namespace) -> int:
    from harness import results

    _refuse_terminal(args.format, args.out)
    result = results.load(args.results)
    for problem in results.mixed_set(args.results, result, MARKED):
        print(f"hash-harness: warning: {visible(problem)}", file=sys.stderr)
    _emit(_renderer(args.format)(result), args.out)
    return EXIT_OK


def _refuse_terminal(fmt: str, out: str | None) -> None:
    """HTML and binary output go to a file or a pipe, never onto a terminal screen."""
    if out is None and fmt in NOT_FOR_TERMINALS and sys.stdout.isatty():
        raise HarnessError(
            f"--format {fmt} is not for a terminal: give --out FILE (or redirect to a file)."
        )


def _emit(text: str | bytes, out: str | None) -> None:
    """Write ``text`` to ``out`` atomically, or to stdout when no file was asked for."""
    if out:
        from harness.results import atomic_write_text

        atomic_write_text(out, text)
    elif isinstance(text, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(text)


def _cmd_threshold(args: argparse.Namespace) -> int:
    import json

    from harness import api, flagged
    from harness.core.errors import InvalidParameterError
    from harness.report.markdown import render_threshold
    from harness.suite import DEFAULT_SUITE

    # Everything is validated before any image is opened.
    if (args.account_uploads is None) != (args.account_matches is None):
        raise InvalidParameterError("give --account-uploads and --account-matches together.")
    if args.uploads_per_day is not None and args.database_size is None:
        raise InvalidParameterError("--uploads-per-day needs --database-size.")
    if args.account_uploads is not None and args.database_size is None:
        raise InvalidParameterError("--account-uploads needs --database-size.")
    if args.account_matches is not None and args.account_matches > args.account_uploads:
        raise InvalidParameterError("--account-matches cannot exceed --account-uploads.")
    if args.results and (args.suite or args.dataset):
        raise InvalidParameterError(
            "--results answers from that run's own suite and images; drop --suite / --dataset."
        )
    if args.results:
        from harness import results

        status = results.load(args.results).status
        max_failure_rate = float(status.max_failure_rate) if status else 0.0
    else:
        from harness.algorithms import make_algorithm

        _refuse_precomputed([make_algorithm(args.algorithm)], "threshold")
        max_failure_rate = api.load_suite(args.suite or DEFAULT_SUITE).max_failure_rate
    doc = api.threshold(
        args.algorithm,
        args.target_fpr,
        at=args.at,
        suite=args.suite or DEFAULT_SUITE,
        dataset=args.dataset,
        results=args.results,
        protocol=args.protocol,
        calibration_fraction=args.calibration_fraction,
        workers=args.workers or 0,
        cache=False if args.no_cache else (args.cache or True),
        progress=not args.quiet,
        database_sizes=args.database_size or flagged.DEFAULT_DATABASE_SIZES,
    )
    if doc.get("flagged_share"):
        doc["operational"] = [
            flagged.operational(
                at,
                uploads_per_day=args.uploads_per_day,
                account_uploads=args.account_uploads,
                account_matches=args.account_matches,
            )
            for at in doc["flagged_share"]["at"]
        ]
    if args.json or args.format == "json":
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    else:
        sys.stdout.write(render_threshold(doc, plain=args.format == "text"))
    return _failures_status(doc, max_failure_rate)


def _cmd_baseline(args: argparse.Namespace) -> int:
    from harness import results
    from harness.guard import create_baseline
    from harness.pipeline import run_suite
    from harness.suite import DEFAULT_SUITE, load_suite

    if args.results:
        result = results.load(args.results)
    else:
        suite = load_suite(args.suite or DEFAULT_SUITE)
        workers = args.workers or os.cpu_count() or 1
        result = run_suite(suite, dataset=args.dataset, workers=workers, quiet=args.quiet)
    baseline = create_baseline(result)
    path = results.atomic_write_text(args.out, results.to_json(baseline))
    print(
        f"wrote {path}: {len(baseline['metrics'])} metrics of suite "
        f"{baseline['suite']['name']} v{baseline['suite']['version']}",
        file=sys.stderr,
    )
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    import json

    from harness import guard, results
    from harness.report import regression

    baseline = guard.load_baseline(args.baseline)
    result = results.load(args.results)
    report = guard.check(result, baseline, tolerance=args.tolerance, alpha=args.alpha)
    sys.stdout.write(regression.render_markdown(report))
    if args.junit:
        results.atomic_write_text(args.junit, regression.render_junit(report))
    if args.json:
        results.atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
    return 1 if report["regression"] else EXIT_OK


def _cmd_golden(args: argparse.Namespace) -> int:
    from harness import golden, results
    from harness.report import drift

    args.golden = args.golden or str(golden.DEFAULT_PATH)
    if args.action == "create":
        doc = golden.create(args.algorithms)
        path = results.atomic_write_text(args.golden, results.to_json(doc))
        print(
            f"wrote {path}: {len(doc['hashes'])} algorithms x {len(doc['images'])} images",
            file=sys.stderr,
        )
        return EXIT_OK
    report = golden.check(golden.load(args.golden))
    sys.stdout.write(drift.render(report))
    return 1 if report["drift"] else EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from harness.offline import default_key_path, export
    from harness.suite import DEFAULT_SUITE, load_suite

    suite = load_suite(args.suite or DEFAULT_SUITE)
    doc = export(
        suite, args.out, dataset=args.dataset, quiet=args.quiet, blind=args.blind, key=args.key
    )
    print(
        f"wrote {len(doc['items']) if args.blind else doc['items']} PNG files and "
        f"{Path(args.out) / 'manifest.csv'}; hash each file and return a CSV with the columns "
        "item_id,hash (see docs/external-hashers.md)",
        file=sys.stderr,
    )
    if args.blind:
        key = args.key or default_key_path(args.out)
        print(
            f"the key is {key}: keep it, never send it with the folder; score with "
            f"`hash-harness score {key} --hashes VENDOR.csv`",
            file=sys.stderr,
        )
    return EXIT_OK


def _cmd_score(args: argparse.Namespace) -> int:
    from harness import results
    from harness.offline import score
    from harness.pipeline import run_block

    out = results.check_output_folder(args.out, OUTPUTS)
    result = score(
        args.export,
        args.hashes,
        label=args.label,
        bits=args.bits,
        thresholds=tuple(args.threshold) if args.threshold else None,
        min_quality=args.min_quality,
        measure=args.measure,
        dims=args.dims,
        levels=args.levels,
        max_distance=args.max_distance,
        weights=args.weights,
        max_failure_rate=args.max_failure_rate,
    )
    result["run"] = run_block(scored_from=str(args.hashes))
    document = results.from_builtins(result)
    return _status(document, _write_outputs(document, out, quiet=args.quiet))


def _cmd_compare(args: argparse.Namespace) -> int:
    import json

    from harness import compare, results
    from harness.report import comparison

    _refuse_terminal(args.format, args.out)
    runs = [
        (Path(p).stem if Path(p).name != "results.json" else Path(p).parent.name, results.load(p))
        for p in args.results
    ]
    report = compare.compare(runs, alpha=args.alpha, algorithms=args.algorithms)
    for warning in report["warnings"]:
        print(f"hash-harness: warning: {warning}", file=sys.stderr)
    text = {
        "md": comparison.render_markdown,
        "html": comparison.render_html,
        "json": lambda r: json.dumps(r, indent=1) + "\n",
    }[args.format](report)
    _emit(text, args.out)
    return EXIT_OK


def _cmd_datasets(args: argparse.Namespace) -> int:
    from collections import Counter

    from datasets_benign import open_dataset
    from datasets_benign.decode import pixel_sha256

    if args.action == "list":
        _print_datasets()
        return EXIT_OK
    if args.action == "fetch":
        return _fetch(args)
    if not args.name:
        raise HarnessError(f"`datasets {args.action}` needs a dataset name, folder or manifest.")
    data = open_dataset(args.name)
    print(
        visible(
            f"{data.name}: {len(data.records)} images (manifest sha256 {data.manifest_sha256[:16]})"
        )
    )
    for title, counts in (
        ("licences", Counter(r.licence for r in data.records)),
        ("categories", Counter(r.category for r in data.records)),
    ):
        print(visible(f"  {title}: " + ", ".join(f"{k} ({n})" for k, n in counts.most_common())))
    groups = Counter(r.group for r in data.records if r.group)
    if groups:
        print(f"  groups: {len(groups)} (images in a group never form a collision pair)")
    for e in data.excluded:
        print(visible(f"  excluded: {e['id']}: {e['reason']}"))
    if args.action == "info":
        return EXIT_OK
    failures: list[tuple[str, str]] = []
    by_sha: dict[str, list[str]] = {}
    sides: list[int] = []
    for record in data.records:
        try:
            image = record.load()
        except Exception as exc:
            failures.append((record.id, str(exc)))
            continue
        by_sha.setdefault(pixel_sha256(image), []).append(record.id)
        sides.append(min(image.size))
    dupes = [ids for ids in by_sha.values() if len(ids) > 1]
    print(f"  decoded: {len(data.records) - len(failures)}; failed: {len(failures)}")
    if sides:
        print(f"  short side: min {min(sides)} px, median {sorted(sides)[len(sides) // 2]} px")
    for image_id, reason in failures[:50]:
        print(visible(f"  failed: {image_id}: {reason}"))
    print(f"  exact duplicate groups: {len(dupes)}")
    for ids in dupes[:20]:
        print(visible(f"    {', '.join(ids)}"))
    return EXIT_FAILURES if failures else EXIT_OK


def _fetch(args: argparse.Namespace) -> int:
    from datasets_benign.fetch import fetch_dataset
    from harness.progress import Progress

    if args.name not in ("pd12m", "urls"):
        raise HarnessError(
            "`datasets fetch` takes 'pd12m' (a PD12M metadata shard) or 'urls' (any parquet, "
            f"CSV or JSON list of url + hash), got {args.name!r}."
        )
    if not args.shard or not args.out:
        raise HarnessError("`datasets fetch` needs --shard PATH_OR_URL and --out DIR.")
    progress: list[Progress] = []
    report = fetch_dataset(
        args.shard,
        args.out,
        limit=args.limit,
        columns={
            "id": args.id_column,
            "url": args.url_column,
            "hash": args.hash_column,
            "licence": args.license_column,
            "source": args.source_column,
        },
        default_category="pd12m" if args.name == "pd12m" else "unknown",
        concurrency=args.concurrency,
        retries=args.retries,
        timeout_s=args.timeout,
        on_start=lambda n: progress.append(Progress(n, args.quiet, label="rows fetched")),
        on_row=lambda resumed: progress[0].step(resumed),
    )
    print(
        f"{args.out}: {len(report.kept)} images kept, {len(report.refused)} refused"
        + (f" ({report.resumed} rows settled by an earlier run)" if report.resumed else "")
    )
    for reason, n in report.reasons().items():
        print(f"  refused: {reason} ({n})")
    print(f"  manifest: {Path(args.out) / 'manifest.csv'}; refusals: refused.csv")
    print(f"  use it with: hash-harness run --dataset {args.out}")
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _whole(text: str) -> int:
    """A count of at least 1, in either notation (``100``, ``1e6``)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (1 <= value < float("inf") and value.is_integer()):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 such as 1e6, got {text!r}")
    return int(value)


def _size(text: str) -> float:
    """A count in float notation (``1e6``, ``2.5e7``), at least 1."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value >= 1 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number >= 1 such as 1e6, got {text!r}")
    return value


def _open_fraction(text: str) -> float:
    value = _fraction(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


SUITE_HELP = "bundled suite name (hash-harness list suites) or TOML file; default: 'default'"
DATASET_HELP = (
    "registered name (hash-harness datasets list), folder of images, manifest (.csv/.json), or "
    "NAME[N] for a stable subset of N of its images (all of them when it has fewer)"
)
WORKERS_HELP = "worker processes; 0 (the default) = one per core, 1 = in this process"


def _cache_help() -> str:
    folder = os.environ.get("HASH_HARNESS_CACHE")  # read by harness.store.default_path
    now = f" (set: {folder})" if folder else " (not set)"
    return (
        "hash cache file (default: hashes.sqlite in the folder $HASH_HARNESS_CACHE"
        f"{now}, else in ~/.cache/hash-harness)"
    )


EXIT_STATUS = """exit status:
  0  success
  2  invalid input (suite, arguments, dataset, document): nothing was run
  1  an unexpected internal error"""
EXIT_RUN = EXIT_STATUS.replace(
    "  1 ", "  3  finished and wrote its output, but more images failed than allowed\n  1 "
)
EXIT_CHECK = EXIT_STATUS.replace("  1  an", "  1  a regression or hash drift was found; or an")


def _command(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    summary: str,
    description: str,
    exit_status: str = EXIT_STATUS,
) -> argparse.ArgumentParser:
    """A subcommand whose --help has a description and its exit codes."""
    import textwrap

    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        help=summary,
        description=textwrap.fill(description, 78),  # the raw formatter keeps the epilog's lines
        epilog=exit_status,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    # Long: on purpose, every subcommand and option in one readable table, in --help order.
    parser = argparse.ArgumentParser(
        prog="hash-harness",
        description="Measure how robust perceptual image hashes are to edits, and how often "
        "different images collide, on benign public-domain images.",
        epilog=EXIT_RUN.replace(
            "  1  an", "  1  a regression (check) or hash drift (golden check); or an"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hash-harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(
        sub,
        "run",
        "run a suite: results.json (+ .impostors.npz), report.md/.html/.junit.xml, results.csv",
        "Hash every image of the suite's dataset and every edit of it with every algorithm, "
        "then write into --out: results.json (everything, the input of every other command) "
        "with its sidecar results.impostors.npz (per-image impostor histograms, read by "
        "threshold --results), report.md, report.html (self-contained), "
        "report.junit.xml and results.csv (one row per rate). Hashes are cached: a run "
        "stopped with Ctrl-C resumes where it stopped. One command writes an --out at a time.",
        EXIT_RUN,
    )
    run.add_argument("--suite", help=SUITE_HELP)
    run.add_argument("--dataset", help=DATASET_HELP)
    run.add_argument(
        "--transforms",
        nargs="+",
        metavar="SPEC",
        help="replace the suite's transforms: chains, ladders (crop@S1-S5) or preset:NAME",
    )
    run.add_argument("--out", default="results", help="output folder (default: ./results)")
    run.add_argument(
        "--decode",
        choices=["viewer", "reference"],
        help="decode policy (overrides the suite): viewer = transparency on white (default), "
        "reference = Pillow convert('RGB') as the PDQ reference vectors",
    )
    run.add_argument("--workers", type=int, default=0, help=WORKERS_HELP)
    run.add_argument(
        "--max-failure-rate",
        type=_fraction,
        help="fraction of images allowed to fail before exit status 3 (overrides the suite)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--cache", help=_cache_help())
    run.add_argument("--no-cache", action="store_true", help="compute everything, store nothing")
    run.add_argument(
        "--executor", choices=["local", "dask"], default="local", help="where the work runs"
    )
    run.add_argument("--scheduler", help="Dask scheduler address (tcp://HOST:8786) or 'local'")
    run.set_defaults(func=_cmd_run)

    cache = _command(
        sub,
        "cache",
        "show or prune the hash cache",
        "Show what the hash cache holds, or drop old entries (prune --older-than DAYS).",
    )
    cache.add_argument("action", choices=["info", "prune"])
    cache.add_argument("--cache", help=_cache_help())
    cache.add_argument(
        "--older-than", type=float, help="prune entries written more than this many days ago"
    )
    cache.set_defaults(func=_cmd_cache)

    ls = _command(
        sub,
        "list",
        "list suites, transforms, presets, ladders, algorithms or datasets (default: all)",
        "List the bundled suites and what a suite can name: transforms, presets, severity "
        "ladders, algorithms and datasets. Without an argument, everything. Names are "
        "case-insensitive.",
    )
    ls.add_argument("what", nargs="?", choices=LISTS, help="what to list (default: everything)")
    ls.add_argument("--markdown", action="store_true", help="transforms as a Markdown table")
    ls.set_defaults(func=_cmd_list)

    val = _command(
        sub,
        "validate",
        "check a suite file without touching any image",
        "Parse and validate a suite (a TOML file or a bundled suite's name): every problem is "
        "listed, no image is opened.",
    )
    val.add_argument("suite", help="suite TOML file or bundled suite name")
    val.set_defaults(func=_cmd_validate)

    thr = _command(
        sub,
        "threshold",
        "choose a threshold at a target false-match rate, or score a given one",
        "--target-fpr: choose the threshold on the calibration images, score it on the held-out "
        "images, and state its status (ok, unresolved with the images needed, unachievable, "
        "undefined). --at: score a given threshold on every image. Reads the hash cache, or a "
        "run's results with --results. Prints plain text (--format md for Markdown, json for "
        "the document). Images that fail to hash are left out of the rates and counted on "
        "standard error.",
        EXIT_RUN.replace("wrote its output", "printed its answer"),
    )
    thr.add_argument("--algorithm", required=True, help="algorithm spec, e.g. pdq or phash")
    question = thr.add_mutually_exclusive_group(required=True)
    question.add_argument(
        "--target-fpr",
        type=_open_fraction,
        help="choose the threshold for this false-match rate, e.g. 1e-6 (calibrated, held out)",
    )
    question.add_argument(
        "--at",
        type=int,
        metavar="T",
        help="score this given threshold (e.g. PDQ 31) on every image",
    )
    thr.add_argument("--suite", help="corpus, edits and split: " + SUITE_HELP)
    thr.add_argument("--dataset", help=DATASET_HELP)
    thr.add_argument(
        "--results",
        metavar="F",
        help="answer from a run's results.json (and its impostor sidecar): nothing is hashed",
    )
    thr.add_argument(
        "--protocol",
        choices=["originals_all_pairs", "edited_vs_other_originals"],
        default="originals_all_pairs",
        help="negative pairs the rate is measured on (default: originals_all_pairs)",
    )
    thr.add_argument(
        "--calibration-fraction", type=_open_fraction, help="share of images to calibrate on"
    )
    thr.add_argument(
        "--database-size",
        type=_size,
        nargs="+",
        metavar="N",
        help="hashes in the match database, one or more (1e6 1e7): false matches per upload",
    )
    thr.add_argument(
        "--uploads-per-day",
        type=_whole,
        metavar="N",
        help="uploads checked per day, e.g. 1e6 (adds flagged uploads per day)",
    )
    thr.add_argument(
        "--account-uploads",
        type=_whole,
        metavar="N",
        help="uploads per account (N; with --account-matches and --database-size)",
    )
    thr.add_argument(
        "--account-matches",
        type=_whole,
        metavar="K",
        help="matches that flag an account (K of N): adds the chance an innocent one is flagged",
    )
    thr.add_argument("--workers", type=int, default=0, help=WORKERS_HELP)
    thr.add_argument("--cache", help=_cache_help())
    thr.add_argument("--no-cache", action="store_true", help="compute everything, store nothing")
    thr.add_argument(
        "--format",
        choices=["text", "md", "json"],
        default="text",
        help="plain text (default), Markdown, or JSON",
    )
    thr.add_argument("--json", action="store_true", help="same as --format json")
    thr.add_argument("--quiet", action="store_true", help="no progress output")
    thr.set_defaults(executor="local", scheduler=None)
    thr.set_defaults(func=_cmd_threshold)

    base = _command(
        sub,
        "baseline",
        "create a baseline that later runs are checked against",
        "Write the rates of a run (or of --results) as a baseline for `hash-harness check`.",
    )
    base.add_argument("action", choices=["create"])
    base.add_argument("--suite", help=SUITE_HELP)
    base.add_argument("--dataset", help=DATASET_HELP)
    base.add_argument("--results", help="build from this results.json instead of running")
    base.add_argument(
        "--out", required=True, help="baseline file, e.g. benchmarks/baselines/S.json"
    )
    base.add_argument("--workers", type=int, default=0, help=WORKERS_HELP)
    base.add_argument("--quiet", action="store_true", help="no progress output")
    base.set_defaults(func=_cmd_baseline)

    chk = _command(
        sub,
        "check",
        "compare RESULTS.json with a baseline: exit 1 on regression, 2 if not comparable",
        "Compare a results.json with a baseline, rate by rate and direction-aware: a rate "
        "fails when it got worse by more than --tolerance and significantly so after the "
        "correction over its algorithm's rows (exact paired tests by image, Holm-Tarone at "
        "--alpha; rows with n < 10 are pooled per algorithm). A suite changed without a "
        "version bump is not comparable: its diff is printed.",
        EXIT_CHECK,
    )
    chk.add_argument("results")
    chk.add_argument(
        "--baseline", required=True, help="baseline file, or a committed baseline's name (ci)"
    )
    chk.add_argument(
        "--tolerance",
        type=_fraction,
        default=0.01,
        help="smallest absolute rate change that can count as worse or better (default 0.01)",
    )
    chk.add_argument(
        "--alpha",
        type=_open_fraction,
        default=0.05,
        help="familywise error rate per algorithm for calling a change significant (default 0.05)",
    )
    chk.add_argument("--junit", help="also write JUnit XML here")
    chk.add_argument("--json", help="also write the comparison as JSON here")
    chk.set_defaults(func=_cmd_check)

    gold = _command(
        sub,
        "golden",
        "pin exact hashes of a reference set, or check them",
        "create: hash the reference images with every algorithm and write the golden file; "
        "check: hash them again and report any bit that changed (a library upgrade, a codec).",
        EXIT_CHECK,
    )
    gold.add_argument("action", choices=["create", "check"])
    gold.add_argument(
        "--golden", help="golden-hash file (default: the one shipped with the package)"
    )
    gold.add_argument(
        "--algorithms",
        nargs="+",
        help="algorithm specs (create; default: every algorithm without an optional extra)",
    )
    gold.set_defaults(func=_cmd_golden)

    exp = _command(
        sub,
        "export",
        "write every image and edit of a suite as PNG files for offline hashing",
        "Write every original and edited image of a suite as PNG with a manifest, for a "
        "vendor to hash offline; bring the hashes back with `hash-harness score`.",
    )
    exp.add_argument("--suite", help=SUITE_HELP)
    exp.add_argument("--dataset", help=DATASET_HELP)
    exp.add_argument("--out", required=True, help="export folder")
    exp.add_argument("--quiet", action="store_true", help="no progress output")
    exp.add_argument(
        "--blind",
        action="store_true",
        help="opaque, shuffled file names and a manifest without ids or edits; the mapping back "
        "goes to the evaluator's key file",
    )
    exp.add_argument(
        "--key",
        help="key file of a blind export (default: OUT.key.json beside the folder); an existing "
        "key's secret is reused, giving the same names",
    )
    exp.set_defaults(func=_cmd_export)

    sco = _command(
        sub,
        "score",
        "score a vendor's hashes of an export like a built-in hash",
        "Read a vendor's CSV of hashes of an export and write the same results and reports "
        "as `run` would for a built-in algorithm.",
        EXIT_RUN,
    )
    sco.add_argument(
        "export", help="folder written by `hash-harness export`, or the key file of a blind export"
    )
    sco.add_argument(
        "--hashes",
        required=True,
        help="vendor CSV with columns item_id,hash (optional: quality, excluded); hash is hex "
        "(0/1 digits with --bits), or a JSON list of numbers for a vector hash",
    )
    sco.add_argument(
        "--label",
        default="vendor",
        help="name of the vendor algorithm in reports: an identifier of at most 32 characters",
    )
    sco.add_argument("--bits", type=_positive_int, help="hash length (default: from the file)")
    sco.add_argument(
        "--measure",
        type=str.lower,
        default="hamming",
        help="how two hashes are compared: bits by hamming or weighted_hamming (with --weights), "
        "vectors by l1, l2 or cosine distance binned to --levels (default: hamming)",
    )
    sco.add_argument(
        "--dims", type=_positive_int, help="numbers per vector hash (default: from the file)"
    )
    sco.add_argument(
        "--levels",
        type=_positive_int,
        help="levels a real-valued distance is binned to (default: 1000; not for hamming)",
    )
    sco.add_argument(
        "--max-distance",
        type=float,
        default=0.0,
        help="l1 / l2 distance mapped to the last level (required for l1 and l2)",
    )
    sco.add_argument(
        "--weights",
        help="JSON file with one list of numbers, a weight per bit (for weighted_hamming)",
    )
    sco.add_argument(
        "--threshold",
        type=int,
        nargs="+",
        help="match thresholds in bits, or in levels for other measures (default: 10 of 64 "
        "bits and 31 of 256 as the built-in hashes of those lengths, else 10%% of them)",
    )
    sco.add_argument(
        "--min-quality",
        type=float,
        help="items whose quality column is below this are the vendor's exclusions (escapes)",
    )
    sco.add_argument(
        "--max-failure-rate",
        type=_fraction,
        help="fraction of images allowed to fail before exit status 3 (overrides the suite)",
    )
    sco.add_argument("--out", default="results", help="output folder (default: ./results)")
    sco.add_argument("--quiet", action="store_true", help="no line per file written")
    sco.set_defaults(func=_cmd_score)

    cmp = _command(
        sub,
        "compare",
        "compare algorithms (one run) or each algorithm across runs of the same suite",
        "Compare the algorithms of one results.json, or each algorithm with itself across runs "
        "of the same suite, on the same images (every algorithm with every other when the runs "
        "share none, e.g. a run beside a vendor's score): a summary table first, then exact "
        "McNemar tests per edit, bootstrap intervals over images for pooled rates and for TPR at "
        "the target false-match rate (calibrated thresholds, held-out images), Fisher's exact "
        "test for false-match rates.",
    )
    cmp.add_argument("results", nargs="+", help="results.json files")
    cmp.add_argument("--format", choices=["md", "html", "json"], default="md")
    cmp.add_argument("--alpha", type=_open_fraction, default=0.05, help="significance level")
    cmp.add_argument(
        "--algorithms",
        nargs="+",
        metavar="ID",
        help="compare only these algorithms (named as in a suite: any case, any policy spelling)",
    )
    cmp.add_argument("--out", help="write to this file instead of standard output")
    cmp.set_defaults(func=_cmd_compare)

    dsets = _command(
        sub,
        "datasets",
        "list corpora; info or verify one (decode, checksums, duplicates)",
        "list: every registered corpus; info NAME: licences, categories, exclusions; verify "
        "NAME: decode every image, check checksums and find exact duplicates (exit 3 if any "
        "image fails).",
        EXIT_RUN,
    )
    dsets.add_argument("action", choices=["list", "info", "verify", "fetch"])
    dsets.add_argument(
        "name",
        nargs="?",
        help="dataset name, folder, manifest, or NAME[N]; for fetch: pd12m or urls",
    )
    fetch = dsets.add_argument_group("fetch (download a url + hash list into a dataset folder)")
    fetch.add_argument("--shard", help="parquet / CSV / JSON(L) file or http(s) URL of one")
    fetch.add_argument("--out", help="dataset folder to fetch into (resumes when it exists)")
    fetch.add_argument("--limit", type=_positive_int, help="only the first N rows of the shard")
    fetch.add_argument("--concurrency", type=_positive_int, default=16, help="downloads at once")
    fetch.add_argument("--retries", type=int, default=3, help="extra attempts when transient")
    fetch.add_argument("--timeout", type=float, default=30.0, help="seconds per attempt")
    for role, names in (
        ("id", "id, key"),
        ("url", "url"),
        ("hash", "hash, md5_hash, md5, sha256"),
        ("license", "license, licence, license_type"),
        ("source", "source"),
    ):
        fetch.add_argument(
            f"--{role}-column", metavar="NAME", help=f"column of the {role} (default: {names})"
        )
    fetch.add_argument("--quiet", action="store_true", help="no progress lines")
    dsets.set_defaults(func=_cmd_datasets)

    rep = _command(
        sub,
        "report",
        "render a results.json as Markdown, HTML, JUnit XML, CSV or Parquet",
        "Render a results.json again, anywhere: md (default), html (self-contained page), "
        "junit, csv or parquet (one row per algorithm x edit x rate with k, n, value, lo, hi; "
        "parquet needs pip install 'hash-harness[parquet]'). html and parquet need --out or a "
        "redirect: they are not written onto a terminal.",
    )
    rep.add_argument("results")
    rep.add_argument("--format", choices=["md", "html", "junit", "csv", "parquet"], default="md")
    rep.add_argument("--out", help="write to this file instead of standard output")
    rep.set_defaults(func=_cmd_report)
    return parser


def _note(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
    """Warnings from libraries as one line without a source path: a note, not a trace."""
    print(f"hash-harness: note: {message}".splitlines()[0], file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    warnings.showwarning = _note
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", 1) < 0:
        print("hash-harness: --workers must be >= 0 (0 = all cores).", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except HarnessError as exc:
        print(f"hash-harness: {visible(exc, keep_newlines=True)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hash-harness: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` or a closed pager: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        if "harness.results" in sys.modules:  # only a command that writes outputs locks them
            sys.modules["harness.results"].release_output_folders()


def console_main() -> None:
    """The ``hash-harness`` script: :func:`main`, then a fast exit.

    A normal interpreter exit tears down every module and object a run left behind (numpy,
    matplotlib, numba, the results) - 0.25-0.8 s of nobody's time once the outputs are written.
    The exit handlers still run (external hashers' processes are stopped, as on a normal exit)
    and the output streams are flushed; only that teardown is skipped.
    """
    # Work is spread over processes, one per core: BLAS threads on top of them only wait and
    # spin (the statistics of a 330-tile run: 0.9 s of CPU with OpenBLAS's threads, 0.3 s
    # without). Set before numpy loads; the worker processes inherit it. A user's value stands.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    code = main()
    atexit._run_exitfuncs()
    with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe: nothing to lose
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
