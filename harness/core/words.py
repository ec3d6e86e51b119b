"""Counted nouns in messages: "1 algorithm", "2 algorithms"."""

from __future__ import annotations


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and ``noun``, or ``nouns`` (default ``noun + "s"``) unless ``n`` is 1.

    >>> plural(1, "algorithm"), plural(2, "failure record"), plural(0, "family", "families")
    ('1 algorithm', '2 failure records', '0 families')
    """
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def quoted(text: str, room: int = 60) -> str:
    """``text`` quoted for a one-line message, shortened in the middle when long.

    >>> quoted("pdq & phash"), quoted("x" * 100, room=8)
    ("'pdq & phash'", "'xxxx ... xx'")
    """
    return repr(text if len(text) <= room else f"{text[: room // 2]} ... {text[-room // 4 :]}")


__all__ = ["plural", "quoted"]
