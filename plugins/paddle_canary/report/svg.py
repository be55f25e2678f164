"""Tiny inline-SVG charts for the rollout report: lines, step lines, bands, markers, histograms.

No plotting library: the report is one self-contained HTML page, so every chart is an ``<svg>``
string built here. Coordinates are data units; a :class:`Chart` works out its ranges when it
renders. Every text is escaped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from html import escape

STABLE = "#3b6fb6"
CANDIDATE = "#e07b24"
PASS = "#2e9d4e"
FAIL = "#d1342f"
INCONCLUSIVE = "#8a8f98"
THRESHOLD = "#6b3fa0"
GRID = "#e4e6ea"
INK = "#22252a"
MUTED = "#6b7079"
STATUS_COLOURS = {"pass": PASS, "fail": FAIL, "inconclusive": INCONCLUSIVE}

Point = tuple[float, float]
_CLIP_IDS = itertools.count(1)  # clip-path ids, unique within one page


def nice_ticks(lo: float, hi: float, count: int = 5,
               steps: Sequence[float] = (1, 2, 2.5, 5, 10)) -> list[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next((s * magnitude for s in steps if s * magnitude >= raw), 10 * magnitude)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return ticks


def duration_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Ticks on a seconds axis at round durations (10 s, 1 min, 15 min, 1 h, ...)."""
    span = hi - lo
    if span <= 0:
        return [lo]
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
                 21600, 43200, 86400):
        if span / step <= count:
            break
    else:
        step = 86400 * math.ceil(span / count / 86400)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) // step) + 1)]


def fmt_duration(seconds: float) -> str:
    """45s, 2m30s, 1h05m: short labels for elapsed time."""
    s = int(round(seconds))
    sign, s = ("-", -s) if s < 0 else ("", s)
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{sign}{m}m{r:02d}s" if r else f"{sign}{m}m"
    h, r = divmod(s, 3600)
    return f"{sign}{h}h{r // 60:02d}m"


