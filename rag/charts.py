"""Charts for ``report.html``, as plain SVG (no plotting library, nothing to load at run time).

``metric_bars``: one horizontal bar per metric with its value written beside it, its 95%
bootstrap interval as a whisker, and an axis with ticks; truthfulness, which lies in [-1, 1], is
drawn on its own scale. ``cell_grid``: the (question language, source language) cells as a table
shaded by value, each cell showing its value and question count. This module computes nothing:
it draws the numbers ``rag.evaluate`` gives it.

Example: metric_bars({"answer_correctness": 0.6, "ci95": {"answer_correctness": [0.5, 0.7]}},
["answer_correctness"]) -> '<svg ...><text ...>answer_correctness</text><rect ... 0.600 ...'
"""
from __future__ import annotations

import html

LABEL_W, BAR_W, VALUE_W, ROW_H = 230, 420, 140, 26  # pixels: metric names, bar area, value text, row
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
SIGNED = {"truthfulness"}  # metrics in [-1, 1]


def _x(value: float, signed: bool) -> float:
    """Position of ``value`` on the bar area (0..1, or -1..1 for a signed metric)."""
    share = (value + 1) / 2 if signed else value
    return LABEL_W + max(0.0, min(1.0, share)) * BAR_W


def metric_bars(summary: dict, metrics: list[str], title: str = "Metrics with 95% intervals") -> str:
    rows = [m for m in metrics if summary.get(m) is not None]
    height = 40 + ROW_H * len(rows) + 30
    width = LABEL_W + BAR_W + VALUE_W
    out = [f'<svg class="chart metric-bars" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(title)}">',
           f'<text x="0" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>']
    axis_y = 30 + ROW_H * len(rows)
    for t in TICKS:  # the shared 0..1 axis (a signed metric says its own scale in its label)
        x = _x(t, False)
        out.append(f'<line x1="{x:.1f}" y1="26" x2="{x:.1f}" y2="{axis_y}" stroke="#ddd"/>'
                   f'<text x="{x:.1f}" y="{axis_y + 14}" font-size="11" text-anchor="middle">{t:g}</text>')
    ci95 = summary.get("ci95") or {}
    for i, m in enumerate(rows):
        v, signed = float(summary[m]), m in SIGNED
        y = 30 + i * ROW_H
        zero = _x(0.0, signed)
        x = _x(v, signed)
        label = m + (" (-1..1, 0 mid)" if signed else "")
        out.append(f'<text x="{LABEL_W - 8}" y="{y + 16}" font-size="12" text-anchor="end">{html.escape(label)}</text>')
        out.append(f'<rect x="{min(zero, x):.1f}" y="{y + 5}" width="{abs(x - zero):.1f}" height="{ROW_H - 10}" '
                   f'fill="{"#e15759" if v < 0 else "#4e79a7"}"><title>{html.escape(m)}: {v:.3f}</title></rect>')
        ci = ci95.get(m)
        text = f"{v:.3f}"
        if ci:
            lo, hi = _x(float(ci[0]), signed), _x(float(ci[1]), signed)
            mid = y + ROW_H / 2
            out.append(f'<line x1="{lo:.1f}" y1="{mid}" x2="{hi:.1f}" y2="{mid}" stroke="#222"/>'
                       f'<line x1="{lo:.1f}" y1="{mid - 5}" x2="{lo:.1f}" y2="{mid + 5}" stroke="#222"/>'
                       f'<line x1="{hi:.1f}" y1="{mid - 5}" x2="{hi:.1f}" y2="{mid + 5}" stroke="#222"/>')
            text += f" [{float(ci[0]):.2f}, {float(ci[1]):.2f}]"
        out.append(f'<text class="value" x="{LABEL_W + BAR_W + 6}" y="{y + 16}" font-size="12">{text}</text>')
    out.append("</svg>")
    return "".join(out)


def _shade(v: float) -> str:
    """White (0) to green (1)."""
    v = max(0.0, min(1.0, v))
    r, g, b = (int(255 - (255 - c) * v) for c in (89, 161, 79))
    return f"rgb({r},{g},{b})"


def cell_grid(cells: dict, metric: str, title: str) -> str:
    """``cells`` maps "q->s" (question language -> source language) to that cell's metrics."""
    pairs = [(k.split("->")[0], k.split("->")[1], d) for k, d in cells.items() if "->" in k]
    if not pairs:
        return ""
    qs = sorted({q for q, _, _ in pairs})
    ss = sorted({s for _, s, _ in pairs})
    by = {(q, s): d for q, s, d in pairs}
    head = "".join(f"<th>source {html.escape(s)}</th>" for s in ss)
    body = []
    for q in qs:
        tds = []
        for s in ss:
            d = by.get((q, s)) or {}
            v = d.get(metric)
            if v is None:
                tds.append("<td>-</td>")
                continue
            tds.append(f'<td style="background:{_shade(float(v))}" title="{html.escape(metric)} {q}->{s}">'
                       f'<b>{float(v):.2f}</b><br><small>{d.get("n_questions", "")} q</small></td>')
        body.append(f"<tr><th>question {html.escape(q)}</th>{''.join(tds)}</tr>")
    return (f'<table class="cell-grid"><caption>{html.escape(title)}</caption><tr><th></th>{head}</tr>'
            + "".join(body) + "</table>")
