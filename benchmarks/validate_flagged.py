"""Validate the flagged-share model: fit on random subsets, compare with the exact whole corpus.

Run explicitly (minutes: it hashes the corpora's originals once, through the hash cache)::

    python benchmarks/validate_flagged.py                       # skimage, skimage_tiles, openclipart
    python benchmarks/validate_flagged.py --datasets skimage skimage_tiles --workers 2

For each corpus, algorithm and threshold it computes every image's match count against all other
images of other hygiene groups (the default suite's hygiene: exact duplicates dropped, PDQ
near-duplicates within 10 bits merged; PDQ's quality gate discards hashes below 50, and those
uploads count as never flagged), the **exact** share of uploads flagged against a database of
the whole corpus, and then, for several subset sizes and five seeded random subsets each, the
beta-binomial fitted on the subset's own counts and its prediction (with bootstrap interval) at
the whole corpus's database size. The table goes into ``docs/statistics.md`` between the
``flagged-validation`` markers. A corpus that is not installed is skipped and said so.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from harness import evaluate, flagged, pipeline
from harness.results import atomic_write_text
from harness.store import HashStore, default_path
from harness.suite import parse_suite

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "statistics.md"
BEGIN, END = "<!-- flagged-validation:begin -->", "<!-- flagged-validation:end -->"
#: (algorithm, thresholds): the operating points and a stricter one.
POINTS = (("pdq", (20, 31)), ("phash", (6, 10)))
REPEATS = 5


def _subset_sizes(n: int) -> list[int]:
    """Subsets from about 7% to 60% of the corpus, at most four sizes."""
    sizes = [s for s in (12, 100, 200, 500, 2000) if s <= 0.6 * n]
    return sizes[-3:] if sizes else [max(2, n // 2)]


def validate(dataset: str, workers: int, store: Any) -> list[dict[str, Any]]:
    # The default suite's hygiene and seed, originals only.
    raw = tomllib.loads((ROOT / "benchmarks" / "suites" / "default.toml").read_text())
    raw |= {"algorithms": [name for name, _ in POINTS], "transforms": ["identity"]}
    suite = parse_suite(raw, source="default.toml (originals only)")
    algos = suite.algorithms
    data, corpus, _ = pipeline.hash_suite(suite, dataset, workers, True, store)
    included, dupes = evaluate.included_images(corpus)
    groups, _ = evaluate.corpus_hygiene(suite, corpus, included, dupes, data)
    uploads = np.flatnonzero(included)
    rows = []
    for a, (name, thresholds) in enumerate(POINTS):
        hashes, n_bits = corpus.packed[a][0][uploads], algos[a].n_levels
        hashable, g = corpus.ok[a][0][uploads], groups[uploads]
        whole = flagged.impostor_histograms(hashes, n_bits, g, hashable)
        for t in thresholds:
            counts = flagged.match_counts(whole, t, hashable)
            top = counts.max_database
            exact = flagged.measured_curve(counts, [top])["share"][0]
            fpr = counts.pair_fpr()
            row = {
                "dataset": data.name,
                "n": len(uploads),
                "gated": counts.n_gated,
                "algorithm": name,
                "threshold": t,
                "fpr": fpr,
                "database": top,
                "exact": exact,
                "independent": flagged._independent(fpr.value, top),
                "subsets": [],
            }
            rng = np.random.default_rng(0)
            for size in _subset_sizes(len(uploads)):
                fits = []
                for _ in range(REPEATS):
                    pick = np.sort(rng.choice(len(uploads), size, replace=False))
                    sub = flagged.impostor_histograms(hashes[pick], n_bits, g[pick], hashable[pick])
                    model = flagged.model_curve(
                        flagged.match_counts(sub, t, hashable[pick]), [top], seed=0
                    )
                    fits.append(model)
                row["subsets"].append({"size": size, "fits": fits})
            rows.append(row)
    return rows


def _subset_cell(size: int, fits: list[dict[str, Any]], exact: float) -> str:
    ok = [f for f in fits if f["status"] == "ok"]
    if not ok:
        needed = [f["images_needed"] for f in fits if f.get("images_needed")]
        hint = f", at least ~{int(np.median(needed)):,} images needed" if needed else ""
        return f"{size:,}: unresolved {len(fits)}/{len(fits)}{hint}"
    shares = np.array([f["share"][0] for f in ok])
    covered = sum(f["ci95"][0][0] <= exact <= f["ci95"][0][1] for f in ok)
    unresolved = len(fits) - len(ok)
    extra = f", {unresolved} unresolved" if unresolved else ""
    return (
        f"{size:,}: {np.median(shares):.3g} [{shares.min():.3g}-{shares.max():.3g}], "
        f"{covered}/{len(ok)} cover{extra}"
    )


def render(rows: list[dict[str, Any]], skipped: list[str]) -> str:
    lines = [
        BEGIN,
        "",
        "Generated by `python benchmarks/validate_flagged.py`. Per corpus (after hygiene), "
        "algorithm and threshold: the pair FPR, the exact share of uploads flagged against a "
        "database of the whole corpus (every image queried against all images of other groups; "
        "PDQ's quality-gated uploads counted as never flagged), the independence figure "
        "`1-(1-p)^D` for reference, and the beta-binomial fitted on random subsets of each size "
        f"({REPEATS} seeded subsets each): median prediction at the same D [smallest-largest], and "
        "in how many of the resolved fits the 95% bootstrap interval covers the exact value.",
        "",
        "| corpus (uploads, gated) | algorithm <= t | pair FPR | D | exact share | "
        "independence | subset size: model prediction |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = "; ".join(_subset_cell(s["size"], s["fits"], r["exact"]) for s in r["subsets"])
        lines.append(
            f"| {r['dataset']} ({r['n']:,}, {r['gated']}) | {r['algorithm']} <= {r['threshold']} "
            f"| {r['fpr'].value:.2g} ({r['fpr'].k:,}/{r['fpr'].n:,}) | {r['database']:,} | {r['exact']:.3g} | {r['independent']:.3g} "
            f"| {cells} |"
        )
    if skipped:
        lines += ["", "Not run (corpus not installed): " + ", ".join(skipped) + "."]
    return "\n".join([*lines, "", END])


def write(block: str, path: Path = OUT) -> None:
    """Replace the marked block of ``path`` (or append it under its own heading)."""
    text = path.read_text() if path.exists() else "# Statistics\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Validation of the flagged-share model\n\n" + block + "\n"
    atomic_write_text(path, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["skimage", "skimage_tiles", "openclipart"]
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows, skipped = [], []
    with HashStore(default_path()) as store:
        for name in args.datasets:
            try:
                rows += validate(name, args.workers, store)
            except FileNotFoundError as exc:
                skipped.append(f"{name} ({exc})")
            print(f"{name}: done", flush=True)
    block = render(rows, skipped)
    print(block)
    write(block, args.out)


if __name__ == "__main__":
    main()