def fmt_number(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000 or a < 0.001:
        return f"{v:.3g}"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


class Chart:
    """One small chart. Add series in data units, then :meth:`render` an ``<svg>`` string."""

    def __init__(self, title: str, *, width: int = 560, height: int = 230, x_label: str = "",
                 y_label: str = "", time_axis: bool = True,
                 y_format: Callable[[float], str] = fmt_number,
                 y_min: float | None = None, y_max: float | None = None,
                 x_range: tuple[float, float] | None = None):
        self.title, self.width, self.height = title, width, height
        self.x_label, self.y_label, self.time_axis = x_label, y_label, time_axis
        self.y_format, self.y_min, self.y_max, self.x_range = y_format, y_min, y_max, x_range
        self._lines: list[dict] = []
        self._bands: list[dict] = []
        self._hlines: list[dict] = []
        self._vspans: list[dict] = []
        self._vlines: list[dict] = []
        self._markers: list[dict] = []
        self._legend: list[tuple[str, str, str]] = []  # (label, colour, kind)

    # ---- adding things -------------------------------------------------------------------

    def line(self, points: Sequence[Point], colour: str, label: str = "", *, step: bool = False,
             dash: str = "", width: float = 2.0, dots: bool = False) -> "Chart":
        pts = [(float(x), float(y)) for x, y in points if _finite(x) and _finite(y)]
        self._lines.append(dict(points=pts, colour=colour, step=step, dash=dash, width=width,
                                dots=dots))
        if label:
            self._legend.append((label, colour, "dash" if dash else "line"))
        return self

    def band(self, xs: Sequence[float], lo: Sequence[float], hi: Sequence[float], colour: str,
             label: str = "") -> "Chart":
        rows = [(float(x), float(a), float(b)) for x, a, b in zip(xs, lo, hi)
                if _finite(x) and _finite(a) and _finite(b)]
        self._bands.append(dict(rows=rows, colour=colour))
        if label and rows:
            self._legend.append((label, colour, "band"))
        return self

    def hline(self, y: float, colour: str = THRESHOLD, label: str = "") -> "Chart":
        if _finite(y):
            self._hlines.append(dict(y=float(y), colour=colour))
            if label:
                self._legend.append((label, colour, "dash"))
        return self

    def vspan(self, x0: float, x1: float, colour: str, label: str = "") -> "Chart":
        if _finite(x0) and _finite(x1):
            self._vspans.append(dict(x0=float(x0), x1=float(x1), colour=colour))
            if label:
                self._legend.append((label, colour, "band"))
        return self

    def vline(self, x: float, text: str = "", colour: str = MUTED) -> "Chart":
        """A dotted vertical guide (e.g. where a step starts) with a small label at the top."""
        if _finite(x):
            self._vlines.append(dict(x=float(x), text=text, colour=colour))
        return self

    def marker(self, x: float, y: float, colour: str, *, shape: str = "circle", title: str = "",
               text: str = "") -> "Chart":
        if _finite(x) and _finite(y):
            self._markers.append(dict(x=float(x), y=float(y), colour=colour, shape=shape,
                                      title=title, text=text))
        return self

    def legend(self, label: str, colour: str, kind: str = "line") -> "Chart":
        """A legend entry without a series (e.g. for a marker shape: kind = the shape)."""
        self._legend.append((label, colour, kind))
        return self

    @property
    def empty(self) -> bool:
        return not any(l["points"] for l in self._lines) and not self._markers and \
            not any(b["rows"] for b in self._bands)

    # ---- drawing -------------------------------------------------------------------------

    def _bounds(self) -> tuple[float, float, float, float]:
        xs, ys = [], []
        for l in self._lines:
            xs += [p[0] for p in l["points"]]
            ys += [p[1] for p in l["points"]]
        for b in self._bands:
            xs += [r[0] for r in b["rows"]]
            ys += [v for r in b["rows"] for v in r[1:]]
        for m in self._markers:
            xs.append(m["x"])
            ys.append(m["y"])
        ys += [h["y"] for h in self._hlines]
        x0, x1 = self.x_range if self.x_range else (min(xs, default=0.0), max(xs, default=1.0))
        y0 = self.y_min if self.y_min is not None else min(ys, default=0.0)
        y1 = self.y_max if self.y_max is not None else max(ys, default=1.0)
        if x1 <= x0:
            x1 = x0 + 1.0
        if y1 <= y0:
            pad = abs(y0) * 0.1 or 1.0
            y0, y1 = (y0 - pad if self.y_min is None else y0), y1 + pad
        elif self.y_min is None or self.y_max is None:
            pad = (y1 - y0) * 0.08
            y0 = y0 - pad if self.y_min is None else y0
            y1 = y1 + pad if self.y_max is None else y1
        return x0, x1, y0, y1

    def render(self, no_data: str = "no data") -> str:
        w, h = self.width, self.height
        legend_rows = [] if self.empty else _legend_rows(self._legend, w - 70)
        top = 30 + 16 * len(legend_rows)
        left, right, bottom = 58, 14, 34 if not self.x_label else 46
        pw, ph = w - left - right, h - top - bottom
        parts = [_svg_open(w, h, self.title), _text(10, 18, self.title, size=13, weight="600")]
        for i, row in enumerate(legend_rows):
            parts.append(_legend_svg(row, left, 34 + 16 * i))
        if self.empty:
            parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#f6f7f9" '
                         f'stroke="{GRID}"/>')
            parts.append(_text(left + pw / 2, top + ph / 2 + 5, no_data, size=14, fill=MUTED,
                               anchor="middle"))
            parts.append("</svg>")
            return "".join(parts)
        x0, x1, y0, y1 = self._bounds()

        def sx(x: float) -> float:
            return left + (x - x0) / (x1 - x0) * pw

        def sy(y: float) -> float:
            return top + ph - (min(max(y, y0), y1) - y0) / (y1 - y0) * ph

        # grid and axes
        for t in nice_ticks(y0, y1, 4):
            parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
                         f'stroke="{GRID}"/>')
            parts.append(_text(left - 6, sy(t) + 4, self.y_format(t), size=10, fill=MUTED,
                               anchor="end"))
        xticks = duration_ticks(x0, x1) if self.time_axis else nice_ticks(x0, x1, 6)
        for t in xticks:
            label = fmt_duration(t) if self.time_axis else fmt_number(t)
            parts.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top + ph}" '
                         f'y2="{top + ph + 4}" stroke="{MUTED}"/>')
            parts.append(_text(sx(t), top + ph + 16, label, size=10, fill=MUTED, anchor="middle"))
        parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
                     f'stroke="#c9ccd2"/>')
        if self.x_label:
            parts.append(_text(left + pw / 2, h - 8, self.x_label, size=11, fill=MUTED,
                               anchor="middle"))
        if self.y_label:
            parts.append(f'<text x="12" y="{top + ph / 2:.1f}" font-size="11" fill="{MUTED}" '
                         f'text-anchor="middle" transform="rotate(-90 12 {top + ph / 2:.1f})">'
                         f'{escape(self.y_label)}</text>')
        # clip everything that follows to the plot area
        clip = f"clip{next(_CLIP_IDS)}"
        parts.append(f'<clipPath id="{clip}"><rect x="{left}" y="{top - 6}" width="{pw}" '
                     f'height="{ph + 12}"/></clipPath><g clip-path="url(#{clip})">')
        for v in self._vlines:
            if x0 <= v["x"] <= x1:
                parts.append(f'<line x1="{sx(v["x"]):.1f}" x2="{sx(v["x"]):.1f}" y1="{top}" '
                             f'y2="{top + ph}" stroke="{v["colour"]}" stroke-opacity="0.5" '
                             f'stroke-dasharray="2 3"/>')
                if v["text"]:
                    parts.append(_text(sx(v["x"]) + 3, top + 10, v["text"], size=9,
                                       fill=v["colour"]))
        for s in self._vspans:
            parts.append(f'<rect x="{sx(s["x0"]):.1f}" y="{top}" '
                         f'width="{max(sx(s["x1"]) - sx(s["x0"]), 1.5):.1f}" height="{ph}" '
                         f'fill="{s["colour"]}" fill-opacity="0.14"/>')
        for b in self._bands:
            if not b["rows"]:
                continue
            upper = " ".join(f"{sx(x):.1f},{sy(hi):.1f}" for x, _, hi in b["rows"])
            lower = " ".join(f"{sx(x):.1f},{sy(lo):.1f}" for x, lo, _ in reversed(b["rows"]))
            parts.append(f'<polygon points="{upper} {lower}" fill="{b["colour"]}" '
                         f'fill-opacity="0.16" stroke="none"/>')
        for hl in self._hlines:
            if y0 <= hl["y"] <= y1:
                parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(hl["y"]):.1f}" '
                             f'y2="{sy(hl["y"]):.1f}" stroke="{hl["colour"]}" stroke-width="1.3" '
                             f'stroke-dasharray="6 4"/>')
        for l in self._lines:
            pts = l["points"]
            if not pts:
                continue
            if l["step"]:
                path = []
                for i, (x, y) in enumerate(pts):
                    if i:
                        path.append((x, pts[i - 1][1]))
                    path.append((x, y))
                pts_draw = path
            else:
                pts_draw = pts
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts_draw)
            dash = f' stroke-dasharray="{l["dash"]}"' if l["dash"] else ""
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{l["colour"]}" '
                         f'stroke-width="{l["width"]}" stroke-linejoin="round"{dash}/>')
            if l["dots"] or len(pts) == 1:
                parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.4" '
                          f'fill="{l["colour"]}"/>' for x, y in pts]
        parts.append("</g>")
        for m in self._markers:
            parts.append(_marker_svg(sx(m["x"]), sy(m["y"]), m,
                                     flip=sx(m["x"]) > left + pw - 6.5 * len(m["text"]) - 10))
        parts.append("</svg>")
        return "".join(parts)


