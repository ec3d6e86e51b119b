"""Parameter checks with one message template.

Every check raises :class:`~harness.errors.InvalidParameterError` with the message
``The 'quality' parameter of jpeg must be an int in [1, 100]. Got 0 instead.`` so that users see the
same shape of error whichever transform, algorithm or suite field they got wrong.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from numbers import Integral, Real
from typing import Any

from harness.errors import InvalidParameterError


def _fail(name: str, owner: str, expected: str, value: Any) -> InvalidParameterError:
    return InvalidParameterError(
        f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead."
    )


def _interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"{left}{lo_s}, {hi_s}{right}"


def check_int(
    name: str,
    value: Any,
    *,
    owner: str,
    min_value: int | None = None,
    max_value: int | None = None,
) -> int:
    """Return ``value`` if it is an int (not a bool) within ``[min_value, max_value]``."""
    expected = "an int" + (
        f" in {_interval(min_value, max_value, False, False)}"
        if min_value is not None or max_value is not None
        else ""
    )
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _fail(name, owner, expected, value)
    v = int(value)
    if (min_value is not None and v < min_value) or (max_value is not None and v > max_value):
        raise _fail(name, owner, expected, value)
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
    expected = "a finite number" + (
        f" in {_interval(min_value, max_value, min_open, max_open)}"
        if min_value is not None or max_value is not None
        else ""
    )
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise _fail(name, owner, expected, value)
    v = float(value)
    if min_value is not None and (v < min_value or (min_open and v == min_value)):
        raise _fail(name, owner, expected, value)
    if max_value is not None and (v > max_value or (max_open and v == max_value)):
        raise _fail(name, owner, expected, value)
    return v


def check_choice(name: str, value: Any, *, owner: str, choices: Collection[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in sorted(choices, key=str))
        raise _fail(name, owner, f"one of {{{listed}}}", value)
    return value
