"""Parameters declared once, as data on each dataclass field, and checked with one message.

A transform or adapter declares each parameter with :func:`param`::

    quality: int = param(int, 75, min=1, max=100, doc="JPEG quality")

The declaration (type, range or choices, default, whether ``None`` is allowed) is what
:class:`~harness.core.spec.Spec` validates on construction, what the catalogue and the README table
print (:meth:`Param.domain`), and what the property tests draw from
(:func:`harness.core.strategies.spec_strategy`), so the four can never disagree.

Every check raises :class:`~harness.core.errors.InvalidParameterError` with the message
``The 'quality' parameter of jpeg must be an int in [1, 100]. Got 0 instead.`` so that users see the
same shape of error whichever transform, algorithm or suite field they got wrong. The ``check_*``
functions are the same checks for values that are not dataclass fields (suite keys, API arguments).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection
from numbers import Integral, Real
from typing import Any

from harness.core.errors import InvalidParameterError

#: Key of a field's ``metadata`` that holds its :class:`Param`.
METADATA_KEY = "hash_harness.param"
#: Longest identifier parameter (a label names columns and rows of every report).
MAX_IDENTIFIER = 32


def shown(value: Any) -> str:
    """``repr(value)`` for a one-line message, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _fail(name: str, owner: str, expected: str, value: Any) -> InvalidParameterError:
    return InvalidParameterError(
        f"The {name!r} parameter of {owner} must be {expected}. Got {shown(value)} instead."
    )


def _interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"{left}{lo_s}, {hi_s}{right}"


def _int_expected(min_value: int | None, max_value: int | None) -> str:
    bounded = min_value is not None or max_value is not None
    return "an int" + (f" in {_interval(min_value, max_value, False, False)}" if bounded else "")


def _real_expected(
    min_value: float | None, max_value: float | None, min_open: bool, max_open: bool
) -> str:
    bounded = min_value is not None or max_value is not None
    interval = _interval(min_value, max_value, min_open, max_open)
    return "a finite number" + (f" in {interval}" if bounded else "")


def _choice_expected(choices: Collection[Any]) -> str:
    listed = ", ".join(repr(c) for c in sorted(choices, key=str))
    return f"one of {{{listed}}}"


def check_int(
    name: str,
    value: Any,
    *,
    owner: str,
    min_value: int | None = None,
    max_value: int | None = None,
) -> int:
    """Return ``value`` if it is an int (not a bool) within ``[min_value, max_value]``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _fail(name, owner, _int_expected(min_value, max_value), value)
    v = int(value)
    if (min_value is not None and v < min_value) or (max_value is not None and v > max_value):
        raise _fail(name, owner, _int_expected(min_value, max_value), value)
    return v


def check_real(
    name: str,
    value: Any,
    *,
    owner: str,
    min_value: float | None = None,
    max_value: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite real number within the given interval."""

    def fail() -> InvalidParameterError:
        return _fail(name, owner, _real_expected(min_value, max_value, min_open, max_open), value)

    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise fail()
    v = float(value)
    if min_value is not None and (v < min_value or (min_open and v == min_value)):
        raise fail()
    if max_value is not None and (v > max_value or (max_open and v == max_value)):
        raise fail()
    return v