def histogram_chart(title: str, edges: Sequence[float], series: Sequence[tuple[str, str, Sequence[float]]],
                    *, width: int = 560, height: int = 230, x_label: str = "",
                    normalise: bool = True, no_data: str = "no data") -> str:
    """Grouped bars per bucket ``[edges[i], edges[i+1])`` for each (label, colour, counts).

    With ``normalise`` each series is shown as its share of its own total, so versions that
    got very different traffic compare on one axis.
    """
    usable = [(lab, col, [max(float(c), 0.0) for c in counts]) for lab, col, counts in series
              if counts and sum(max(float(c), 0.0) for c in counts) > 0]
    legend = [(f"{lab} (n={_count(sum(c))})", col, "band") for lab, col, c in usable]
    legend_rows = _legend_rows(legend, width - 70)
    top = 30 + 16 * len(legend_rows)
    left, right, bottom = 58, 14, 46 if x_label else 34
    pw, ph = width - left - right, height - top - bottom
    parts = [_svg_open(width, height, title), _text(10, 18, title, size=13, weight="600")]
    for i, row in enumerate(legend_rows):
        parts.append(_legend_svg(row, left, 34 + 16 * i))
    nb = len(edges) - 1
    if not usable or nb < 1:
        parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#f6f7f9" '
                     f'stroke="{GRID}"/>')
        parts.append(_text(left + pw / 2, top + ph / 2 + 5, no_data, size=14, fill=MUTED,
                           anchor="middle"))
        return "".join(parts) + "</svg>"
    values = [[c / sum(counts) if normalise else c for c in counts[:nb]] for _, _, counts in usable]
    ymax = max(max(v, default=0.0) for v in values) or 1.0
    ticks = nice_ticks(0, ymax * 1.08, 4)
    ytop = max(ticks[-1], ymax * 1.08) if ticks else ymax * 1.08
    fmt = (lambda v: f"{v * 100:.0f}%") if normalise else fmt_number
    for t in ticks:
        y = top + ph - t / ytop * ph
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, fmt(t), size=10, fill=MUTED, anchor="end"))
    slot = pw / nb
    bar = slot * 0.84 / len(usable)
    for i in range(nb):
        for j, ((lab, col, _), vals) in enumerate(zip(usable, values)):
            v = vals[i] if i < len(vals) else 0.0
            bh = v / ytop * ph
            x = left + i * slot + slot * 0.08 + j * bar
            parts.append(f'<rect x="{x:.1f}" y="{top + ph - bh:.1f}" width="{bar:.1f}" '
                         f'height="{bh:.1f}" fill="{col}" fill-opacity="0.85">'
                         f'<title>{escape(lab)} [{edges[i]:g}, {edges[i + 1]:g}): '
                         f'{fmt(v)}</title></rect>')
    label_every = max(1, math.ceil(nb / 10))
    for i in range(0, nb + 1, label_every):
        x = left + i * slot
        parts.append(_text(x, top + ph + 16, f"{edges[i]:g}", size=10, fill=MUTED, anchor="middle"))
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#c9ccd2"/>')
    if x_label:
        parts.append(_text(left + pw / 2, height - 8, x_label, size=11, fill=MUTED, anchor="middle"))
    return "".join(parts) + "</svg>"


