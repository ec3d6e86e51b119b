"""Human-readable reports rendered from a results document (never recomputed here)."""

from harness.report.markdown import render_markdown

__all__ = ["render_markdown"]
