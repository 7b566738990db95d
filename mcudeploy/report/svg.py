"""Small inline SVG charts for report.html: grouped bar charts and heatmaps, as plain markup.

Written here rather than taken from a plotting library: the report needs two chart kinds, and
inline SVG keeps report.html one self-contained file with no script and no new dependency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#0969da", "#bf8700", "#8250df", "#1a7f37", "#cf222e")
HIGHLIGHT = "#cf222e"
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_MAX_LABELS = 40


def bar_chart(labels: Sequence[str], series: dict[str, Sequence[float]], *, y_label: str,
              highlight: int | None = None, width: int = 760, height: int = 260) -> Markup:
    """Bars for each label, one per series (grouped), on a y axis from 0. `highlight`: the index
    of a label whose bars are drawn in red."""
    left, right, top, bottom = 72, 80, 24 if len(series) > 1 else 10, 96
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max((v for values in series.values() for v in values), default=0)
    ticks = _ticks(top_value)
    scale = plot_h / ticks[-1]
    slot = plot_w / max(1, len(labels))
    bar = max(1.0, slot * 0.8 / max(1, len(series)))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(y_label)}">']
    for t in ticks:
        y = top + plot_h - t * scale
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
                     'stroke="#d0d7de" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{_num(t)}</text>')
    for s, (name, values) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        for i, value in enumerate(values):
            x = left + i * slot + slot * 0.1 + s * bar
            h = value * scale
            fill = HIGHLIGHT if i == highlight else colour
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" fill="{fill}"><title>{escape(labels[i])}: '
                         f'{escape(name)} {_num(value)}</title></rect>')
    every = max(1, math.ceil(len(labels) / _MAX_LABELS))
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = left + (i + 0.5) * slot
        y = top + plot_h + 10
        parts.append(f'<text x="{x:.1f}" y="{y}" transform="rotate(40 {x:.1f} {y})" {_FONT}>'
                     f'{escape(_short(label))}</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.1f}" transform="rotate(-90 12 '
                 f'{top + plot_h / 2:.1f})" text-anchor="middle" {_FONT}>{escape(y_label)}</text>')
    if len(series) > 1:
        x = left
        for s, name in enumerate(series):
            parts.append(f'<rect x="{x}" y="6" width="10" height="10" '
                         f'fill="{PALETTE[s % len(PALETTE)]}"/>')
            parts.append(f'<text x="{x + 14}" y="15" {_FONT}>{escape(name)}</text>')
            x += 24 + 7 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))


def heatmap(grid: Sequence[Sequence[float | None]], row_labels: Sequence[str],
            col_labels: Sequence[str], *, cell: int = 18) -> Markup:
    """A grid of cells from white (0) to red (the largest value); None cells are grey (no such
    element). Values are written in the cells."""
    left, top = 8 + 7 * max((len(_short(r)) for r in row_labels), default=1), 34
    cols = max((len(r) for r in grid), default=0)
    width, height = max(320, left + cols * cell + 10), top + len(grid) * cell + 24
    peak = max((v for row in grid for v in row if v is not None), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="heatmap">']
    every = max(1, math.ceil(cols / _MAX_LABELS))
    for c, label in enumerate(col_labels):
        if c % every == 0:
            parts.append(f'<text x="{left + c * cell + cell / 2:.1f}" y="{top - 6}" '
                         f'text-anchor="middle" {_FONT}>{escape(label)}</text>')
    for r, row in enumerate(grid):
        y = top + r * cell
        parts.append(f'<text x="{left - 6}" y="{y + cell * 0.7:.1f}" text-anchor="end" {_FONT}>'
                     f'{escape(_short(row_labels[r]))}</text>')
        for c, value in enumerate(row):
            x = left + c * cell
            fill = "#eaeef2" if value is None else _heat(value / peak)
            tip = "—" if value is None else _num(value)
            parts.append(f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                         f'fill="{fill}"><title>{escape(row_labels[r])}, '
                         f'{escape(col_labels[c] if c < len(col_labels) else str(c))}: {tip}</title></rect>')
            if value:
                ink = "#ffffff" if value / peak > 0.6 else "#24292f"
                parts.append(f'<text x="{x + cell / 2 - 0.5:.1f}" y="{y + cell * 0.68:.1f}" '
                             f'text-anchor="middle" fill="{ink}" font-family="system-ui, sans-serif" '
                             f'font-size="9">{_num(value)}</text>')
    parts.append(f'<text x="{left}" y="{height - 6}" {_FONT}>white: 0, red: {_num(peak)}; '
                 'grey: no such element</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _heat(fraction: float) -> str:
    """White to red."""
    level = round(255 - min(1.0, max(0.0, fraction)) * 221)
    return f"rgb(255,{level},{level})"


def _ticks(top: float) -> list[float]:
    """0 and 4-5 round steps up to at least `top` (0..1 when everything is 0)."""
    if top <= 0:
        return [0, 1]
    step = 10 ** math.floor(math.log10(top / 4))
    for m in (1, 2, 2.5, 5, 10):
        if top / (step * m) <= 5:
            step *= m
            break
    n = math.ceil(top / step)
    return [i * step for i in range(n + 1)]


def _num(value: float) -> str:
    return f"{value:.3g}" if isinstance(value, float) and not value.is_integer() else f"{int(value)}"


def _short(label: str, at_most: int = 24) -> str:
    return label if len(label) <= at_most else label[: at_most - 1] + "…"
