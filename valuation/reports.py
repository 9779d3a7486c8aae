"""Reports of valuation runs: tables by category, indicator, ecosystem type and region, CSV and
XLSX exports with 万元/亿元 display units, PNG charts (matplotlib, Agg backend, no pyplot
state). Pure: data in, tables or bytes out; no database, no Flask.

Stored values are full-precision yuan; here they are divided by the display unit. XLSX cells
keep the full precision and a number format shows two decimals; CSV cells are rounded to two
decimals of the display unit (the detail table also carries the full-precision yuan).
"""

from __future__ import annotations

import dataclasses
import io
import textwrap
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ecovalue.spreadsheet import append_row, new_workbook, put_cell, workbook_bytes, write_csv

if TYPE_CHECKING:  # matplotlib loads on the first chart only
    from matplotlib.figure import Figure

DISPLAY_UNITS = {"元": 1.0, "万元": 1e4, "亿元": 1e8}
#: ASCII spellings of the display units (a query string need not be percent-encoded)
UNIT_ALIASES = {"yuan": "元", "wan": "万元", "wanyuan": "万元", "10k": "万元", "yi": "亿元",
                "yiyuan": "亿元", "100m": "亿元"}
UNIT_CHOICES = (*DISPLAY_UNITS, *UNIT_ALIASES)


def display_unit(name: str) -> str:
    """元, 万元 or 亿元 from a display unit or its ASCII alias (yuan, wan, yi)."""
    return UNIT_ALIASES.get(name.lower(), name) if name not in DISPLAY_UNITS else name
#: labels for charts (the bundled font has no CJK glyphs)
CHART_UNIT_LABELS = {"元": "yuan", "万元": "10k yuan (wan yuan)", "亿元": "100M yuan (yi yuan)"}
CHART_UNIT_ASCII = {"元": "yuan", "万元": "10k yuan", "亿元": "100M yuan"}
TABLES = ("category", "indicator", "ecosystem_type", "region", "detail", "unvalued", "prices")
CATEGORY_ORDER = ("provisioning", "regulating", "cultural")
CATEGORY_COLORS = {"provisioning": "#c9a227", "regulating": "#2e7d32", "cultural": "#1565c0"}
ECOSYSTEM_ZH = {"forest": "森林", "shrubland": "灌丛", "grassland": "草地", "wetland": "湿地",
                "farmland": "农田", "urban": "城镇", "desert": "荒漠", "glacier": "冰川",
                "marine": "海洋", "other": "其他", "unspecified": "未分类"}
CATEGORY_ZH = {"provisioning": "物质供给", "regulating": "调节服务", "cultural": "文化服务"}


@dataclasses.dataclass
class RunView:
    """What a report needs to know about a run (built by the reporting service)."""

    run_id: int
    title: str
    region_code: str
    region_name: str
    year: int
    base_year: int
    status: str
    price_book: str
    input_hash: str
    results: pd.DataFrame
    unvalued: list[dict[str, Any]]
    prices: dict[str, dict[str, Any]]
    warnings: list[str]
    ratios: dict[str, Any]
    indicator_names: dict[str, tuple[str, str]]  #: code -> (name_zh, name_en)
    region_names: dict[str, str]
    scope_note: str = ""
    #: indicator codes in registry order (provisioning, regulating, cultural as listed)
    indicator_order: list[str] = dataclasses.field(default_factory=list)


def _scale(unit: str) -> float:
    try:
        return DISPLAY_UNITS[display_unit(unit)]
    except KeyError:
        raise ValueError(f"display unit must be one of {', '.join(DISPLAY_UNITS)}") from None


def _share(values: pd.Series, total: float) -> pd.Series:
    return values / total if total else pd.Series(np.nan, index=values.index)


