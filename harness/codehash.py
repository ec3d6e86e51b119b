"""Code fingerprints: which code computed a cached cell, so that changed code never reuses it.

A declared ``version`` is only bumped when someone remembers to; the hash cache must not depend
on that. Every cache key therefore carries a fingerprint of the code behind the cell:

* built-in adapters and transforms (modules of hash-harness itself): the SHA-256 of the source
  of the module that defines the class (the declared version sits beside it in the key);
* plugins (classes from any other top-level package, found through entry points): the SHA-256
  of every file on disk under that top-level package (``.py`` and data files alike; bytecode
  caches left out) together with the distribution's version. RECORD is not used: an editable
  install lists only a ``.pth`` file, and editing a module in place changes nothing in it;
* external hashers: the SHA-256 of the executable and of every file named on its command line
  (``python vendor.py`` is identified by the interpreter *and* the script).

Fingerprints are computed once per class (or command) per process.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import shutil
import sys
from importlib.metadata import packages_distributions, version
from pathlib import Path

#: Top-level packages of hash-harness itself: their classes are fingerprinted by module source.
BUILT_IN = ("harness", "transforms", "datasets_benign")

#: Directories never part of a package's fingerprint (bytecode, tool caches).
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree_digest(root: Path) -> str:
    """SHA-256 over every file under ``root`` (relative path + content), in sorted order."""
    digest = hashlib.sha256()
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        files += [Path(dirpath) / f for f in filenames if not f.endswith((".pyc", ".pyo"))]
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(_sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


def _distribution_version(package: str) -> str:
    names = packages_distributions().get(package, [])
    versions = []
    for name in sorted(set(names)):
        try:
            versions.append(f"{name}=={version(name)}")
        except Exception:  # a broken metadata folder: the files still identify the code
            versions.append(f"{name}==?")
    return ",".join(versions) or "no distribution"


@functools.cache
def package_fingerprint(package: str) -> str:
    """Version + files hash of the installed top-level ``package`` (a plugin)."""
    module = sys.modules.get(package) or __import__(package)
    where = getattr(module, "__file__", None)
    if where is None:  # a namespace package: hash every folder it spans
        roots = [Path(p) for p in getattr(module, "__path__", [])]
    else:
        path = Path(where)
        roots = [path.parent] if path.name == "__init__.py" else [path]
    parts = [_distribution_version(package)]
    for root in sorted(roots):
        parts.append(_tree_digest(root) if root.is_dir() else _sha256_file(root))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@functools.cache
def class_fingerprint(cls: type) -> str:
    """Fingerprint of the code behind a registered class (adapter or transform).

    A built-in class is identified by the source of its module and of the built-in modules of
    its base classes (the shared ``hash`` packing or ``apply`` seeding lives there).
    """
    top = cls.__module__.split(".")[0]
    if top not in BUILT_IN:
        return f"pkg:{package_fingerprint(top)}"
    sources = []
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] not in BUILT_IN:
            continue
        try:
            source = inspect.getsourcefile(klass)
        except TypeError:
            source = None
        if source is not None and source not in sources:
            sources.append(source)
    if not sources:  # defined interactively: nothing on disk to identify it by
        return "src:unknown"
    digest = hashlib.sha256("|".join(_sha256_file(Path(s)) for s in sources).encode())
    return f"src:{digest.hexdigest()[:16]}"


@functools.cache
def command_fingerprint(command: tuple[str, ...], search_path: str | None) -> str:
    """SHA-256 of an external hasher's executable and of every file its argv names."""
    parts = []
    for i, arg in enumerate(command):
        path = shutil.which(arg, path=search_path) if i == 0 else None
        candidate = Path(path) if path else Path(arg)
        if candidate.is_file():
            parts.append(f"{i}:{_sha256_file(candidate)}")
        elif i == 0:
            parts.append(f"0:not found:{arg}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@functools.cache
def steps_fingerprint(classes: tuple[type, ...]) -> str:
    """Fingerprint of the code of a chain's steps, in order."""
    text = "|".join(class_fingerprint(c) for c in classes)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
