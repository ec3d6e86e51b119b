"""Suites: TOML files naming a dataset, transforms, algorithms and thresholds.

:func:`load_suite` validates everything (names, parameters, duplicates, threshold ranges) before any
image is opened, and reports every problem with what to write instead. Example::

    name = "default"
    version = 1
    seed = 0
    dataset = "skimage"
    algorithms = ["phash", "pdq"]
    transforms = ["identity", "jpeg(quality=50)", "resize(scale=0.5)|jpeg(quality=70)"]

    [thresholds]          # optional; default: each algorithm's usual operating point
    pdq = [31, 40]
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets_benign.decode import DEFAULT_POLICY, check_policy
from harness import data
from harness.algorithms import HashAlgorithm, make_algorithm
from harness.core.errors import HarnessError, SuiteError
from harness.core.params import check_int, check_real
from harness.core.words import plural, quoted
from transforms import Chain
from transforms.catalogue import expand

KEYS = {
    "name": "suite name used in reports (string)",
    "version": "integer; bump whenever a change would change results",
    "description": "free text",
    "seed": "integer base seed for randomised transforms",
    "dataset": "registered dataset name or folder path",
    "decode": "decode policy: 'viewer' (default: flatten on white) or 'reference' (convert('RGB'))",
    "algorithms": (
        "list of algorithm specs or matching policies, e.g. 'phash', 'phash(hash_size=16)', "
        "'pdq & phash', 'pdq | phash', 'pdq + phash', 'dihedral(phash)', 'unletterbox(pdq)', "
        "'gate(phash,quality=50)'"
    ),
    "transforms": (
        "list of transform chains ('jpeg(quality=70)', 'resize(scale=0.5)|jpeg'), severity "
        "ladders ('crop@S1-S5') or presets ('preset:whatsapp_like')"
    ),
    "thresholds": "table: algorithm name or id -> list of match thresholds in bits",
    "max_failure_rate": "fraction of images allowed to fail before the run exits non-zero",
    "target_fprs": "list of false-match rates to recommend thresholds for, e.g. [1e-3, 1e-6]",
    "calibration_fraction": "fraction of source images thresholds are chosen on (rest: held out)",
    "bootstrap_resamples": "resamples of source images for bootstrap intervals (0 = off)",
    "base_rates": "fractions of checked pairs that are true copies, for precision, e.g. [0.01]",
    "near_duplicates": (
        "table: algorithm = one of the suite's algorithms, max_distance = bits; optional "
        "confirm_algorithm + confirm_max_distance for a looser first check confirmed by a second "
        "hash"
    ),
    "max_side": (
        "integer: originals whose longer side exceeds it are shrunk to it before any edit "
        "(0 = never; default: the dataset's own, e.g. 4096 for openclipart)"
    ),
    "group_by": (
        "'folder' or 'stem': images of one sub-folder, or with one file-name stem, are one group "
        "and never form a collision pair"
    ),
    "database_sizes": (
        "hashes in a platform's match database, for the share of uploads flagged, e.g. [1e6, 1e7]"
    ),
}

GROUP_BY = ("folder", "stem")

DEFAULT_SUITE = data.folder("suites") / "default.toml"


@dataclass(frozen=True)
class NearDuplicates:
    """Originals whose ``algorithm`` hashes lie within ``max_distance`` are one image for
    collision counting (their pairs are listed, never counted as negatives)."""

    algorithm: str  # algorithm id
    max_distance: int
    #: A second hash that must also be within ``confirm_max_distance`` (both checks must hold).
    confirm_algorithm: str | None = None
    confirm_max_distance: int | None = None


@dataclass(frozen=True)
class Suite:
    """A validated suite: everything needed to run, nothing loaded yet."""

    name: str
    version: int
    seed: int
    dataset: str
    algorithms: tuple[HashAlgorithm, ...]
    transforms: tuple[Chain, ...]
    thresholds: Mapping[str, tuple[int, ...]]  # algorithm id -> thresholds in bits
    max_failure_rate: float = 0.0
    target_fprs: tuple[float, ...] = (1e-3, 1e-6)
    calibration_fraction: float = 0.5
    bootstrap_resamples: int = 1000
    base_rates: tuple[float, ...] = (1e-2, 1e-4)
    database_sizes: tuple[float, ...] = (1e6, 1e7)
    near_duplicates: NearDuplicates | None = None
    #: Longer side originals are shrunk to (0 = never); None = the dataset's own setting.
    max_side: int | None = None
    group_by: str | None = None
    #: Decode policy of the dataset's images (see :mod:`datasets_benign.decode`).
    decode: str = "viewer"
    description: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    #: Set when ``run --transforms`` replaced the suite's transforms (see :func:`narrowed`).
    narrowed: Mapping[str, Any] | None = None

    @property
    def config_sha256(self) -> str:
        """SHA-256 of the canonical JSON of the suite as written (what a baseline is tied to)."""
        text = json.dumps(self.config, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _problem(where: str, message: str) -> str:
    return f"{where}: {message}"


def _string_list(raw: Mapping[str, Any], key: str, problems: list[str]) -> list[str]:
    value = raw.get(key)
    if value is None:
        problems.append(_problem(key, f"missing; add {key} = [...] ({KEYS[key]})."))
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(_problem(key, f"must be a list of strings ({KEYS[key]})."))
        return []
    if not value:
        problems.append(_problem(key, "is empty; list at least one."))
    return value


def _dedupe(
    items: list[tuple[int, Any]], key: str, problems: list[str], texts: Sequence[str]
) -> None:
    """Flag entries whose canonical id repeats an earlier one (``items`` = (position, spec)),
    quoting both entries as written (``texts``)."""
    seen: dict[str, int] = {}
    for i, item in items:
        if item.id in seen:
            j = seen[item.id]
            labelled = getattr(item, "spec", item.id) != item.id  # named by its label
            if labelled:
                problems.append(
                    _problem(
                        f"{key}[{i}]",
                        f"its label {item.id!r} is already the name of {key}[{j}]; results "
                        "name an algorithm by its label, so give each its own.",
                    )
                )
            else:
                same = "" if texts[i] == texts[j] == item.id else f" (both are {item.id!r})"
                problems.append(
                    _problem(
                        f"{key}[{i}] {texts[i]!r}", f"duplicates {key}[{j}] {texts[j]!r}{same}."
                    )
                )
        seen.setdefault(item.id, i)


def _build(key: str, raw: Mapping[str, Any], make: Any, problems: list[str]) -> list[Any]:
    """Construct every entry of the list ``raw[key]``, collecting problems instead of stopping.

    ``make`` returns one object, or a list when one entry names several (``crop@S1-S5``).
    """
    built: list[tuple[int, Any]] = []
    texts = _string_list(raw, key, problems)
    for i, text in enumerate(texts):
        try:
            made = make(text)
            built += [(i, m) for m in made] if isinstance(made, list) else [(i, made)]
        except HarnessError as exc:
            problems.append(_problem(f"{key}[{i}] {quoted(text)}", str(exc)))
    _dedupe(built, key, problems, texts)
    return [item for _, item in built]


def parse_suite(raw: Mapping[str, Any], *, source: str = "<suite>") -> Suite:
    """Validate a suite given as a mapping (the parsed TOML) and build a :class:`Suite`.

    Raises
    ------
    SuiteError
        Listing every problem found, one per line, each with how to fix it.
    """
    # Long: one flat pass over every key that collects all problems, so a user sees every
    # mistake of a suite at once rather than one per attempt.
    problems: list[str] = []
    for key in raw:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" Known keys: {', '.join(KEYS)}."
            problems.append(_problem(key, f"unknown key.{hint}"))

    def checked(fn: Any, key: str, default: Any, **kw: Any) -> Any:
        try:
            return fn(key, raw.get(key, default), owner="the suite", **kw)
        except HarnessError as exc:
            problems.append(_problem(key, str(exc)))
            return default

    version = checked(check_int, "version", 1, min_value=1)
    seed = checked(check_int, "seed", 0, min_value=0, max_value=2**63 - 1)
    max_failure_rate = checked(check_real, "max_failure_rate", 0.0, min_value=0.0, max_value=1.0)
    name = raw.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        problems.append(_problem("name", "must be a non-empty string."))
        name = "suite"
    dataset = raw.get("dataset", "skimage")
    if not isinstance(dataset, str):
        problems.append(_problem("dataset", "must be a string (name or folder path)."))
        dataset = "skimage"
    description = raw.get("description", "")
    decode = raw.get("decode", DEFAULT_POLICY)
    try:
        check_policy(decode)
    except HarnessError as exc:
        problems.append(_problem("decode", str(exc)))

    algorithms = _build("algorithms", raw, make_algorithm, problems)
    chains = _build("transforms", raw, expand, problems)

    thresholds = _thresholds(raw.get("thresholds", {}), algorithms, problems)
    calibration_fraction = checked(
        check_real, "calibration_fraction", 0.5, min_value=0.05, max_value=0.95
    )
    resamples = checked(check_int, "bootstrap_resamples", 1000, min_value=0, max_value=100_000)
    target_fprs = _fractions("target_fprs", raw.get("target_fprs", [1e-3, 1e-6]), problems)
    base_rates = _fractions("base_rates", raw.get("base_rates", [1e-2, 1e-4]), problems)
    database_sizes = _sizes("database_sizes", raw.get("database_sizes", [1e6, 1e7]), problems)
    near_duplicates = _near_duplicates(raw.get("near_duplicates"), algorithms, problems)
    max_side = (
        checked(check_int, "max_side", None, min_value=0, max_value=1_000_000)
        if "max_side" in raw
        else None
    )
    if max_side is not None and 0 < max_side < 32:
        problems.append(
            _problem("max_side", f"must be 0 (never shrink) or at least 32, got {max_side}.")
        )
    group_by = raw.get("group_by")
    if group_by is not None and group_by not in GROUP_BY:
        problems.append(
            _problem("group_by", f"must be one of {', '.join(GROUP_BY)}, got {group_by!r}.")
        )
    if problems:
        # An option (--transforms) is not a suite of its own: name it, not "a valid suite".
        what = "is not valid" if source.startswith("--") else "is not a valid suite"
        raise SuiteError(
            f"{source} {what} ({plural(len(problems), 'problem')}):\n  - " + "\n  - ".join(problems)
        )
    return Suite(
        name=name,
        version=version,
        seed=seed,
        dataset=dataset,
        algorithms=tuple(algorithms),
        transforms=tuple(chains),
        thresholds=thresholds,
        max_failure_rate=max_failure_rate,
        target_fprs=target_fprs,
        calibration_fraction=calibration_fraction,
        bootstrap_resamples=resamples,
        base_rates=base_rates,
        database_sizes=database_sizes,
        near_duplicates=near_duplicates,
        max_side=max_side,
        group_by=group_by,
        decode=decode,
        description=str(description),
        config=dict(raw),
    )


def _named(key: Any, algorithms: list[HashAlgorithm]) -> list[HashAlgorithm]:
    """Algorithms a suite key refers to: the one with exactly that id (as written, or in its
    canonical form: "phash&pdq" is "pdq & phash"), else all with that name."""
    exact = [a for a in algorithms if a.id == key]
    if not exact and isinstance(key, str):
        try:
            canonical = make_algorithm(key).id
        except HarnessError:
            canonical = None
        exact = [a for a in algorithms if a.id == canonical]
    return exact or [a for a in algorithms if a.name == key]


def _thresholds(
    raw: Any, algorithms: list[HashAlgorithm], problems: list[str]
) -> dict[str, tuple[int, ...]]:
    """Per algorithm id: the suite's thresholds, else the adapter's default operating point."""
    if not isinstance(raw, Mapping):
        problems.append(_problem("thresholds", "must be a table, e.g. [thresholds] pdq = [31]."))
        raw = {}
    chosen: dict[str, tuple[int, ...]] = {}
    for key, values in raw.items():
        targets = _named(key, algorithms)
        if not targets:
            listed = ", ".join(a.id for a in algorithms)
            problems.append(
                _problem(f"thresholds.{key}", f"names no algorithm of this suite ({listed}).")
            )
            continue
        if len(targets) > 1:
            problems.append(
                _problem(
                    f"thresholds.{key}",
                    f'matches several algorithms; use the full id, e.g. "{targets[0].id}" = [...].',
                )
            )
            continue
        algo = targets[0]
        if not isinstance(values, list) or not values:
            problems.append(_problem(f"thresholds.{key}", "must be a non-empty list of ints."))
            continue
        try:
            bits = tuple(
                sorted(
                    {
                        check_int(
                            "threshold", v, owner=algo.id, min_value=0, max_value=algo.n_levels
                        )
                        for v in values
                    }
                )
            )
        except HarnessError as exc:
            problems.append(_problem(f"thresholds.{key}", str(exc)))
            continue
        chosen[algo.id] = bits
    for algo in algorithms:
        chosen.setdefault(algo.id, (algo.default_threshold().bits,))
    return chosen


def _numbers(
    key: str, raw: Any, problems: list[str], *, descending: bool, **bounds: Any
) -> tuple[float, ...]:
    """A non-empty list of reals within ``bounds`` (see ``check_real``), sorted, repeats
    dropped; each bad entry becomes a problem."""
    if not isinstance(raw, list) or not raw:
        problems.append(_problem(key, f"must be a non-empty list ({KEYS[key]})."))
        return ()
    values = []
    for i, v in enumerate(raw):
        try:
            values.append(check_real(f"{key}[{i}]", v, owner="the suite", **bounds))
        except HarnessError as exc:
            problems.append(_problem(key, str(exc)))
    return tuple(sorted(set(values), reverse=descending))


def _fractions(key: str, raw: Any, problems: list[str]) -> tuple[float, ...]:
    """A non-empty list of numbers strictly between 0 and 1, largest first."""
    return _numbers(
        key,
        raw,
        problems,
        descending=True,
        min_value=0.0,
        max_value=1.0,
        min_open=True,
        max_open=True,
    )


def _sizes(key: str, raw: Any, problems: list[str]) -> tuple[float, ...]:
    """A non-empty list of counts >= 1 in any notation (``1e7``), smallest first."""
    return _numbers(key, raw, problems, descending=False, min_value=1.0, max_value=1e15)


def _near_duplicates(
    raw: Any, algorithms: list[HashAlgorithm], problems: list[str]
) -> NearDuplicates | None:
    if raw is None:
        return None
    example = (
        'e.g. [near_duplicates] algorithm = "pdq", max_distance = 32, '
        'confirm_algorithm = "phash", confirm_max_distance = 16'
    )
    required, confirm = {"algorithm", "max_distance"}, {"confirm_algorithm", "confirm_max_distance"}
    keys = set(raw) if isinstance(raw, Mapping) else set()
    if not required <= keys or keys - required not in (set(), confirm):
        problems.append(
            _problem(
                "near_duplicates",
                "needs algorithm and max_distance, optionally both confirm_algorithm and "
                f"confirm_max_distance, {example}.",
            )
        )
        return None

    def one(name_key: str, distance_key: str) -> tuple[str, int] | None:
        name = raw[name_key]
        targets = _named(name, algorithms)
        if len(targets) != 1:
            listed = ", ".join(a.id for a in algorithms)
            problems.append(
                _problem(
                    f"near_duplicates.{name_key}",
                    f"{name!r} must name one algorithm of this suite ({listed}).",
                )
            )
            return None
        try:
            distance = check_int(
                distance_key,
                raw[distance_key],
                owner="near_duplicates",
                min_value=0,
                max_value=targets[0].n_levels,
            )
        except HarnessError as exc:
            problems.append(_problem(f"near_duplicates.{distance_key}", str(exc)))
            return None
        return targets[0].id, distance

    first = one("algorithm", "max_distance")
    second = one("confirm_algorithm", "confirm_max_distance") if confirm <= keys else None
    if first is None or (confirm <= keys and second is None):
        return None
    return NearDuplicates(*first, *(second or (None, None)))


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite: a TOML file, or the name of a bundled suite (``thorn``).

    Raises
    ------
    SuiteError
        When the file cannot be read (naming the bundled suites), is not TOML, or is not a
        valid suite.
    """
    path = data.resolve(path, "suite", SuiteError)
    shown = os.fsencode(path).decode("utf-8", "backslashreplace")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteError(f"Cannot read suite file {shown!r}: {exc.strerror}.") from exc
    except UnicodeDecodeError as exc:
        raise SuiteError(
            f"{shown} is not UTF-8 text (byte {exc.start}: {exc.reason}); save the suite as UTF-8."
        ) from exc
    if "\x00" in text:
        raise SuiteError(f"{shown} is not a text file (it contains NUL bytes).")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{shown} is not valid TOML: {exc}.") from exc
    except RecursionError as exc:
        raise SuiteError(f"{shown} nests tables or arrays too deeply to be a suite.") from exc
    return parse_suite(raw, source=shown)


def narrowed(suite: Suite, selections: Sequence[str], option: str = "--transforms") -> Suite:
    """``suite`` with its transforms replaced by ``selections`` (validated as a suite entry
    would be), recording what it was narrowed from: the suite's own entries, the edits of the
    suite this run leaves out (``not_run``) and any it adds (``added``), so that ``check``
    compares such a run with the whole suite's baseline on the cells it has."""
    replaced = parse_suite({**suite.config, "transforms": list(selections)}, source=option)
    full = [c.id for c in suite.transforms]
    kept = {c.id for c in replaced.transforms}
    record = {
        "option": option,
        "suite_transforms": list(suite.config.get("transforms", [])),
        "not_run": [t for t in full if t not in kept],
        "added": [c.id for c in replaced.transforms if c.id not in set(full)],
    }
    return dataclasses.replace(replaced, narrowed=record)