def table(view: RunView, name: str, unit: str = "万元") -> pd.DataFrame:
    """One report table, values in `unit` (full precision; round only when showing)."""
    scale = _scale(unit)
    results = view.results
    total = float(results["value_current"].sum()) if len(results) else 0.0
    money_columns = {"value_current": f"value_current_{unit}",
                     "value_constant": f"value_constant_{unit}"}
    if name == "category":
        grouped = results.groupby("category")[["value_current", "value_constant"]].sum()
        grouped = grouped.reindex([c for c in CATEGORY_ORDER if c in grouped.index]
                                  + [c for c in grouped.index if c not in CATEGORY_ORDER])
        frame = grouped.reset_index()
        frame.insert(1, "name_zh", frame["category"].map(CATEGORY_ZH).fillna(""))
        frame["share"] = _share(frame["value_current"], total)
        frame = pd.concat([frame, pd.DataFrame([{
            "category": "GEP", "name_zh": "生态产品总值", "value_current": total,
            "value_constant": float(results["value_constant"].sum()) if len(results) else 0.0,
            "share": 1.0 if total else np.nan}])], ignore_index=True)
    elif name == "indicator":
        # one row per indicator (item empty), followed by one row per item or sub-item of the
        # indicator (R-SOIL sediment/nitrogen/phosphorus, R-FLOOD lake/reservoir/marsh, water
        # sectors, pollutants, products ...): the item rows sum to their indicator's row
        order = {code: position for position, code in enumerate(view.indicator_order)}

        def summary_row(code: str, category: str, item: str, group: pd.DataFrame
                        ) -> dict[str, Any]:
            units = group["quantity_unit"].unique()
            single = len(units) == 1 and group["item"].fillna("").nunique() <= 1
            quantity = float(group["quantity"].sum()) if len(units) == 1 else np.nan
            current = float(group["value_current"].sum())
            reference = float(group["value_reference"].sum())
            names = view.indicator_names.get(code, ("", ""))
            return {
                "indicator_code": code, "category": category, "item": item,
                "name_zh": names[0], "name_en": names[1], "quantity": quantity,
                "quantity_unit": units[0] if len(units) == 1 else "(several units)",
                "unit_price": current / quantity if single and quantity else np.nan,
                "adjustment_factor": current / reference if reference else np.nan,
                "value_current": current,
                "value_constant": float(group["value_constant"].sum()),
                "complete": bool(group["complete"].all()),
            }

        keyed: list[tuple[tuple[int, str, int, str], dict[str, Any]]] = []
        for (code, category), group in results.groupby(["indicator_code", "category"],
                                                       sort=True):
            position = order.get(code, len(order))
            keyed.append(((position, code, 0, ""), summary_row(code, category, "", group)))
            items = group["item"].fillna("").astype(str)
            if (items != "").any():
                for item, part in group.groupby(items, sort=True):
                    label = str(item) or "(no item)"
                    keyed.append(((position, code, 1, label),
                                  summary_row(code, category, label, part)))
        frame = pd.DataFrame([row for _key, row in sorted(keyed, key=lambda pair: pair[0])],
                             columns=[
            "indicator_code", "category", "item", "name_zh", "name_en", "quantity",
            "quantity_unit", "unit_price", "adjustment_factor", "value_current",
            "value_constant", "complete"])
        frame["share"] = _share(frame["value_current"], total)  # of GEP, items too
    elif name in ("ecosystem_type", "region"):
        column = "ecosystem_type" if name == "ecosystem_type" else "region_code"
        grouped = results.groupby(column, sort=True)[["value_current", "value_constant"]].sum()
        frame = grouped.reset_index()
        labels = ECOSYSTEM_ZH if name == "ecosystem_type" else view.region_names
        frame.insert(1, "name_zh", frame[column].map(labels).fillna(""))
        frame["share"] = _share(frame["value_current"], total)
    elif name == "detail":
        frame = results[["indicator_code", "category", "item", "region_code", "ecosystem_type",
                         "quantity", "quantity_unit", "quantity_gross", "quantity_outside",
                         "unit_price", "unit_price_constant", "adjustment_factor",
                         "value_current", "value_constant", "complete"]].copy()
        frame["value_current_yuan"] = results["value_current"]
        frame["value_constant_yuan"] = results["value_constant"]
    elif name == "unvalued":
        frame = pd.DataFrame(view.unvalued, columns=[
            "kind", "indicator_code", "item", "region_code", "ecosystem_type", "term",
            "quantity", "quantity_unit", "reason"])
        return frame
    elif name == "prices":
        frame = pd.DataFrame([{
            "parameter": p["parameter"], "kind": p["kind"], "book_value": p["book_value"],
            "book_unit": p["book_unit"], "price_year": p["price_year"],
            "index_series": p["index_series"], "unit_factor": p["unit_factor"],
            "adjustment_factor": p["index_factor"], "value_current": p["value_current"],
            "adjustment_factor_constant": p["index_factor_constant"],
            "value_constant": p["value_constant"], "unit": p["unit"],
            "confirmation": p["confirmation"], "source": p["source"]}
            for _key, p in sorted(view.prices.items())], columns=[
            "parameter", "kind", "book_value", "book_unit", "price_year", "index_series",
            "unit_factor", "adjustment_factor", "value_current", "adjustment_factor_constant",
            "value_constant", "unit", "confirmation", "source"])
        return frame
    else:
        raise ValueError(f"table must be one of {', '.join(TABLES)}")
    for column, label in money_columns.items():
        if column in frame:
            frame[label] = frame[column] / scale
            frame = frame.drop(columns=[column])
    return frame


