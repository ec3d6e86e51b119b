"""Command line: ``hash-harness`` / ``python -m harness``.

Exit status: 0 success; 2 invalid input (suite, arguments, dataset) - nothing was run;
3 the run finished and wrote its results, but more images failed than the suite's
``max_failure_rate`` allows; 1 an unexpected internal error.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import __version__
from harness.errors import HarnessError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_FAILURES = 0, 1, 2, 3


def _cmd_run(args: argparse.Namespace) -> int:
    from harness import results
    from harness.evaluate import run_suite
    from harness.report import render_markdown
    from harness.suite import DEFAULT_SUITE, load_suite

    suite = load_suite(args.suite or DEFAULT_SUITE)
    if args.max_failure_rate is not None:
        suite = dataclasses.replace(suite, max_failure_rate=args.max_failure_rate)
    workers = args.workers or os.cpu_count() or 1
    out = Path(args.out)
    if not args.quiet:
        print(
            f"hash-harness {__version__}: suite {suite.name} v{suite.version}, "
            f"{len(suite.transforms)} transforms x {len(suite.algorithms)} algorithms, "
            f"dataset {args.dataset or suite.dataset}, {workers} worker(s)",
            file=sys.stderr,
        )
    result = run_suite(suite, dataset=args.dataset, workers=workers, quiet=args.quiet)
    json_path = results.dump(result, out / "results.json")
    md = render_markdown(result)
    md_path = results.atomic_write_text(out / "report.md", md)
    status = result["status"]
    if not args.quiet:
        print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    if not status["ok"]:
        print(
            f"hash-harness: {status['images_failed']} of {result['dataset']['n_images']} images "
            f"failed (rate {status['failure_rate']:.3f} > max_failure_rate "
            f"{status['max_failure_rate']}); see the Failures section of {md_path}.",
            file=sys.stderr,
        )
        return EXIT_FAILURES
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "transforms":
        from transforms import TRANSFORMS

        for name in TRANSFORMS.names():
            cls = TRANSFORMS.get(name)
            params = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls))
            aliases = TRANSFORMS.aliases_of(name)
            alias = f" (alias {', '.join(aliases)})" if aliases else ""
            signature = f"{name}({params})" if params else name
            print(f"{signature}{alias}\n    {cls.models}")
    elif args.what == "algorithms":
        from harness.algorithms import ALGORITHMS

        for name in ALGORITHMS.names():
            algo = ALGORITHMS.get(name)()
            th = algo.default_threshold()
            aliases = ALGORITHMS.aliases_of(name)
            alias = f" (alias {', '.join(aliases)})" if aliases else ""
            print(f"{algo.id}{alias}: {algo.n_bits} bits, {algo.distance}; default <= {th.bits}")
            print(f"    {(algo.__doc__ or '').strip().splitlines()[0]}")
    else:
        from datasets_benign import DATASETS

        for name in DATASETS.names():
            data = DATASETS.get(name)()
            licences = sorted({r.licence for r in data.records})
            print(f"{name}: {len(data.records)} images; licences: {', '.join(licences)}")
        print("any folder path: every file under it (recursively)")
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.suite import load_suite

    suite = load_suite(args.suite)
    print(
        f"{args.suite}: valid suite {suite.name!r} v{suite.version}: "
        f"{len(suite.transforms)} transforms, {len(suite.algorithms)} algorithms, "
        f"dataset {suite.dataset!r}"
    )
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from harness import results
    from harness.report import render_markdown

    text = render_markdown(results.load(args.results))
    if args.out:
        results.atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hash-harness",
        description="Measure how robust perceptual image hashes are to edits, and how often "
        "different images collide, on benign public-domain images.",
    )
    parser.add_argument("--version", action="version", version=f"hash-harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a suite and write results.json + report.md")
    run.add_argument("--suite", help="suite TOML file (default: benchmarks/suites/default.toml)")
    run.add_argument("--dataset", help="registered dataset name or folder of images")
    run.add_argument("--out", default="results", help="output folder (default: ./results)")
    run.add_argument("--workers", type=int, default=0, help="worker processes (default: all cores)")
    run.add_argument(
        "--max-failure-rate",
        type=_fraction,
        help="fraction of images allowed to fail before exit status 3 (overrides the suite)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.set_defaults(func=_cmd_run)

    ls = sub.add_parser("list", help="list registered transforms, algorithms or datasets")
    ls.add_argument("what", choices=["transforms", "algorithms", "datasets"])
    ls.set_defaults(func=_cmd_list)

    val = sub.add_parser("validate", help="check a suite file without touching any image")
    val.add_argument("suite")
    val.set_defaults(func=_cmd_validate)

    rep = sub.add_parser("report", help="render the Markdown report of a results.json")
    rep.add_argument("results")
    rep.add_argument("--out", help="write to this file instead of standard output")
    rep.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", 1) < 0:
        print("hash-harness: --workers must be >= 0 (0 = all cores).", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except HarnessError as exc:
        print(f"hash-harness: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hash-harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
