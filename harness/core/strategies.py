"""Hypothesis strategies generated from parameter declarations, for property tests.

:func:`valid` draws values a :class:`~harness.core.params.Param` accepts and :func:`invalid`
values it refuses; :func:`spec_strategy` draws whole specs (dicts of parameters a registered class
accepts, checks across parameters included). Hypothesis is a test dependency, so it is imported
when a strategy is made, never when this module is.
"""

from __future__ import annotations

import dataclasses
import math
import string
from typing import Any

from harness.core.errors import InvalidParameterError
from harness.core.params import Param, declared_params

#: Text parameters are drawn from printable characters on one line.
_LINE = string.ascii_letters + string.digits + string.punctuation + " "


def valid(p: Param) -> Any:
    """A strategy for values ``p`` accepts (``None`` included when it is optional)."""
    from hypothesis import strategies as st

    if p.choices is not None:
        base = st.sampled_from(sorted(p.choices, key=str))
    elif p.kind is int:
        lo = None if p.min is None else int(p.min)
        hi = None if p.max is None else int(p.max)
        base = st.integers(min_value=lo, max_value=hi)
    elif p.kind is float:
        base = st.floats(
            min_value=p.min,
            max_value=p.max,
            exclude_min=p.min_open and p.min is not None,
            exclude_max=p.max_open and p.max is not None,
            allow_nan=False,
            allow_infinity=False,
        )
    elif p.max_length is not None:
        base = st.text(alphabet=_LINE, min_size=1, max_size=p.max_length)
    elif p.identifier:
        base = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
    else:
        base = st.from_type(p.kind)
    return st.one_of(st.none(), base) if p.optional else base


def invalid(p: Param) -> Any:
    """A strategy for values ``p`` refuses: outside the range, not a choice, the wrong type."""
    from hypothesis import strategies as st

    wrong: list[Any] = [st.just(float("nan")), st.lists(st.integers(), max_size=2)]
    if not p.optional:
        wrong.append(st.none())
    if p.choices is not None:
        others = st.one_of(st.text(alphabet=_LINE, max_size=5), st.integers(-9, 9))
        wrong.append(others.filter(lambda v: not p.accepts(v)))
    elif p.kind in (int, float):
        # Just past a closed bound (nextafter, so that -0.0 is not drawn for a bound of 0).
        if p.min is not None:
            below = p.min if p.min_open else math.nextafter(p.min, -math.inf)
            wrong.append(st.floats(max_value=below, allow_nan=False))
        if p.max is not None:
            above = p.max if p.max_open else math.nextafter(p.max, math.inf)
            wrong.append(st.floats(min_value=above, allow_nan=False))
        if p.kind is int:
            wrong.append(st.floats())  # an int parameter takes no float, not even 5.0
        wrong.append(st.text(max_size=3))
    elif p.max_length is not None:
        too_long = st.text(alphabet=_LINE, min_size=p.max_length + 1, max_size=p.max_length + 1)
        wrong += [st.just(""), st.just("two\nlines"), too_long]
    elif p.identifier:
        wrong += [st.just(""), st.just("two words"), st.just("1st"), st.just("a" * 33)]
    return st.one_of(wrong)


def spec_strategy(cls: type) -> Any:
    """A strategy for parameter dicts that construct ``cls`` (declared parameters only).

    Draws that a check across parameters refuses (``resize`` needs exactly one of ``scale`` and
    ``long_side``) are rejected, so the strategy covers every valid combination.
    """
    from hypothesis import strategies as st

    def constructs(params: dict[str, Any]) -> bool:
        try:
            cls(**params)
        except InvalidParameterError:
            return False
        return True

    fields = {f.name for f in dataclasses.fields(cls)}
    declared = {name: valid(p) for name, p in declared_params(cls).items() if name in fields}
    return st.fixed_dictionaries({}, optional=declared).filter(constructs)


__all__ = ["invalid", "spec_strategy", "valid"]