def check_choice(name: str, value: Any, *, owner: str, choices: Collection[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``."""
    try:
        known = value in choices
    except TypeError:  # an unhashable value (a list) looked up in a mapping is not a choice
        known = False
    if not known:
        raise _fail(name, owner, _choice_expected(choices), value)
    return value


@dataclasses.dataclass(frozen=True)
class Intensity:
    """How a parameter's value maps to a severity in [0, 1]: ``|value - origin| / full`` (or
    ``|log2(value)| / full``), capped at 1; ``None`` (a parameter not given) maps to 0.

    ``Intensity(99, origin=100)`` on a JPEG quality is ``(100 - quality) / 99``;
    ``Intensity(3, log2=True)`` on a resize factor reaches 1 at an eighth or eight times.
    """

    full: float
    origin: float = 0
    log2: bool = False

    def __call__(self, value: Any) -> float:
        if value is None:
            return 0.0
        distance = abs(math.log2(value)) if self.log2 else abs(value - self.origin)
        return min(1.0, distance / self.full)

    def describe(self, name: str, declared: Param | None = None) -> str:
        """The mapping as a formula, e.g. ``(100 - quality) / 99`` or ``|degrees| / 45``."""
        lo, hi = (None, None) if declared is None else declared.bounds()
        if self.log2:
            term = f"|log2({name})|"
        elif self.origin == 0 and lo is not None and lo >= 0:
            term = name
        elif self.origin == 0:
            term = f"|{name}|"
        elif hi is not None and hi <= self.origin:
            term = f"{self.origin:g} - {name}"
        elif lo is not None and lo >= self.origin:
            term = f"{name} - {self.origin:g}"
        else:
            term = f"|{name} - {self.origin:g}|"
        if self.full == 1:
            return term
        term = f"({term})" if " - " in term and not term.startswith("|") else term
        return f"{term} / {self.full:g}"


@dataclasses.dataclass(frozen=True)
class Param:
    """What one parameter accepts.

    Attributes
    ----------
    kind : {int, float, str, bool, object}
        ``float`` accepts any finite real and stores it as a float (so ``crop(keep_area=1)`` is
        ``crop(keep_area=1.0)``); ``object`` is checked only against ``choices``, if any, or by
        the owner's own ``validate``.
    min, max, min_open, max_open
        The interval of ``int`` and ``float`` parameters (``None`` = unbounded on that side).
    choices : collection or None
        The allowed values. A live mapping may be given (its keys), e.g. the resampling filters
        this Pillow provides.
    max_length : int or None
        For ``str`` parameters: a single line of 1 to ``max_length`` characters.
    identifier : bool
        For ``str`` parameters: a Python identifier (labels that become part of metric names).
    intensity : Intensity or None
        How this parameter sets the owner's intensity (a transform's is the largest over its
        parameters'), or None when it does not.
    optional : bool
        ``None`` is allowed (and means "not given"; it is left out of ids and parameter dicts).
    doc : str
        One line for the catalogue.
    """

    kind: type
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: Collection[Any] | None = None
    max_length: int | None = None
    identifier: bool = False
    intensity: Intensity | None = None
    optional: bool = False
    doc: str = ""

    def bounds(self) -> tuple[float | None, float | None]:
        """Least and largest allowed value (from the range, or numeric choices)."""
        if self.choices is not None:
            numbers = [c for c in self.choices if isinstance(c, (int, float))]
            return (min(numbers), max(numbers)) if numbers else (None, None)
        return self.min, self.max

    def expected(self) -> str:
        """What a valid value is, as error messages word it (``an int in [1, 100]``)."""
        if self.choices is not None:
            return _choice_expected(self.choices)
        if self.kind is int:
            return _int_expected(
                None if self.min is None else int(self.min),
                None if self.max is None else int(self.max),
            )
        if self.kind is float:
            return _real_expected(self.min, self.max, self.min_open, self.max_open)
        if self.max_length is not None:
            return f"a single line of 1 to {self.max_length} characters"
        if self.identifier:
            return f"an identifier of at most {MAX_IDENTIFIER} characters"
        return f"a {self.kind.__name__}" if self.kind is not object else "any value"

    def domain(self) -> str:
        """The allowed values for tables: :meth:`expected`, plus ``None`` when optional."""
        return self.expected() + (", or None" if self.optional else "")

    def accepts(self, value: Any) -> bool:
        """Whether :meth:`check` passes ``value``."""
        try:
            self.check("value", value, "it")
        except InvalidParameterError:
            return False
        return True

    def check(self, name: str, value: Any, owner: str) -> Any:
        """Return ``value`` (as the declared type) or raise the one-line error."""
        if value is None and self.optional:
            return None
        if self.choices is not None:
            return check_choice(name, value, owner=owner, choices=self.choices)
        if self.kind is int:
            lo = None if self.min is None else int(self.min)
            hi = None if self.max is None else int(self.max)
            return check_int(name, value, owner=owner, min_value=lo, max_value=hi)
        if self.kind is float:
            return check_real(
                name,
                value,
                owner=owner,
                min_value=self.min,
                max_value=self.max,
                min_open=self.min_open,
                max_open=self.max_open,
            )
        if self.max_length is not None and not (
            isinstance(value, str) and 0 < len(value) <= self.max_length and "\n" not in value
        ):
            raise _fail(name, owner, self.expected(), value)
        if self.identifier and not is_identifier(value):
            raise _fail(name, owner, self.expected(), value)
        if self.kind is not object and not isinstance(value, self.kind):
            raise _fail(name, owner, self.expected(), value)
        return value


def is_identifier(value: Any) -> bool:
    """A Python identifier of at most :data:`MAX_IDENTIFIER` characters."""
    return isinstance(value, str) and value.isidentifier() and len(value) <= MAX_IDENTIFIER


def param(
    kind: type,
    default: Any = dataclasses.MISSING,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    choices: Collection[Any] | None = None,
    max_length: int | None = None,
    identifier: bool = False,
    intensity: Intensity | None = None,
    optional: bool = False,
    doc: str = "",
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field carrying its :class:`Param` declaration.

    ``bool`` parameters accept exactly ``False`` and ``True``. ``default=None`` makes the
    parameter optional. Returns :func:`dataclasses.field` (typed ``Any`` so that it can be the
    default of a field of any annotated type, as with ``field()`` itself).
    """
    if kind is bool and choices is None:
        choices = (False, True)
    declared = Param(
        kind=kind,
        min=min,
        max=max,
        min_open=min_open,
        max_open=max_open,
        choices=choices,
        max_length=max_length,
        identifier=identifier,
        intensity=intensity,
        optional=optional or default is None,
        doc=doc,
    )
    metadata = {METADATA_KEY: declared}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declared(field: dataclasses.Field[Any]) -> Param | None:
    """The :class:`Param` declared on ``field``, or None for an undeclared field."""
    return field.metadata.get(METADATA_KEY)


def declared_params(cls: Any) -> dict[str, Param]:
    """Every declared parameter of the dataclass ``cls`` (or instance), in field order."""
    out = {}
    for f in dataclasses.fields(cls):
        p = declared(f)
        if p is not None:
            out[f.name] = p
    return out


def describe(cls: Any) -> list[str]:
    """One line per declared parameter: ``name=default: domain (doc)``, for listings."""
    lines = []
    for f in dataclasses.fields(cls):
        p = declared(f)
        if p is not None:
            doc = f" ({p.doc})" if p.doc else ""
            lines.append(f"{f.name}={f.default!r}: {p.domain()}{doc}")
    return lines


__all__ = [
    "METADATA_KEY",
    "Intensity",
    "Param",
    "check_choice",
    "check_int",
    "check_real",
    "declared",
    "declared_params",
    "describe",
    "param",
]
