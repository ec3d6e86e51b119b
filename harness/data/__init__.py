"""Data the tool reads at run time: bundled suites, committed baselines and golden hashes.

The repository keeps one copy of each file under ``benchmarks/`` (``suites/*.toml``,
``baselines/*.json``, ``golden/hashes.json``); the wheel ships the same files as package data
under ``harness/data/`` (``[tool.setuptools.package-dir]`` in pyproject.toml). This module is the
one place that knows both locations, so every caller asks for a bundled file by name.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path

from harness.core.errors import HarnessError

_HERE = Path(__file__).resolve().parent


def folder(kind: str) -> Path:
    """``harness/data/KIND`` in an installed wheel, ``benchmarks/KIND`` in a source checkout
    (an editable install maps the package to the checkout, where the files keep their place)."""
    packaged = _HERE / kind
    return packaged if packaged.is_dir() else _HERE.parent.parent / "benchmarks" / kind


def _bundled(kind: str, suffix: str) -> dict[str, Path]:
    where = folder(kind)
    return {p.stem: p for p in sorted(where.glob(f"*{suffix}"))} if where.is_dir() else {}


def suites() -> dict[str, Path]:
    """Bundled suites by name (``default``, ``ci``, ``thorn``, ...), sorted by name."""
    return _bundled("suites", ".toml")


def baselines() -> dict[str, Path]:
    """Committed baselines by name (``ci`` is the guard baseline of the ``ci`` suite)."""
    return _bundled("baselines", ".json")


def golden_path() -> Path:
    """The golden-hash file ``hash-harness golden check`` reads by default."""
    return folder("golden") / "hashes.json"


def suite_description(path: Path) -> tuple[int, str]:
    """(version, description) of a suite file, read without validating the suite."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return int(raw.get("version", 1)), str(raw.get("description", "")).strip()


def resolve(text: str | Path, kind: str, error: type[HarnessError] = HarnessError) -> Path:
    """The file ``text`` names: an existing path as given, else a bundled name of ``kind``.

    Parameters
    ----------
    text
        A path to a file, or a bundled name such as ``"thorn"`` (``--suite thorn``) or ``"ci"``
        (``--baseline ci``). An existing file wins over a bundled name; text with a folder or a
        suffix is always a path.
    kind
        ``"suite"`` or ``"baseline"``.
    error
        The exception raised when nothing is found.

    Raises
    ------
    HarnessError
        When a bare name is neither an existing file nor bundled; the message lists the
        bundled names and suggests the closest one.
    """
    path = Path(text)
    if path.is_file() or path.suffix or len(path.parts) > 1:
        return path  # a path: the caller's reader reports a missing or unreadable file
    bundled = suites() if kind == "suite" else baselines()
    name = str(text)
    if name in bundled:
        return bundled[name]
    close = difflib.get_close_matches(name, bundled, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise error(
        f"Cannot read {kind} file {name!r}: no such file, and no bundled {kind} of that name "
        f"(bundled: {', '.join(bundled) or 'none'}).{hint}"
    )


__all__ = ["baselines", "folder", "golden_path", "resolve", "suite_description", "suites"]
