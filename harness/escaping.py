"""Text from users (suite names, file names, error messages) made safe for each medium.

Every string that reaches a terminal, XML, Markdown or HTML goes through :func:`visible` first:
control characters (which XML 1.0 forbids and terminals obey), lone surrogates (the bytes of a
file name that is not UTF-8) and non-characters become visible ``\\xNN`` / ``\\uNNNN`` escapes, so
nothing is dropped silently and nothing can rewrite a terminal line or break a document. The
medium's own escaping is applied on top (:func:`xml_text`, :func:`xml_attr`, :func:`html_text`;
Markdown in :mod:`harness.report.markdown`).
"""

from __future__ import annotations

import html
import re
from typing import Any
from xml.sax.saxutils import escape, quoteattr

# C0 controls, DEL, C1 controls, surrogates and the two non-characters XML forbids.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_INVISIBLE_KEEP_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _escape_one(m: re.Match[str]) -> str:
    code = ord(m[0])
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: Any, *, keep_newlines: bool = False) -> str:
    """``text`` with every invisible or unencodable character replaced by a visible escape."""
    pattern = _INVISIBLE_KEEP_LINES if keep_newlines else _INVISIBLE
    return pattern.sub(_escape_one, str(text))


def xml_text(text: Any) -> str:
    """Character data for an XML 1.0 document."""
    return escape(visible(text))


def xml_attr(text: Any) -> str:
    """A quoted XML 1.0 attribute value."""
    return quoteattr(visible(text))


def html_text(text: Any) -> str:
    """Text (or a quoted attribute value) for an HTML document."""
    return html.escape(visible(text))