def to_csv(frame: pd.DataFrame, *, decimals: int = 2) -> bytes:
    """UTF-8 with BOM (Excel opens Chinese text correctly), through the shell's export writer
    (text that would start a formula is written as text); money in the display unit rounded
    to `decimals` (written as a decimal number), other numbers as stored."""
    display = [c for c in frame.columns if "_万元" in c or "_亿元" in c or c.endswith("_元")]
    rows: list[list[Any]] = [list(frame.columns)]
    for row in frame.itertuples(index=False):
        cells: list[Any] = []
        for column, value in zip(frame.columns, row, strict=True):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                cells.append(None)
            elif column in display:
                cells.append(Decimal(f"{value:.{decimals}f}"))
            else:
                cells.append(value)
        rows.append(cells)
    return write_csv(rows)


# --- charts ------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # constrained layout makes room for every tick label, title and legend, so that long
    # indicator names neither overlap the neighbouring axes nor run off the picture
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight",
                   metadata={"Software": "ecovalue"})
    return buffer.getvalue()


def chart_text(text: str, fallback: str) -> str:
    """`text` where the chart font can draw it, else `fallback` (a code): matplotlib's bundled
    DejaVu Sans has no CJK glyphs, and a label of empty boxes helps nobody."""
    return text if text.isascii() else fallback


def composition_chart(view: RunView, unit: str = "亿元") -> bytes:
    """PNG: GEP by category and by indicator (bars coloured by category)."""
    return _png(composition_figure(view, unit))


def composition_figure(view: RunView, unit: str = "亿元") -> Any:
    """The figure of `composition_chart` (a matplotlib Figure)."""
    scale = _scale(unit)
    label = CHART_UNIT_LABELS[unit]
    results = view.results
    figure = _figure(11, 5.5)
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 2.2]})
    total = float(results["value_current"].sum()) / scale if len(results) else 0.0
    scope = f", {view.scope_note}" if view.scope_note else ""
    region = chart_text(view.region_name, view.region_code)
    figure.suptitle(f"GEP {region} {view.year}: {total:,.2f} {CHART_UNIT_ASCII[unit]} "
                    f"(current prices; run {view.run_id}{scope})", fontsize=11)
    if results.empty:
        for axis in (left, right):
            axis.text(0.5, 0.5, "no valued indicator", ha="center", va="center")
            axis.set_axis_off()
        return figure
    by_category = results.groupby("category")["value_current"].sum() / scale
    categories = [c for c in CATEGORY_ORDER if c in by_category.index]
    left.bar(categories, [by_category[c] for c in categories],
             color=[CATEGORY_COLORS[c] for c in categories])
    for position, category in enumerate(categories):
        value = by_category[category]
        share = value / total if total else 0
        left.annotate(f"{value:,.2f}\n{share:.0%}", (position, value), ha="center",
                      va="bottom", fontsize=8)
    left.set_ylabel(label)
    left.tick_params(axis="x", labelsize=8, labelrotation=20)
    left.set_title("by category", fontsize=10)
    left.margins(y=0.15)
    by_indicator = results.groupby(["indicator_code", "category"])["value_current"].sum() / scale
    by_indicator = by_indicator.sort_values()
    names = [textwrap.fill(chart_text(f"{code} {view.indicator_names.get(code, ('', ''))[1]}",
                                      code), 32)
             for code, _ in by_indicator.index]
    right.barh(names, by_indicator.to_numpy(),
               color=[CATEGORY_COLORS.get(c, "#777777") for _, c in by_indicator.index])
    right.set_xlabel(label)
    right.set_title("by indicator", fontsize=10)
    right.tick_params(axis="y", labelsize=8)
    for position, value in enumerate(by_indicator.to_numpy()):
        right.annotate(f" {value:,.2f}", (value, position), va="center", fontsize=7)
    right.margins(x=0.18)
    return figure


