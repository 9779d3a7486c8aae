"""An agreement's terms as data: the checks a document must pass, and its parts as the
clearing and schedule modules take them (pure: the caller looks up which sections, parties
and regions exist and passes them in).

Every problem is collected (field path and message), like a compiler, instead of stopping at
the first: a clerk fixes a document in one round.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.compensation import clearing, schedule

KINDS = ("vertical", "horizontal", "market", "thermal_power_fund")
#: Chinese first, English alongside
KIND_LABELS = {"vertical": "纵向生态补偿 (vertical fiscal transfer)",
               "horizontal": "横向生态补偿 (horizontal, between regions)",
               "market": "市场化生态补偿 (market or enterprise)",
               "thermal_power_fund": "火电企业森林生态补偿基金 (thermal-power forest fund)"}
CODE_RE = re.compile(r"^[A-Z][A-Z0-9-]{1,39}$")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
#: a year, or a month, quarter or half of it: 2019, 2019-07, 2019-Q3, 2019-H2
PERIOD_RE = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2]|Q[1-4]|H[12]))?$")
MAX_PARTIES, MAX_CONDITIONS, MAX_PERIODS = 50, 100, 600
#: water-quality classes (GB 3838-2002) as written in Chinese reports, and their number
WATER_CLASSES = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "劣V": 6,
                 "Ⅰ": 1, "Ⅱ": 2, "Ⅲ": 3, "Ⅳ": 4, "Ⅴ": 5, "劣Ⅴ": 6}
CLASS_NAMES = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "劣V"}


def water_class(value: Any) -> int | None:
    """A water-quality class as 1..6 from 3, "III", "Ⅲ", "III类", "劣V" ...; None if none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and float(value).is_integer() and 1 <= value <= 6:
        return int(value)
    if isinstance(value, str):
        text = value.strip().upper().removesuffix("类").strip()
        if text.isascii() and text.isdigit() and 1 <= int(text) <= 6:
            return int(text)
        return WATER_CLASSES.get(text)
    return None


def indicator_value(indicator: str, value: Any) -> float | None:
    """A monitored value of `indicator` as a number, None when it cannot be one."""
    if indicator == "water_quality_class":
        number = water_class(value)
        return float(number) if number is not None else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().removesuffix("%"))
        except ValueError:
            return None
    if isinstance(value, int | float) and value == value and abs(value) != float("inf"):
        if indicator == "forest_coverage_percent" and not 0 <= value <= 100:
            return None
        return float(value)
    return None


def period_order(period: str) -> tuple[int, int, int]:
    """A sort key: (year, start month, length in months)."""
    match = PERIOD_RE.match(period)
    assert match is not None
    year, part = int(match.group(1)), match.group(2)
    if part is None:
        return year, 1, 12
    if part[0] == "Q":
        return year, 3 * int(part[1]) - 2, 3
    if part[0] == "H":
        return year, 6 * int(part[1]) - 5, 6
    return year, int(part), 1


