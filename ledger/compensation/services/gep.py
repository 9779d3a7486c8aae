"""GEP change from published valuation runs, for agreement conditions on `gep`.

Compensation may not import valuation (DESIGN.md: `ledger` and `valuation` never import each
other), so the composition root hands over valuation's reader of run totals:
`ecovalue.app` calls `provide_reader(valuation.services.runs.gep_totals)`. The reader is
`reader(session, region_code=, year=)` and returns the valuation runs of that region and year,
whatever their status, as mappings with `run_id`, `status`, `base_year` (the year of the
constant prices), `gep_constant_yuan`, `gep_current_yuan` and `published_at`.

The rule: for a period of year Y, a condition on `gep` {region, base_year B (default Y - 1)}
compares the published run of (region, Y) with the published run of (region, B) — the one
published last when a year has several — at their constant prices, which must be of the same
base year (else the two are not comparable and the settlement is refused);
change = (GEP_Y - GEP_B) / GEP_B x 100 (`clearing.gep_change_percent`). A year without a
published run refuses the settlement (422 `compensation-gep-run-unavailable`, naming the
unpublished run if there is one): missing is not zero, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from ledger.compensation import clearing
from ledger.compensation import terms as terms_module
from ledger.compensation.errors import GepRunUnavailable

#: `reader(session, region_code=, year=)` -> the valuation runs of that region and year
Reader = Callable[..., Iterable[Mapping[str, Any]]]
READERS: dict[str, Reader] = {}
NAME = "valuation.gep_totals"


def provide_reader(reader: Reader) -> None:
    """Register valuation's reader of run totals (by `ecovalue.app`)."""
    READERS[NAME] = reader


def _published(session: Session, region_code: str, year: int, field: str) -> Mapping[str, Any]:
    reader = READERS.get(NAME)
    if reader is None:
        raise GepRunUnavailable("this service reads no valuation runs: a GEP condition cannot "
                                "be evaluated", errors=[{"field": field, "message":
                                                         "no valuation reader"}])
    runs = list(reader(session, region_code=region_code, year=year))
    published = [r for r in runs if r["status"] == "published"]
    if not published:
        others = ", ".join(str(r["run_id"]) for r in runs)
        detail = (f"valuation run(s) {others} of region {region_code} for {year} are not "
                  "published; publish one first") if runs else \
            f"no valuation run of region {region_code} for {year}"
        raise GepRunUnavailable(detail, errors=[{"field": field, "message": detail}])
    return max(published, key=lambda r: (r["published_at"], r["run_id"]))


def evaluate(session: Session, terms: Mapping[str, Any], period: str
             ) -> dict[tuple[str, str], dict[str, Any]]:
    """(section key, indicator) -> the value of every condition on `gep` for `period`, with
    the runs it came from; refuses (422) when a run is missing, unpublished or the two are
    priced at different base years."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, gep in terms_module.gep_conditions(terms).items():
        base_year, year = terms_module.gep_years(gep, period)
        field = f"conditions.{key}.gep"
        region = gep["region_code"]
        base = _published(session, region, base_year, field)
        current = _published(session, region, year, field)
        if base["base_year"] != current["base_year"]:
            raise GepRunUnavailable(
                f"valuation runs {base['run_id']} ({base_year}) and {current['run_id']} "
                f"({year}) of region {region} are at constant prices of different years "
                f"({base['base_year']} and {current['base_year']}): not comparable",
                errors=[{"field": field, "message": "runs at different constant prices"}])
        try:
            change = clearing.gep_change_percent(float(base["gep_constant_yuan"]),
                                                 float(current["gep_constant_yuan"]))
        except ValueError:
            raise GepRunUnavailable(
                f"valuation run {base['run_id']} gives no positive GEP for {base_year}: no "
                "change can be measured against it",
                errors=[{"field": field, "message": "base GEP not positive"}]) from None
        out[(terms_module.gep_section(gep), "gep_change_percent")] = {
            "value": change, "region_code": region, "base_year": base_year, "year": year,
            "base_run_id": base["run_id"], "run_id": current["run_id"],
            "price_base_year": base["base_year"],
            "base_gep_constant_yuan": float(base["gep_constant_yuan"]),
            "gep_constant_yuan": float(current["gep_constant_yuan"])}
    return out