def change_chart(comparison: Mapping[str, Any], unit: str = "亿元",
                 region_name: str = "") -> bytes:
    """PNG: waterfall from GEP of the base run to GEP of the other run (quantity, price,
    interaction, composition effects) and the change per indicator split by effect."""
    return _png(change_figure(comparison, unit, region_name))


def change_figure(comparison: Mapping[str, Any], unit: str = "亿元",
                  region_name: str = "") -> Any:
    """The figure of `change_chart` (a matplotlib Figure)."""
    scale = _scale(unit)
    label = CHART_UNIT_LABELS[unit]
    totals = comparison["totals"]
    figure = _figure(12, 5.5)
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 2]})
    region_name = chart_text(region_name, comparison.get("region_code") or "")
    figure.suptitle(f"GEP change {region_name} {comparison['base_year']} (run "
                    f"{comparison['base_run_id']}) -> {comparison['other_year']} (run "
                    f"{comparison['other_run_id']}), {comparison['basis']} prices", fontsize=11)
    steps = [("quantity", totals["quantity_effect"]), ("price", totals["price_effect"]),
             ("interaction", totals["interaction"]), ("composition", totals["composition"])]
    start = totals["value_0"] / scale
    labels = [f"run {comparison['base_run_id']}"]
    bottoms, heights, colors = [0.0], [start], ["#607d8b"]
    level = start
    for name, value in steps:
        value /= scale
        labels.append(name)
        bottoms.append(level if value >= 0 else level + value)
        heights.append(abs(value))
        colors.append("#2e7d32" if value >= 0 else "#c62828")
        level += value
    labels.append(f"run {comparison['other_run_id']}")
    bottoms.append(0.0)
    heights.append(totals["value_1"] / scale)
    colors.append("#607d8b")
    left.bar(labels, heights, bottom=bottoms, color=colors)
    for position, (bottom, height) in enumerate(zip(bottoms, heights)):
        value = height if position in (0, len(heights) - 1) else (
            height if colors[position] == "#2e7d32" else -height)
        left.annotate(f"{value:+,.2f}" if 0 < position < len(heights) - 1 else f"{value:,.2f}",
                      (position, bottom + height), ha="center", va="bottom", fontsize=7)
    # the effects are small next to GEP: start the axis below the lowest level, not at zero
    levels = [start, start + sum(v for _, v in steps) / scale]
    running = start
    for _, value in steps:
        running += value / scale
        levels.append(running)
    span = max(levels) - min(levels)
    floor = min(levels) - max(span, abs(max(levels)) * 0.02) * 1.5
    if floor > 0:
        left.set_ylim(bottom=floor, top=max(levels) + max(span, abs(max(levels)) * 0.02) * 0.6)
        left.set_title("waterfall (axis does not start at 0)", fontsize=10)
    else:
        left.set_title("waterfall", fontsize=10)
    left.set_ylabel(label)
    left.tick_params(axis="x", labelrotation=30, labelsize=8)
    rows = comparison["by_indicator"]
    if rows:
        codes = [r["indicator_code"] for r in rows]
        y = np.arange(len(codes))
        positive = np.zeros(len(codes))
        negative = np.zeros(len(codes))
        for name, color in (("quantity_effect", "#2e7d32"), ("price_effect", "#f9a825"),
                            ("interaction", "#8e24aa"), ("composition", "#546e7a")):
            values = np.array([r[name] for r in rows]) / scale
            base = np.where(values >= 0, positive, negative)
            right.barh(y, values, left=base, color=color, label=name.replace("_", " "))
            positive += np.where(values >= 0, values, 0)
            negative += np.where(values < 0, values, 0)
        right.set_yticks(y, codes, fontsize=8)
        right.axvline(0, color="black", linewidth=0.6)
        right.legend(fontsize=8, loc="best")
        # a stacked bar's base is a "sticky" edge that would pin the axis to the last segment
        right.use_sticky_edges = False
        right.margins(x=0.06)
    else:
        right.text(0.5, 0.5, "no valued indicator", ha="center", va="center")
    right.set_xlabel(label)
    right.set_title("change by indicator", fontsize=10)
    return figure


# --- XLSX ----------------------------------------------------------------------------------


