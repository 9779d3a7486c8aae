"""Charts: every label inside the picture, none over a neighbouring axis, none in boxes for want
of a glyph (pure: no database)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from valuation import reports

LONG_NAME = "Ecological energy (hydropower and other renewables of the county)"


def run_view(region_name: str = "Wangmo") -> reports.RunView:
    rows = [("P-ENE", "provisioning", 4.23e8), ("R-WCON", "regulating", 125.19e8),
            ("C-REC", "cultural", 30.38e8), ("R-WQ", "regulating", 0.04e8)]
    return reports.RunView(
        run_id=7, title="t", region_code="522326", region_name=region_name, year=2024,
        base_year=2020, status="finished", price_book="demo", input_hash="0" * 64,
        results=pd.DataFrame(rows, columns=["indicator_code", "category", "value_current"]),
        unvalued=[], prices={}, warnings=[], ratios={}, region_names={},
        indicator_names={"P-ENE": ("生态能源", LONG_NAME),
                         "R-WCON": ("水源涵养", "Water conservation"),
                         "C-REC": ("休闲旅游", "Recreation and tourism"),
                         "R-WQ": ("水质净化", "净化水质")})


def comparison() -> dict:
    effects = {"quantity_effect": 6.0e8, "price_effect": 1.0e8, "interaction": 0.2e8,
               "composition": 0.0}
    return {"base_run_id": 1, "other_run_id": 2, "region_code": "522326", "base_year": 2023,
            "other_year": 2024, "basis": "current",
            "totals": {"value_0": 286.08e8, "value_1": 293.28e8, **effects},
            "by_indicator": [{"indicator_code": "R-WCON", **effects},
                             {"indicator_code": "C-REC", "quantity_effect": -0.5e8,
                              "price_effect": 0.1e8, "interaction": 0.0, "composition": 0.0}]}


def drawn(figure):  # type: ignore[no-untyped-def]
    """Draw the figure, failing on any warning (matplotlib warns of each missing glyph)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure.canvas.draw()
    return figure.canvas.get_renderer()


def assert_inside(figure, renderer) -> None:  # type: ignore[no-untyped-def]
    """Everything drawn lies on the canvas (the layout made room, nothing needs cropping)."""
    drawn_box, canvas = figure.get_tightbbox(renderer), figure.bbox_inches
    assert canvas.x0 - 0.01 <= drawn_box.x0 and drawn_box.x1 <= canvas.x1 + 0.01
    assert canvas.y0 - 0.01 <= drawn_box.y0 and drawn_box.y1 <= canvas.y1 + 0.01


def test_composition_chart_labels_are_whole_and_clear_of_the_other_axis():
    figure = reports.composition_figure(run_view(), "亿元")
    renderer = drawn(figure)
    assert_inside(figure, renderer)
    left, right = figure.axes
    labels = [t for t in right.get_yticklabels() if t.get_text()]
    assert any(t.get_text().replace("\n", " ") == f"P-ENE {LONG_NAME}" for t in labels)
    for label in labels:  # the indicator names start right of the category chart
        assert label.get_window_extent(renderer).x0 > left.get_window_extent(renderer).x1


@pytest.mark.parametrize("name,shown", [("Wangmo", "Wangmo"), ("望谟县", "522326")])
def test_a_name_the_chart_font_cannot_draw_falls_back_to_the_code(name, shown):
    figure = reports.composition_figure(run_view(name), "亿元")
    drawn(figure)
    assert figure.get_suptitle().startswith(f"GEP {shown} 2024")
    names = [t.get_text() for t in figure.axes[1].get_yticklabels()]
    assert "R-WQ" in names  # its English name is not ASCII here: the code alone


def test_change_chart_keeps_every_bar_and_label_inside():
    figure = reports.change_figure(comparison(), "亿元", "望谟县")
    renderer = drawn(figure)
    assert_inside(figure, renderer)
    assert "GEP change 522326 2023" in figure.get_suptitle()
    right = figure.axes[1]
    widest = max(p.get_x() + p.get_width() for p in right.patches)
    assert widest < right.get_xlim()[1]  # the last stacked segment is not cut by the frame
    assert reports.change_chart(comparison(), "亿元")[:4] == b"\x89PNG"
