"""A small SVG plotting kit for the HTML report: axes (linear or log), lines, steps, error bars,
markers, filled stairs, reference lines and a legend, as deterministic text.

The report's plots are a few hundred points each; drawing them as SVG here takes milliseconds,
where matplotlib took about a second to import and a second per figure to lay out and save
(measured in ``benchmarks/perf/bench_report.py``). Every string drawn goes through
:func:`xml.sax.saxutils.escape`, so labels from users cannot inject markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

#: tab10, the colours matplotlib users know, then the same darker for runs with more algorithms.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
MARKERS = ("circle", "square", "diamond", "triangle", "down", "plus", "cross", "star")


def _n(v: float) -> str:
    """A coordinate: one decimal, no trailing zeros (short, deterministic)."""
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{v:g}"


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


@dataclass
class Plot:
    """One chart: data coordinates mapped into a ``width`` x ``height`` SVG."""

    title: str
    xlabel: str
    ylabel: str
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    xlog: bool = False
    ylog: bool = False
    width: int = 440
    height: int = 300
    title_colour: str = "#222"
    _body: list[str] = field(default_factory=list)
    _legend: list[tuple[str, str, str, str]] = field(default_factory=list)

    # plot area
    left, right, top, bottom = 58, 12, 26, 44

    def _t(self, v: float, lo: float, hi: float, log: bool) -> float:
        if log:
            v, lo, hi = math.log10(max(v, 1e-300)), math.log10(lo), math.log10(hi)
        return (v - lo) / (hi - lo) if hi != lo else 0.5

    def x(self, v: float) -> float:
        span = self.width - self.left - self.right
        return self.left + span * self._t(v, *self.xlim, self.xlog)

    def y(self, v: float) -> float:
        span = self.height - self.top - self.bottom
        return self.height - self.bottom - span * self._t(v, *self.ylim, self.ylog)

    def _clip(self, v: float, lim: tuple[float, float]) -> float:
        return min(max(v, lim[0]), lim[1])

    def _points(self, xs: Sequence[float], ys: Sequence[float]) -> str:
        return " ".join(
            f"{_n(self.x(self._clip(a, self.xlim)))},{_n(self.y(self._clip(b, self.ylim)))}"
            for a, b in zip(xs, ys, strict=True)
        )

    # -- drawing ---------------------------------------------------------------------------

    def line(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        colour: str,
        label: str = "",
        marker: str = "",
        dash: str = "",
        width: float = 1.4,
    ) -> None:
        """A polyline through the points, with a marker at each point when ``marker``."""
        style = f' stroke-dasharray="{dash}"' if dash else ""
        self._body.append(
            f'<polyline points="{self._points(xs, ys)}" fill="none" stroke="{colour}" '
            f'stroke-width="{width}"{style}/>'
        )
        if marker:
            for a, b in zip(xs, ys, strict=True):
                self._body.append(self._marker(self.x(a), self.y(b), marker, colour))
        if label:
            self._legend.append((label, colour, marker, dash))

    def steps(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        colour: str,
        label: str = "",
        marker: str = "",
        every: int = 0,
    ) -> None:
        """A staircase: each value holds until the next x (``where='post'``)."""
        sx: list[float] = []
        sy: list[float] = []
        for i, (a, b) in enumerate(zip(xs, ys, strict=True)):
            if i:
                sx.append(a)
                sy.append(sy[-1])
            sx.append(a)
            sy.append(b)
        self.line(sx, sy, colour, label=label)
        if marker:
            stride = every or max(1, len(xs) // 6)
            for a, b in list(zip(xs, ys, strict=True))[::stride]:
                self._body.append(
                    self._marker(
                        self.x(self._clip(a, self.xlim)),
                        self.y(self._clip(b, self.ylim)),
                        marker,
                        colour,
                    )
                )
            self._legend[-1] = (label, colour, marker, "")

    def errorbars(
        self, xs: Sequence[float], lo: Sequence[float], hi: Sequence[float], colour: str
    ) -> None:
        """Vertical interval bars with caps."""
        for a, b, c in zip(xs, lo, hi, strict=True):
            px, y0, y1 = self.x(a), self.y(b), self.y(c)
            self._body.append(
                f'<path d="M{_n(px)},{_n(y0)}V{_n(y1)}M{_n(px - 2.5)},{_n(y0)}h5M{_n(px - 2.5)},'
                f'{_n(y1)}h5" stroke="{colour}" stroke-width="1" fill="none"/>'
            )

    def stairs(
        self,
        values: Sequence[float],
        colour: str,
        label: str = "",
        fill: bool = False,
        opacity: float = 1.0,
    ) -> None:
        """A histogram with one bin per integer (bin i spans i - 0.5 .. i + 0.5)."""
        d = [f"M{_n(self.x(-0.5))},{_n(self.y(0))}"]
        for i, v in enumerate(values):
            top = self.y(self._clip(v, self.ylim))
            d.append(f"V{_n(top)}H{_n(self.x(i + 0.5))}")
        d.append(f"V{_n(self.y(0))}")
        paint = (
            f'fill="{colour}" fill-opacity="{opacity}" stroke="none"'
            if fill
            else f'fill="none" stroke="{colour}" stroke-width="1.3"'
        )
        self._body.append(f'<path d="{"".join(d)}" {paint}/>')
        if label:
            self._legend.append((label, colour, "box" if fill else "", ""))

    def band(
        self,
        xs: Sequence[float],
        lo: Sequence[float],
        hi: Sequence[float],
        colour: str,
        opacity: float = 0.2,
        label: str = "",
    ) -> None:
        """A filled interval between ``lo`` and ``hi`` along ``xs`` (e.g. a 95% band)."""
        if not xs:
            return
        self._body.append(
            f'<polygon points="{self._points([*xs, *xs[::-1]], [*hi, *lo[::-1]])}" '
            f'fill="{colour}" fill-opacity="{opacity}" stroke="none"/>'
        )
        if label:
            self._legend.append((label, colour, "box", ""))

    def vline(self, x: float, colour: str = "#000", dash: str = "4 3", label: str = "") -> None:
        px = _n(self.x(x))
        self._body.append(
            f'<path d="M{px},{_n(self.y(self.ylim[0]))}V{_n(self.y(self.ylim[1]))}" '
            f'stroke="{colour}" stroke-width="1" stroke-dasharray="{dash}"/>'
        )
        if label:
            self._legend.append((label, colour, "", dash))

    # -- output ------------------------------------------------------------------------------

    def _marker(self, px: float, py: float, kind: str, colour: str) -> str:
        r = 3.2
        x, y = _n(px), _n(py)
        if kind == "circle":
            return f'<circle cx="{x}" cy="{y}" r="{r}" fill="{colour}"/>'
        if kind == "square":
            return f'<rect x="{_n(px - r)}" y="{_n(py - r)}" width="{2 * r}" height="{2 * r}" fill="{colour}"/>'
        shapes = {
            "diamond": [(0, -1.3), (1.3, 0), (0, 1.3), (-1.3, 0)],
            "triangle": [(0, -1.3), (1.2, 1), (-1.2, 1)],
            "down": [(0, 1.3), (1.2, -1), (-1.2, -1)],
            "star": [(0, -1.4), (0.4, -0.4), (1.4, -0.4), (0.6, 0.2), (0.9, 1.2), (0, 0.6),
                     (-0.9, 1.2), (-0.6, 0.2), (-1.4, -0.4), (-0.4, -0.4)],
        }  # fmt: skip
        if kind in shapes:
            pts = " ".join(f"{_n(px + dx * r)},{_n(py + dy * r)}" for dx, dy in shapes[kind])
            return f'<polygon points="{pts}" fill="{colour}"/>'
        if kind == "box":
            return f'<rect x="{_n(px - 5)}" y="{_n(py - 4)}" width="10" height="8" fill="{colour}" fill-opacity="0.6"/>'
        arms = "M-1,-1L1,1M-1,1L1,-1" if kind == "cross" else "M-1.2,0H1.2M0,-1.2V1.2"
        return (
            f'<path transform="translate({x},{y}) scale({r})" d="{arms}" stroke="{colour}" '
            'stroke-width="0.6" fill="none"/>'
        )

    def _axes(self) -> list[str]:
        out = []
        x0, x1 = self.x(self.xlim[0]), self.x(self.xlim[1])
        y0, y1 = self.y(self.ylim[0]), self.y(self.ylim[1])
        out.append(
            f'<rect x="{_n(x0)}" y="{_n(y1)}" width="{_n(x1 - x0)}" height="{_n(y0 - y1)}" '
            'fill="#fff" stroke="#444" stroke-width="0.8"/>'
        )
        for v in self._ticks(self.xlim, self.xlog):
            px = _n(self.x(v))
            out.append(f'<path d="M{px},{_n(y1)}V{_n(y0)}" stroke="#000" stroke-opacity="0.08"/>')
            out.append(f'<path d="M{px},{_n(y0)}v4" stroke="#444"/>')
            out.append(
                f'<text x="{px}" y="{_n(y0 + 15)}" text-anchor="middle">{escape(_fmt_tick(v))}</text>'
            )
        for v in self._ticks(self.ylim, self.ylog):
            py = _n(self.y(v))
            out.append(f'<path d="M{_n(x0)},{py}H{_n(x1)}" stroke="#000" stroke-opacity="0.08"/>')
            out.append(f'<path d="M{_n(x0)},{py}h-4" stroke="#444"/>')
            out.append(
                f'<text x="{_n(x0 - 6)}" y="{_n(self.y(v) + 3.5)}" text-anchor="end">'
                f"{escape(_fmt_tick(v))}</text>"
            )
        out.append(
            f'<text x="{_n((x0 + x1) / 2)}" y="{self.height - 8}" text-anchor="middle">'
            f"{escape(self.xlabel)}</text>"
        )
        out.append(
            f'<text transform="translate(13,{_n((y0 + y1) / 2)}) rotate(-90)" '
            f'text-anchor="middle">{escape(self.ylabel)}</text>'
        )
        out.append(
            f'<text x="{_n((x0 + x1) / 2)}" y="16" text-anchor="middle" font-size="12" '
            f"fill={quoteattr(self.title_colour)}>{escape(self.title)}</text>"
        )
        return out

    def _ticks(self, lim: tuple[float, float], log: bool) -> list[float]:
        lo, hi = lim
        if not log:
            return [t for t in nice_ticks(lo, hi) if lo - 1e-9 <= t <= hi + 1e-9]
        return [10.0**k for k in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1)]

    def _legend_box(self, where: str) -> list[str]:
        if not self._legend:
            return []
        row = 12
        chars = max(len(label) for label, *_ in self._legend)
        w = min(self.width - self.left - self.right - 8, 30 + chars * 5.4)
        h = row * len(self._legend) + 6
        x0, x1 = self.x(self.xlim[0]), self.x(self.xlim[1])
        y0, y1 = self.y(self.ylim[0]), self.y(self.ylim[1])
        bx = x1 - w - 4 if "right" in where else x0 + 4
        by = y1 + 4 if "upper" in where else y0 - h - 4
        out = [
            f'<rect x="{_n(bx)}" y="{_n(by)}" width="{_n(w)}" height="{h}" fill="#fff" '
            'fill-opacity="0.85" stroke="#bbb" stroke-width="0.6"/>'
        ]
        for i, (label, colour, marker, dash) in enumerate(self._legend):
            cy = by + 9 + i * row
            style = f' stroke-dasharray="{dash}"' if dash else ""
            if marker != "box":
                out.append(
                    f'<path d="M{_n(bx + 5)},{_n(cy)}h18" stroke="{colour}" stroke-width="1.4"{style}/>'
                )
            if marker:
                out.append(self._marker(bx + 14, cy, marker, colour))
            out.append(
                f'<text x="{_n(bx + 27)}" y="{_n(cy + 3)}" font-size="9">{escape(label)}</text>'
            )
        return out

    def render(self, legend: str = "upper right") -> str:
        """The SVG element (inline in HTML), scaled by CSS through its viewBox."""
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" '
            f'width="{self.width}" height="{self.height}" role="img" '
            f'aria-label={quoteattr(self.title)} font-family="system-ui, sans-serif" '
            'font-size="10">',
            *self._axes(),
            *self._body,
            *self._legend_box(legend),
            "</svg>",
        ]
        return "\n".join(parts)