def to_xlsx(view: RunView, unit: str = "万元", chart: bytes | None = None) -> bytes:
    """A workbook: summary, one sheet per table, and the composition chart."""
    from openpyxl.styles import Alignment, Font

    scale = _scale(unit)
    workbook = new_workbook()
    summary = workbook.active
    summary.title = "Summary"
    bold = Font(bold=True)
    results = view.results
    total_current = float(results["value_current"].sum()) if len(results) else 0.0
    total_constant = float(results["value_constant"].sum()) if len(results) else 0.0
    lines: list[tuple[str, Any]] = [
        ("报告 Report", view.title),
        ("地区 Region", f"{view.region_name} ({view.region_code})"),
        ("核算年份 Accounting year", view.year),
        ("不变价基年 Constant-price base year", view.base_year),
        ("价格手册 Price book", view.price_book),
        ("状态 Status", view.status),
        ("运行 Run", view.run_id),
        ("输入哈希 Input hash (SHA-256)", view.input_hash),
        (f"GEP 现价 current prices ({unit})", total_current / scale),
        (f"GEP 不变价 constant {view.base_year} prices ({unit})", total_constant / scale),
    ]
    if view.scope_note:
        lines.insert(2, ("范围 Scope", view.scope_note))
    for region, values in sorted(view.ratios.items()):
        for key, text in (("gep_to_gdp", "GEP/GDP"), ("gep_per_km2_yuan", "GEP per km² (元)"),
                          ("gep_per_capita_yuan", "GEP per capita (元)")):
            if values.get(key) is not None:
                lines.append((f"{text} {region}", values[key]))
    for position, (key, value) in enumerate(lines, start=1):
        put_cell(summary, position, 1, key).font = bold
        cell = put_cell(summary, position, 2, value)
        if isinstance(value, float):
            cell.number_format = "#,##0.00"
    row = len(lines) + 2
    put_cell(summary, row, 1, "警告 Warnings").font = bold
    for offset, warning in enumerate(view.warnings or ["(none)"], start=1):
        put_cell(summary, row + offset, 1, warning).alignment = Alignment(wrap_text=False)
    summary.column_dimensions["A"].width = 42
    summary.column_dimensions["B"].width = 70
    sheets = [("By category", "category"), ("By indicator", "indicator"),
              ("By ecosystem type", "ecosystem_type"), ("By region", "region"),
              ("Detail", "detail"), ("Unvalued", "unvalued"), ("Prices", "prices")]
    for title, name in sheets:
        frame = table(view, name, unit)
        sheet = workbook.create_sheet(title)
        for cell in append_row(sheet, list(frame.columns)):
            cell.font = bold
        for record in frame.itertuples(index=False):
            append_row(sheet, list(record))
        for index, column in enumerate(frame.columns, start=1):
            letter = sheet.cell(1, index).column_letter
            sheet.column_dimensions[letter].width = max(12, min(48, len(str(column)) + 4))
            if column == "share":
                fmt = "0.0%"
            elif unit in column or column.endswith("_yuan") or column in (
                    "quantity", "quantity_gross", "quantity_outside"):
                fmt = "#,##0.00"
            elif column in ("unit_price", "unit_price_constant", "value_current",
                            "value_constant", "book_value"):
                fmt = "#,##0.0000"
            elif "factor" in column:
                fmt = "0.000000"
            else:
                continue
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = fmt
        sheet.freeze_panes = "A2"
    if chart:
        from openpyxl.drawing.image import Image

        sheet = workbook.create_sheet("Chart")
        image = Image(io.BytesIO(chart))
        sheet.add_image(image, "A1")
    return workbook_bytes(workbook)


def comparison_table(comparison: Mapping[str, Any], unit: str = "万元") -> pd.DataFrame:
    """The change by indicator, each indicator's items (sub-items) in rows of their own after
    it (`item` empty on the indicator's row); values in `unit`."""
    scale = _scale(unit)
    rows: list[dict[str, Any]] = []
    items: dict[str, list[dict[str, Any]]] = {}
    for part in comparison.get("by_item", []):
        items.setdefault(part["indicator_code"], []).append(part)
    for row in comparison["by_indicator"]:
        rows.append({**row, "item": ""})
        rows += items.get(row["indicator_code"], [])
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for column in ("value_0", "value_1", "change", "quantity_effect", "price_effect",
                   "interaction", "composition"):
        frame[f"{column}_{unit}"] = frame.pop(column) / scale
    return frame


def display_unit_choices() -> Sequence[str]:
    return tuple(DISPLAY_UNITS)
