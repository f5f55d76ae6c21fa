"""Charts for ``report.html``, as plain SVG (no plotting library, nothing to load at run time).

``metric_bars``: one horizontal bar per metric with its value written beside it, its 95%
bootstrap interval as a whisker, and an axis with ticks; truthfulness, which lies in [-1, 1], is
drawn on its own scale. ``cell_grid``: the (question language, source language) cells as a table
shaded by value, each cell showing its value and question count. ``calibration_curve``: the
refusal score's reliability bins against the diagonal. This module computes nothing:
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


def calibration_curve(cal: dict, title: str = "Refusal score calibration") -> str:
    """``cal`` is ``rag.evaluate.calibration``'s dict: a point per bin (predicted, observed, n)
    over the diagonal a perfectly calibrated score would follow, with both axes ticked, each
    point's values written beside it, and the ROC AUC in the title."""
    size, left, top = 300, 60, 56
    width, height = left + size + 170, top + size + 50

    def px(v: float) -> float:
        return left + max(0.0, min(1.0, v)) * size

    def py(v: float) -> float:
        return top + size - max(0.0, min(1.0, v)) * size

    auc = cal.get("auroc")
    sub = (f"ROC AUC {auc:.3f} over {cal.get('n', 0)} answers; dashed: a perfect score" if auc is not None
           else f"{cal.get('n', 0)} answers; dashed: a perfect score")
    out = [f'<svg class="chart calibration" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(title)}: {html.escape(sub)}">',
           f'<text x="0" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>',
           f'<text x="0" y="34" font-size="12">{html.escape(sub)}</text>']
    for t in TICKS:
        out.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{top + size}" stroke="#eee"/>'
                   f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + size}" y2="{py(t):.1f}" stroke="#eee"/>'
                   f'<text x="{px(t):.1f}" y="{top + size + 16}" font-size="11" text-anchor="middle">{t:g}</text>'
                   f'<text x="{left - 6}" y="{py(t) + 4:.1f}" font-size="11" text-anchor="end">{t:g}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#888"/>'
               f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#aaa" stroke-dasharray="4 3"/>'
               f'<text x="{left + size / 2}" y="{top + size + 36}" font-size="12" text-anchor="middle">'
               f'predicted P(correct)</text>'
               f'<text x="14" y="{top + size / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {top + size / 2})">share right</text>')
    bins = cal.get("bins") or []
    pts = " ".join(f"{px(b['predicted']):.1f},{py(b['observed']):.1f}" for b in bins)
    if pts:
        out.append(f'<polyline points="{pts}" fill="none" stroke="#4e79a7" stroke-width="2"/>')
    for b in bins:
        x, y = px(b["predicted"]), py(b["observed"])
        label = f"{b['predicted']:.2f} -> {b['observed']:.2f} ({b['n']})"
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#4e79a7"><title>{label}</title></circle>'
                   f'<text class="value" x="{x + 7:.1f}" y="{y + 4:.1f}" font-size="10">{html.escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)