# ---- helpers ------------------------------------------------------------------------------

def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _count(n: float) -> str:
    return f"{n:,.0f}" if n >= 1 else f"{n:.2g}"


def _svg_open(w: int, h: int, title: str) -> str:
    return (f'<svg width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}" role="img" aria-label="{escape(title)}" '
            f'font-family="system-ui, -apple-system, Segoe UI, sans-serif">'
            f'<rect width="{w}" height="{h}" fill="#fff"/>')


def _text(x: float, y: float, s: str, *, size: int = 11, fill: str = INK, anchor: str = "start",
          weight: str = "400") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" '
            f'text-anchor="{anchor}" font-weight="{weight}">{escape(s)}</text>')


def _legend_rows(entries, max_width: float) -> list[list]:
    rows, row, used = [], [], 0.0
    for e in entries:
        need = 26 + 6.2 * len(e[0])
        if row and used + need > max_width:
            rows.append(row)
            row, used = [], 0.0
        row.append((e, used))
        used += need
    if row:
        rows.append(row)
    return rows


def _legend_svg(row, x: float, y: float) -> str:
    out = []
    for (label, colour, kind), dx in row:
        cx = x + dx
        if kind == "band":
            out.append(f'<rect x="{cx:.1f}" y="{y - 8}" width="16" height="9" fill="{colour}" '
                       f'fill-opacity="0.5"/>')
        elif kind in ("line", "dash"):
            dash = ' stroke-dasharray="4 3"' if kind == "dash" else ""
            out.append(f'<line x1="{cx:.1f}" x2="{cx + 16:.1f}" y1="{y - 4}" y2="{y - 4}" '
                       f'stroke="{colour}" stroke-width="2"{dash}/>')
        else:
            out.append(_marker_svg(cx + 8, y - 4, dict(shape=kind, colour=colour, title="",
                                                         text="")))
        out.append(_text(cx + 20, y, label, size=10, fill=INK))
    return "".join(out)


def _marker_svg(x: float, y: float, m: dict, flip: bool = False) -> str:
    c, shape = m["colour"], m["shape"]
    if shape == "triangle":
        body = (f'<polygon points="{x:.1f},{y - 6:.1f} {x - 5.5:.1f},{y + 4:.1f} '
                f'{x + 5.5:.1f},{y + 4:.1f}" fill="{c}" stroke="#fff" stroke-width="1"/>')
    elif shape == "cross":
        body = (f'<path d="M{x - 5:.1f},{y - 5:.1f}L{x + 5:.1f},{y + 5:.1f}M{x - 5:.1f},'
                f'{y + 5:.1f}L{x + 5:.1f},{y - 5:.1f}" stroke="{c}" stroke-width="2.6"/>')
    elif shape == "diamond":
        body = (f'<polygon points="{x:.1f},{y - 6:.1f} {x + 6:.1f},{y:.1f} {x:.1f},{y + 6:.1f} '
                f'{x - 6:.1f},{y:.1f}" fill="{c}" stroke="#fff" stroke-width="1"/>')
    elif shape == "ring":
        body = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="#fff" stroke="{c}" stroke-width="2"/>'
    else:
        body = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{c}" stroke="#fff" stroke-width="1"/>'
    title = f"<title>{escape(m['title'])}</title>" if m.get("title") else ""
    text = (_text(x - 7 if flip else x + 7, y - 7, m["text"], size=10, fill=c,
                  anchor="end" if flip else "start") if m.get("text") else "")
    return f"<g>{title}{body}{text}</g>"
