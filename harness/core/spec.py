"""Parameterised, registered objects with canonical ids: shared by transforms and algorithms.

A spec is a frozen dataclass of parameters declared with :func:`~harness.core.params.param`,
validated on construction from those declarations. Its canonical id is
``name(key=value,...)`` with keys sorted, values as ``repr`` and secondary parameters at their
default left out, e.g.
``jpeg(quality=50)`` or ``jpeg(quality=50,subsampling='4:4:4')``. The same text form is what
users write in suites and on the command line; :func:`parse_call` reads it safely (literals only,
nothing is evaluated).
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from harness.core.errors import InvalidParameterError
from harness.core.params import declared
from harness.core.registry import Registry
from harness.core.words import quoted


@dataclasses.dataclass(frozen=True)
class Spec:
    """Base for frozen parameter dataclasses with a registered ``name``."""

    name: ClassVar[str] = ""
    #: Bump when outputs change for the same parameters; recorded with every result.
    version: ClassVar[int] = 1
    #: Parameters written in the id even at their default; None = the first parameter (for an
    #: edit, its strength: ``jpeg(quality=75)`` reads better than a bare ``jpeg``).
    always_shown: ClassVar[tuple[str, ...] | None] = None
    #: Parameters never written in the id: how a result is obtained rather than what it is (an
    #: external hasher's argv), so that moving a binary does not rename every metric.
    id_excludes: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        # Declared parameters are checked (and stored as their declared type: an int given for
        # a float parameter becomes a float, so ids do not depend on how a number was written).
        for f in dataclasses.fields(self):
            declaration = declared(f)
            if declaration is None:
                continue
            value = getattr(self, f.name)
            checked = declaration.check(f.name, value, self.name)
            if checked is not value:
                object.__setattr__(self, f.name, checked)
        self.validate()

    def validate(self) -> None:
        """Checks that involve more than one parameter (each parameter is checked already)."""

    def params(self) -> dict[str, Any]:
        """Parameters as a plain dict, omitting those left unset (None)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }

    @property
    def id(self) -> str:
        """Canonical id ``name(key=value,...)``: keys sorted, values ``repr``, parameters at their
        default left out unless ``always_shown`` (``jpeg(quality=50)``, ``phash``).

        Leaving defaults out keeps ids short and lets a new parameter with a default arrive
        without renaming every existing cell; what a default *means* is pinned by ``version``,
        recorded beside every id, and :meth:`to_dict` lists every parameter.
        """
        fields = dataclasses.fields(self)
        shown = self.always_shown if self.always_shown is not None else [f.name for f in fields[:1]]
        defaults = {
            f.name: f.default
            for f in fields
            if f.default is not dataclasses.MISSING and f.name not in shown
        }
        params = {
            k: v
            for k, v in self.params().items()
            if k not in self.id_excludes
            and not (k in defaults and type(v) is type(defaults[k]) and v == defaults[k])
        }
        if not params:
            return self.name
        return f"{self.name}({','.join(f'{k}={params[k]!r}' for k in sorted(params))})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: ``{"name", "version", "params"}``."""
        return {"name": self.name, "version": self.version, "params": self.params()}

    def __str__(self) -> str:
        return self.id


S = TypeVar("S", bound=Spec)


def make_spec(registry: Registry[type[S]], name: str, params: Mapping[str, Any]) -> S:
    """Construct the registered class ``name`` with ``params``, naming unknown parameters."""
    cls = registry.get(name)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidParameterError(
            f"{cls.name} has no parameter {unknown[0]!r}. Its parameters are: "
            f"{', '.join(sorted(known)) or '(none)'}."
        )
    return cls(**params)


def spec_from_dict(registry: Registry[type[S]], data: Mapping[str, Any]) -> S:
    """Inverse of :meth:`Spec.to_dict`; refuses a version other than the installed one."""
    cls = registry.get(str(data["name"]))
    version = data.get("version", cls.version)
    if version != cls.version:
        raise InvalidParameterError(
            f"{cls.name} version {version} was requested but version {cls.version} is "
            "installed; results would not be comparable."
        )
    return make_spec(registry, cls.name, dict(data.get("params", {})))


def parse_call(text: str, example: str) -> tuple[str, dict[str, Any]]:
    """Read ``name`` or ``name(key=literal, ...)`` into ``(name, params)``.

    ``example`` is shown in error messages (e.g. ``"jpeg(quality=70)"``).
    """
    text = text.strip()
    if not text:
        raise InvalidParameterError(
            f"Empty name: write it as name(key=value, ...), e.g. {example}."
        )
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise InvalidParameterError(
            f"Cannot parse {quoted(text)}: {_odd_character(text)}write it as "
            f"name(key=value, ...), e.g. {example}."
        ) from exc
    if isinstance(node, ast.Name):
        return node.id, {}
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)) or node.args:
        raise InvalidParameterError(
            f"Cannot parse {quoted(text)}: write it as name(key=value, ...) with keyword "
            f"arguments only, e.g. {example}."
        )
    check_once(node.keywords, text)
    params: dict[str, Any] = {}
    for kw in node.keywords:
        params.update(keyword(kw, text))
    return node.func.id, params


def keyword(kw: ast.keyword, text: str) -> dict[str, Any]:
    """One ``key=literal`` of the spec ``text`` as ``{key: value}``; ``**`` and non-literal
    values are refused (a key given twice by :func:`check_once`)."""
    if kw.arg is None:
        raise InvalidParameterError(f"Cannot parse {quoted(text)}: '**' is not allowed.")
    try:
        return {kw.arg: ast.literal_eval(kw.value)}
    except ValueError as exc:
        raise InvalidParameterError(
            f"The value of {kw.arg!r} in {quoted(text)} must be a literal (number, string, "
            "True/False/None)."
        ) from exc


def check_once(keywords: list[ast.keyword], text: str) -> None:
    """Refuse a parameter given twice (``phash(hash_size=8, hash_size=16)``): never last-wins."""
    names = [kw.arg for kw in keywords if kw.arg is not None]
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise InvalidParameterError(
            f"Cannot parse {quoted(text)}: {twice!r} is given twice; give each parameter once."
        )


def _odd_character(text: str) -> str:
    """Names the first character outside printable ASCII (a look-alike '‹' or digit '٣'),
    the usual reason a pasted spec does not parse; '' when there is none."""
    i = next((i for i, c in enumerate(text) if not (c.isascii() and c.isprintable())), None)
    if i is None:
        return ""
    return f"character {i + 1} is {text[i]!r} (U+{ord(text[i]):04X}), not plain ASCII; "


__all__ = ["Spec", "check_once", "keyword", "make_spec", "parse_call", "spec_from_dict"]