def terms_hash(terms: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a terms document (what `verify` rechecks)."""
    text = json.dumps(terms, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def problems(terms: Mapping[str, Any], *, known_sections: Collection[str],
             party_exists: Callable[[int], bool], region_exists: Callable[[str], bool]
             ) -> list[dict[str, str]]:
    """Every problem of a terms document (already of the right shape: the schema checked
    types and required fields), as {field, message}."""
    errors: list[dict[str, str]] = []

    def err(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    if not CODE_RE.match(terms["code"]):
        err("code", "2-40 characters: capital letters, digits and '-', starting with a letter")
    if terms["kind"] not in KINDS:
        err("kind", f"one of {', '.join(KINDS)}")
    amount = terms["amount_fen"]
    if amount <= 0:
        err("amount_fen", "the agreement's amount must be a positive number of fen"
            + (" (a negative amount is refused)" if amount < 0 else ""))
    basis = terms["share_basis"]
    if basis <= 0:
        err("share_basis", "the whole that shares are parts of: a positive integer (e.g. 10 for "
            "1:5:4, 100 for percent)")

    periods = terms["periods"]
    if not periods or len(periods) > MAX_PERIODS:
        err("periods", f"1 to {MAX_PERIODS} assessment periods")
    bad = [p for p in periods if not PERIOD_RE.match(p)]
    for p in bad:
        err("periods", f"{p!r} is not a period (2019, 2019-07, 2019-Q3 or 2019-H2)")
    if not bad:
        if len(set(periods)) != len(periods):
            err("periods", "a period is listed twice")
        elif [period_order(p) for p in periods] != sorted(period_order(p) for p in periods):
            err("periods", "periods must be listed in time order")
        elif len({period_order(p)[2] for p in periods}) > 1:
            err("periods", "all periods must be of one length (years, halves, quarters or "
                "months)")

    _schedule_problems(terms, err)
    keys = _party_problems(terms, err, party_exists, region_exists)
    _condition_problems(terms, err, keys, known_sections, region_exists)
    return errors


def _schedule_problems(terms: Mapping[str, Any], err: Callable[[str, str], None]) -> None:
    plan = terms["schedule"]
    kind = plan.get("type")
    if kind not in schedule.SCHEDULE_TYPES:
        err("schedule.type", f"one of {', '.join(schedule.SCHEDULE_TYPES)}")
        return
    amounts = plan.get("amounts_fen")
    if kind == "instalments":
        if not isinstance(amounts, list) or len(amounts) != len(terms["periods"]):
            err("schedule.amounts_fen", "one amount (fen) per period")
        elif any(a < 0 for a in amounts):
            err("schedule.amounts_fen", "instalments must not be negative")
        elif sum(amounts) != terms["amount_fen"]:
            err("schedule.amounts_fen", f"the instalments sum to {sum(amounts)} fen, not to the "
                f"agreement's amount of {terms['amount_fen']} fen")
    elif amounts is not None:
        err("schedule.amounts_fen", "only an 'instalments' schedule lists amounts")
    rate = plan.get("rate")
    if kind == "annuity":
        try:
            value = Decimal(str(rate)) if isinstance(rate, str) else None
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or not Decimal(0) <= value < Decimal(1):
            err("schedule.rate", "the rate per period as a decimal fraction in a string, "
                "0 <= rate < 1 (e.g. \"0.05\" for 5 %)")
    elif rate is not None:
        err("schedule.rate", "only an 'annuity' schedule has a rate")


def _party_problems(terms: Mapping[str, Any], err: Callable[[str, str], None],
                    party_exists: Callable[[int], bool],
                    region_exists: Callable[[str], bool]) -> set[str]:
    parties = terms["parties"]
    basis = terms["share_basis"]
    if len(parties) < 2 or len(parties) > MAX_PARTIES:
        err("parties", f"2 to {MAX_PARTIES} parties: someone pays, someone is compensated")
    keys: set[str] = set()
    for i, party in enumerate(parties):
        where = f"parties.{i}"
        if not KEY_RE.match(party["key"]):
            err(f"{where}.key", "1-30 characters: lowercase letters, digits and '_', starting "
                "with a letter")
        elif party["key"] in keys:
            err(f"{where}.key", f"{party['key']!r} names two parties")
        keys.add(party["key"])
        if not party_exists(party["party_id"]):
            err(f"{where}.party_id", f"no active party {party['party_id']} in the catalog")
        region = party.get("region_code")
        if region is not None and not region_exists(region):
            err(f"{where}.region_code", f"no region {region} in the catalog")
        if region is None and terms["kind"] == "horizontal":
            err(f"{where}.region_code", "a horizontal agreement is between regions: name the "
                "region (GB/T 2260 code) each party acts for")
        for field in ("contribution_share", "allocation_share"):
            if party[field] < 0:
                err(f"{where}.{field}", "a share must not be negative")
    for field, what in (("contribution_share", "contribution"),
                        ("allocation_share", "allocation")):
        total = sum(p[field] for p in parties)
        if total != basis:
            err(f"parties.{field}", f"the {what} shares sum to {total}, not to the whole "
                f"(share_basis {basis})")
    return keys


def gep_section(gep: Mapping[str, Any]) -> str:
    """The key a GEP condition's value is filed under (in place of a section code): region
    and base year (`prev`: the year before the period's)."""
    return f"GEP:{gep['region_code']}:{gep.get('base_year') or 'prev'}"


def period_year(period: str) -> int:
    """The calendar year of a period (2019, 2019-07, 2019-Q3, 2019-H2 -> 2019)."""
    return int(period[:4])


def gep_years(gep: Mapping[str, Any], period: str) -> tuple[int, int]:
    """(base year, year) a GEP condition compares for a period."""
    year = period_year(period)
    return (gep.get("base_year") or year - 1), year


def _gep_problems(condition: Mapping[str, Any], where: str, periods: list[str],
                  err: Callable[[str, str], None], region_exists: Callable[[str], bool]
                  ) -> None:
    gep = condition["gep"]
    if condition.get("section") is not None:
        err(f"{where}.section", "a condition on gep reads published valuation runs, not a "
            "section: leave section out")
    if condition["indicator"] != "gep_change_percent":
        err(f"{where}.indicator", "a condition on gep is a gep_change_percent")
    if not region_exists(gep["region_code"]):
        err(f"{where}.gep.region_code", f"unknown region {gep['region_code']!r}")
    base = gep.get("base_year")
    if base is not None:
        late = [p for p in periods if PERIOD_RE.match(p) and period_year(p) <= base]
        if late:
            err(f"{where}.gep.base_year", f"{base} is not before the year of period "
                f"{late[0]}: a change is measured against an earlier year")


def _condition_problems(terms: Mapping[str, Any], err: Callable[[str, str], None],
                        keys: set[str], known_sections: Collection[str],
                        region_exists: Callable[[str], bool]) -> None:
    conditions = terms["conditions"]
    basis = terms["share_basis"]
    if len(conditions) > MAX_CONDITIONS:
        err("conditions", f"at most {MAX_CONDITIONS} conditions")
    seen: set[str] = set()
    by_key = {p["key"]: p for p in terms["parties"]}
    for i, condition in enumerate(conditions):
        where = f"conditions.{i}"
        if not KEY_RE.match(condition["key"]) or condition["key"] in seen:
            err(f"{where}.key", "a unique key: lowercase letters, digits and '_'")
        seen.add(condition["key"])
        if condition.get("gep") is not None:
            _gep_problems(condition, where, terms["periods"], err, region_exists)
        elif condition.get("section") is None:
            err(f"{where}.section", "required: a registered section, or gep for a GEP change "
                "from published valuation runs")
        elif condition["section"] not in known_sections:
            err(f"{where}.section", f"unknown section {condition['section']!r}: register it "
                "first (POST /compensation/sections)")
        indicator = condition["indicator"]
        if indicator not in clearing.INDICATORS:
            err(f"{where}.indicator", f"one of {', '.join(clearing.INDICATORS)}")
        elif indicator_value(indicator, condition["target"]) is None:
            err(f"{where}.target", "a water-quality class (I..V, 劣V or 1..6)"
                if indicator == "water_quality_class" else "a number (forest coverage 0-100)")
        comparison = condition.get("comparison")
        if comparison is not None and comparison not in clearing.COMPARISONS:
            err(f"{where}.comparison", f"one of {', '.join(clearing.COMPARISONS)}")
        failure = condition["on_failure"]
        party = failure["party"]
        if party not in keys:
            err(f"{where}.on_failure.party", f"no party {party!r} in this agreement")
        elif by_key[party]["allocation_share"] == 0:
            err(f"{where}.on_failure.party", f"{party!r} receives no allocation to clear")
        action = failure["action"]
        recipients = failure.get("to") or []
        if action not in clearing.ACTIONS:
            err(f"{where}.on_failure.action", f"one of {', '.join(clearing.ACTIONS)}")
        elif action == "withhold" and recipients:
            err(f"{where}.on_failure.to", "a withheld allocation returns to the contributors; "
                "name recipients with 'redirect' or 'split'")
        elif action == "redirect" and len(recipients) != 1:
            err(f"{where}.on_failure.to", "'redirect' pays one named party ('split' pays "
                "several)")
        elif action == "split":
            if len(recipients) < 2:
                err(f"{where}.on_failure.to", "'split' pays two or more named parties")
            elif sum(r.get("share") or 0 for r in recipients) != basis or any(
                    (r.get("share") or 0) <= 0 for r in recipients):
                err(f"{where}.on_failure.to", f"the split's shares must be positive and sum to "
                    f"the whole (share_basis {basis})")
        names = [r["party"] for r in recipients]
        for j, name in enumerate(names):
            if name not in keys:
                err(f"{where}.on_failure.to.{j}.party", f"no party {name!r} in this agreement")
            elif name == party:
                err(f"{where}.on_failure.to.{j}.party", "the party whose allocation is "
                    "withheld cannot receive it")
        if len(set(names)) != len(names):
            err(f"{where}.on_failure.to", "a party is named twice")
        portion = failure.get("portion_bp", clearing.WHOLE_BP)
        if not 0 < portion <= clearing.WHOLE_BP:
            err(f"{where}.on_failure.portion_bp", "basis points of the allocation affected: "
                "1 to 10000 (the whole)")


# --- the parts, for clearing and schedules -----------------------------------------------------


def parties_of(terms: Mapping[str, Any]) -> list[clearing.Party]:
    return [clearing.Party(p["key"], p["contribution_share"], p["allocation_share"])
            for p in terms["parties"]]


def conditions_of(terms: Mapping[str, Any]) -> list[clearing.Condition]:
    result = []
    for c in terms["conditions"]:
        failure = c["on_failure"]
        target = indicator_value(c["indicator"], c["target"])
        assert target is not None  # validated
        result.append(clearing.Condition(
            key=c["key"], section=gep_section(c["gep"]) if c.get("gep") else c["section"],
            indicator=c["indicator"], target=target,
            comparison=c.get("comparison") or clearing.INDICATORS[c["indicator"]][1],
            party=failure["party"], action=failure["action"],
            recipients=tuple(clearing.Recipient(r["party"], r.get("share") or 1)
                             for r in failure.get("to") or []),
            portion_bp=failure.get("portion_bp", clearing.WHOLE_BP)))
    return result


def gep_conditions(terms: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The `gep` of each condition that has one, by condition key."""
    return {c["key"]: c["gep"] for c in terms["conditions"] if c.get("gep")}


def schedule_of(terms: Mapping[str, Any]) -> list[schedule.Instalment]:
    plan = terms["schedule"]
    return schedule.build(plan["type"], terms["amount_fen"], terms["periods"],
                          amounts_fen=plan.get("amounts_fen"),
                          rate=Decimal(plan["rate"]) if plan.get("rate") is not None else None)
