"""Counted nouns in messages: "1 algorithm", "2 algorithms"."""

from __future__ import annotations


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and ``noun``, or ``nouns`` (default ``noun + "s"``) unless ``n`` is 1.

    >>> plural(1, "algorithm"), plural(2, "failure record"), plural(0, "family", "families")
    ('1 algorithm', '2 failure records', '0 families')
    """
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


__all__ = ["plural"]
