"""report.html in Debian's Chromium (issue 24 item 6): the metrics chart has its axis and values
inside the picture, the language cells are a grid with values, and the refusal score's
calibration curve has its axes, AUC and points labelled. A missing Chromium fails."""
from __future__ import annotations

from pathlib import Path

from rag.evaluate import report_html
from test_ui_browser import ARTIFACTS, browser  # noqa: F401  (the module's Chromium fixture)

SUMMARY = {"model": "m", "embedder": "e", "top_k": 4, "n_questions": 12, "wall_seconds": 3,
           "by_category": {"single": {"answer_correctness": 0.5}, "crosslingual": {"answer_correctness": 0.25}},
           "answer_correctness": 0.6, "citation_support_precision": 0.95, "refusal_recall": 0.9,
           "truthfulness": -0.2,
           "ci95": {"answer_correctness": [0.5, 0.7], "truthfulness": [-0.4, 0.1]},
           "by_cell": {"en->zh": {"answer_correctness": 0.3, "retrieval_recall_at_k": 1.0, "n_questions": 6},
                       "zh->en": {"answer_correctness": 0.8, "retrieval_recall_at_k": 0.5, "n_questions": 6}},
           "refusal_calibration": {"n": 30, "auroc": 0.712, "bins": [
               {"predicted": 0.08, "observed": 0.0, "n": 10}, {"predicted": 0.51, "observed": 0.4, "n": 10},
               {"predicted": 0.97, "observed": 1.0, "n": 10}]}}


def test_report_chart_shows_values_axis_and_cells(browser, tmp_path):  # noqa: F811
    page_file = tmp_path / "report.html"
    page_file.write_text(report_html(SUMMARY, []), "utf-8")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(page_file.as_uri())
    chart = page.locator("svg.metric-bars")
    assert chart.count() == 1
    box = chart.bounding_box()
    values = chart.locator("text.value")
    assert values.count() == 4  # one per metric present
    texts = values.all_text_contents()
    assert "0.600 [0.50, 0.70]" in texts and "-0.200 [-0.40, 0.10]" in texts
    for i in range(values.count()):  # every label is inside the picture (nothing cut off)
        b = values.nth(i).bounding_box()
        assert b["x"] >= box["x"] and b["x"] + b["width"] <= box["x"] + box["width"] + 0.5, texts[i]
    ticks = [t for t in chart.locator("text").all_text_contents() if t in ("0", "0.5", "1")]
    assert len(ticks) == 3  # the axis is labelled
    grid = page.locator("table.cell-grid").first
    cells = grid.locator("td").all_inner_texts()
    assert any(c.startswith("0.30") for c in cells) and any(c.startswith("0.80") for c in cells)
    curve = page.locator("svg.calibration")  # the refusal score's reliability, every label inside
    assert curve.count() == 1 and "ROC AUC 0.712" in " ".join(curve.locator("text").all_text_contents())
    cbox, points = curve.bounding_box(), curve.locator("text.value")
    assert points.all_text_contents() == ["0.08 -> 0.00 (10)", "0.51 -> 0.40 (10)", "0.97 -> 1.00 (10)"]
    points = curve.locator("text")  # titles, ticks, axis names and values
    for i in range(points.count()):
        b = points.nth(i).bounding_box()
        assert cbox["x"] <= b["x"] and b["x"] + b["width"] <= cbox["x"] + cbox["width"] + 0.5
        assert cbox["y"] <= b["y"] and b["y"] + b["height"] <= cbox["y"] + cbox["height"] + 0.5
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    page.close()
