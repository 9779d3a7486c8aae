"""One valuation run, as a pure function of its inputs (no database, no Flask).

`RunInputs` holds everything that determines the numbers: scope, year, base year, options,
socio-economic context, quantity rows, indicator definitions, price-book entries and index
values. `compute` turns them into results, totals, ratios, unvalued items and warnings;
`input_hash` fingerprints them. Services gather the inputs from the database, call these, and
store the outcome; reproducing a stored run is calling `compute` again on the same inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from valuation import formulas
from valuation.formulas import PriceEntry, RegionContext
from valuation.registry import IndicatorDef, ParameterSpec

ENGINE_VERSION = "1.0"

#: columns of the quantity rows a run takes (`quantity` may be None: reported as not available)
INPUT_COLUMNS = ["region_code", "indicator_code", "item", "ecosystem_type", "origin",
                 "quantity", "quantity_unit", "money"]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    enable: tuple[str, ...] = ()  #: optional indicators switched on (e.g. R-O2)
    disable: tuple[str, ...] = ()  #: indicators switched off
    allow_double_count: tuple[str, ...] = ()  #: accepted overlaps, e.g. "R-CARB+R-O2"
    deflator_series: str = "CPI-CN-1978"  #: deflates values reported in yuan
    output_value_basis: str = "gross"  #: gross or net output value (recorded with the run)

    def to_dict(self) -> dict[str, Any]:
        return {"enable": sorted(self.enable), "disable": sorted(self.disable),
                "allow_double_count": sorted(self.allow_double_count),
                "deflator_series": self.deflator_series,
                "output_value_basis": self.output_value_basis}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunOptions:
        return cls(enable=tuple(sorted(data.get("enable") or ())),
                   disable=tuple(sorted(data.get("disable") or ())),
                   allow_double_count=tuple(sorted(pair_name(p) for p in
                                                   data.get("allow_double_count") or ())),
                   deflator_series=data.get("deflator_series") or "CPI-CN-1978",
                   output_value_basis=data.get("output_value_basis") or "gross")


def pair_name(text: str) -> str:
    """'R-O2+R-CARB' -> 'R-CARB+R-O2' (order does not matter)."""
    return "+".join(sorted(p.strip() for p in text.split("+")))


@dataclasses.dataclass
class RunInputs:
    region_code: str
    year: int
    base_year: int
    options: RunOptions
    contexts: list[RegionContext]
    quantities: pd.DataFrame  #: INPUT_COLUMNS
    definitions: dict[str, IndicatorDef]  #: the registry at run time (incl. inactive custom)
    prices: dict[str, PriceEntry]
    price_book_version: str
    indices: dict[str, dict[int, float]]
    index_confirmations: dict[str, dict[int, str]]
    default_prices: dict[str, PriceEntry]  #: the reference book, for the 5x check
    region_levels: dict[str, str]  #: level of the scope and of the regions in the rows


@dataclasses.dataclass
class RunOutcome:
    results: pd.DataFrame
    unvalued: list[dict[str, Any]]
    prices: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    ratios: dict[str, Any]
    warnings: list[str]
    enabled: list[str]


class InputProblem(ValueError):
    """The inputs are contradictory (options or quantities); `problems` says where."""

    def __init__(self, kind: str, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.kind = kind
        self.problems = problems


def enabled_indicators(definitions: Mapping[str, IndicatorDef], options: RunOptions,
                       active: Sequence[str] | None = None) -> list[str]:
    """Indicators valued by the run: the default ones plus `enable`, minus `disable`, in
    registry order. Raises InputProblem for unknown codes or a code in both lists."""
    problems = []
    for field in ("enable", "disable"):
        for code in getattr(options, field):
            if code not in definitions:
                problems.append({"field": f"options.{field}", "message":
                                 f"unknown indicator {code}"})
    both = set(options.enable) & set(options.disable)
    if both:
        problems.append({"field": "options", "message": "both enabled and disabled: "
                         + ", ".join(sorted(both))})
    if problems:
        raise InputProblem("options", problems[0]["message"], problems)
    chosen = []
    for code, definition in definitions.items():
        if active is not None and code not in active and code not in options.enable:
            continue
        on = (definition.default_enabled or code in options.enable) and \
            code not in options.disable
        if on:
            chosen.append(code)
    return chosen


def double_count_conflicts(definitions: Mapping[str, IndicatorDef], enabled: Sequence[str],
                           ) -> list[str]:
    """Pairs of enabled indicators that value the same service twice (both directions of the
    registry's `double_counts_with` are honoured)."""
    chosen = set(enabled)
    pairs = set()
    for code in enabled:
        for other in definitions[code].double_counts_with:
            if other in chosen:
                pairs.add(pair_name(f"{code}+{other}"))
    return sorted(pairs)


def compute(inputs: RunInputs, *, active: Sequence[str] | None = None) -> RunOutcome:
    """Value the run's quantities; raises InputProblem for double counting not accepted by
    the options and for quantities the territorial principle cannot apply to."""
    definitions = inputs.definitions
    options = inputs.options
    enabled = enabled_indicators(definitions, options, active)
    conflicts = double_count_conflicts(definitions, enabled)
    refused = [p for p in conflicts if p not in options.allow_double_count]
    if refused:
        raise InputProblem("double-counting", (
            f"{', '.join(refused)} would count the same service twice (e.g. R-O2 and R-CARB "
            "both derive from NPP): disable one of them, or accept the overlap explicitly with "
            "allow_double_count"), [{"field": "options.allow_double_count",
                                     "message": f"not accepted: {p}"} for p in refused])
    warnings: list[str] = [f"double counting accepted by option: {p}" for p in conflicts]
    unvalued: list[dict[str, Any]] = []
    rows = inputs.quantities
    rows = rows.sort_values(["indicator_code", "item", "region_code", "ecosystem_type",
                             "origin"], kind="stable").reset_index(drop=True)

    def note_rows(frame: pd.DataFrame, kind: str, reason: str) -> None:
        for record in frame.itertuples(index=False):
            unvalued.append({
                "kind": kind, "indicator_code": record.indicator_code, "item": record.item,
                "region_code": record.region_code, "ecosystem_type": record.ecosystem_type,
                "term": None, "quantity": None if pd.isna(record.quantity)
                else float(record.quantity),
                "quantity_unit": None if pd.isna(record.quantity_unit) else record.quantity_unit,
                "reason": reason})

    off = ~rows["indicator_code"].isin(enabled)
    for code, frame in rows[off].groupby("indicator_code", sort=True):
        reason = (f"{code} is switched off for this run" +
                  (" (optional indicator, off by default)" if not definitions[code]
                   .default_enabled and code not in options.disable else " (option disable)"))
        note_rows(frame, "disabled", reason)
    rows = rows[~off]
    empty = rows["quantity"].isna()
    note_rows(rows[empty], "not-available", "quantity reported as not available")
    reported_missing = set(rows.loc[empty, "indicator_code"])
    rows = rows[~empty].copy()
    rows["quantity"] = rows["quantity"].astype("float64")
    rows["money"] = rows["money"].astype(bool)
    net, problems = formulas.apply_territorial_principle(rows[
        [*formulas.TERRITORIAL_KEY, "quantity", "origin"]])
    if problems:
        raise InputProblem("territorial", problems[0]["message"], problems)
    negative = net[(net["quantity"] < 0) & ~net["indicator_code"].map(
        lambda c: definitions[c].allow_negative)]
    if not negative.empty:  # pragma: no cover - rows are checked when stored
        raise InputProblem("quantities", "negative accounted quantity", [])
    valuation = formulas.value_quantities(
        net, definitions, inputs.prices, inputs.indices, year=inputs.year,
        base_year=inputs.base_year, deflator_series=options.deflator_series)
    for entry in valuation.unvalued:
        entry.setdefault("kind", "price")
    unvalued.extend(valuation.unvalued)
    present = set(net["indicator_code"]) | reported_missing
    for entry in formulas.missing_indicators([c for c in enabled if c not in present],
                                             net, [inputs.region_code]):
        entry["kind"] = "no-quantity"
        unvalued.append(entry)
    results = valuation.results
    summary = formulas.summarize(results)
    ratios = formulas.ratios(summary, inputs.contexts, inputs.region_code)
    defaults = _default_current(inputs, valuation.prices)
    warnings.extend(formulas.sanity_warnings(summary, ratios, inputs.contexts,
                                             inputs.region_code, valuation.prices, defaults))
    warnings.extend(_data_warnings(inputs, valuation, results))
    return RunOutcome(results=results, unvalued=unvalued, prices=valuation.prices,
                      summary=summary, ratios=ratios, warnings=warnings, enabled=enabled)


def _default_current(inputs: RunInputs, used: Mapping[str, Mapping]) -> dict[str, float]:
    out = {}
    for key, price in used.items():
        default = inputs.default_prices.get(price["parameter"])
        if default is None:
            continue
        spec = ParameterSpec(price["parameter"], price["unit"], price["kind"])
        try:
            adjusted = formulas.adjust_price(default, spec, "", year=inputs.year,
                                             base_year=inputs.base_year, indices=inputs.indices)
        except formulas.PriceProblem:
            continue
        out[key] = adjusted.value_current
    return out


def _data_warnings(inputs: RunInputs, valuation: formulas.Valuation,
                   results: pd.DataFrame) -> list[str]:
    warnings = []
    to_confirm = sorted({p["parameter"] for p in valuation.prices.values()
                         if p["confirmation"] != "confirmed"})
    if to_confirm:
        warnings.append("prices still to be confirmed: " + ", ".join(to_confirm))
    years_used: dict[str, set[int]] = {}
    for price in valuation.prices.values():
        if price["index_series"] and price["price_year"] is not None:
            years_used.setdefault(price["index_series"], set()).update(
                {price["price_year"], inputs.year, inputs.base_year})
        elif price["kind"] == "price" and price["price_year"] not in (None, inputs.year):
            warnings.append(f"{price['parameter']} is a {price['price_year']} price used in "
                            f"{inputs.year} without index adjustment (no index series in the "
                            "price book)")
    if not results.empty and results["quantity_unit"].eq("yuan").any() and \
            inputs.base_year != inputs.year:  # values in yuan are deflated: the index is used
        years_used.setdefault(inputs.options.deflator_series, set()).update(
            {inputs.year, inputs.base_year})
    unconfirmed = []
    for series, years in sorted(years_used.items()):
        marks = inputs.index_confirmations.get(series, {})
        pending = sorted(y for y in years if marks.get(y, "to-confirm") != "confirmed")
        if pending:
            unconfirmed.append(f"{series} {', '.join(map(str, pending))}")
    if unconfirmed:
        warnings.append("price-index values still to be confirmed: " + "; ".join(unconfirmed))
    if not results.empty and not results["complete"].all():
        partial = sorted(set(results.loc[~results["complete"].astype(bool), "indicator_code"]))
        warnings.append("valued only in part (some value terms lack parameters, see unvalued): "
                        + ", ".join(partial))
    return warnings


def _hex(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return float.hex(float(value))


def input_hash(inputs: RunInputs) -> str:
    """SHA-256 over a canonical JSON of every input: identical inputs, identical hash."""
    rows = inputs.quantities.sort_values(INPUT_COLUMNS[:5], kind="stable")
    quantity_rows = [
        [r.region_code, r.indicator_code, r.item, r.ecosystem_type, r.origin,
         _hex(r.quantity), r.quantity_unit, bool(r.money)]
        for r in rows[INPUT_COLUMNS].itertuples(index=False)]
    used_codes = sorted(set(inputs.quantities["indicator_code"]) | set(
        c for c, d in inputs.definitions.items() if d.default_enabled
        or c in inputs.options.enable))
    payload = {
        "engine": ENGINE_VERSION,
        "region": inputs.region_code, "year": inputs.year, "base_year": inputs.base_year,
        "options": inputs.options.to_dict(),
        "context": [[c.region_code, c.level, _hex(c.gdp_yuan), _hex(c.area_km2),
                     _hex(c.population)] for c in inputs.contexts],
        "quantities": quantity_rows,
        "registry": {c: inputs.definitions[c].to_dict() for c in used_codes
                     if c in inputs.definitions},
        "price_book": inputs.price_book_version,
        "prices": {k: [_hex(v.value), v.unit, v.price_year, v.index_series, v.confirmation]
                   for k, v in sorted(inputs.prices.items())},
        "indices": {s: {str(y): _hex(v) for y, v in sorted(values.items())}
                    for s, values in sorted(inputs.indices.items())},
        "index_confirmations": {s: {str(y): c for y, c in sorted(values.items())}
                                for s, values in sorted(inputs.index_confirmations.items())},
        "levels": dict(sorted(inputs.region_levels.items())),
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
