"""The registry as runs see it: built-in indicators plus the active custom ones; adding and
changing custom indicators (admins)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit
from ecovalue.auth import Principal, authorize
from valuation import registry
from valuation.errors import IndicatorDefinitionInvalid, IndicatorExists, IndicatorNotFound
from valuation.models import CustomIndicator
from valuation.registry import IndicatorDef, ParameterSpec, Term


def custom_definitions(session: Session, *, include_inactive: bool = False,
                       ) -> list[IndicatorDef]:
    stmt = sa.select(CustomIndicator).order_by(CustomIndicator.code)
    if not include_inactive:
        stmt = stmt.where(CustomIndicator.active.is_(True))
    return [IndicatorDef.from_dict(c.definition) for c in session.scalars(stmt)]


def current_registry(session: Session, *, include_inactive: bool = False,
                     ) -> dict[str, IndicatorDef]:
    """Built-in indicators (reference files) followed by the custom ones."""
    return registry.merge(registry.builtin_indicators(),
                          custom_definitions(session, include_inactive=include_inactive))


def parameter_specs(session: Session) -> dict[str, ParameterSpec]:
    """Every parameter any indicator (built-in or custom, active or not) declares."""
    specs = dict(registry.builtin_parameters())
    for definition in custom_definitions(session, include_inactive=True):
        for name, spec in definition.parameters.items():
            specs.setdefault(name, spec)
    return specs


def list_indicators(session: Session, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    """Public view of the registry: each definition plus whether it is custom/active."""
    out = []
    actives = {c.code: c for c in session.scalars(sa.select(CustomIndicator))}
    for definition in current_registry(session, include_inactive=include_inactive).values():
        data = definition.to_dict()
        data["optional"] = definition.optional
        custom = actives.get(definition.code)
        data["active"] = True if custom is None else custom.active
        data["version"] = 1 if custom is None else custom.version
        out.append(data)
    return out


def get_indicator(session: Session, code: str) -> dict[str, Any]:
    for data in list_indicators(session, include_inactive=True):
        if data["code"] == code:
            return data
    raise IndicatorNotFound(f"no indicator {code}")


def _build(data: Mapping[str, Any]) -> IndicatorDef:
    terms = data.get("terms") or []
    if not terms and data.get("formula"):
        terms = [{"name": "value", "formula": data["formula"]}]
    parameters = {}
    for name, spec in (data.get("parameters") or {}).items():
        key = name.replace("[item]", "[]")
        parameters[key] = ParameterSpec(key, spec["unit"], spec.get("kind", "price"),
                                        spec.get("description", ""))
    return IndicatorDef(
        code=data["code"], category=data["category"], name_zh=data["name_zh"],
        name_en=data["name_en"], quantity_units=tuple(data.get("quantity_units") or ()),
        terms=tuple(Term(t["name"], t["formula"]) for t in terms), parameters=parameters,
        items=None if data.get("items") is None else tuple(data["items"]),
        money_quantity=bool(data.get("money_quantity", False)),
        allow_negative=bool(data.get("allow_negative", False)),
        default_enabled=bool(data.get("default_enabled", True)),
        double_counts_with=tuple(data.get("double_counts_with") or ()),
        grid=False, physical_quantity=data.get("physical_quantity", ""),
        valuation_method=data.get("valuation_method", ""),
        value_formula_text="; ".join(t["formula"] for t in terms),
        status="custom", source=data.get("source", ""), note=data.get("note", ""), custom=True,
    )


def _validate(session: Session, definition: IndicatorDef, *, replacing: str | None = None,
              ) -> None:
    known = current_registry(session, include_inactive=True)
    problems = registry.check_definition(definition, known)
    builtin_specs = registry.builtin_parameters()
    others = [d for d in custom_definitions(session, include_inactive=True)
              if d.code != replacing]
    for name, spec in definition.parameters.items():
        existing = builtin_specs.get(name)
        if existing is None:
            existing = next((d.parameters[name] for d in others if name in d.parameters), None)
        if existing is not None and (existing.unit, existing.kind) != (spec.unit, spec.kind):
            problems.append({"field": f"parameters.{name}", "message":
                             f"parameter {name} already exists with unit {existing.unit} "
                             f"({existing.kind}); reuse it as is or choose another name"})
    if problems:
        raise IndicatorDefinitionInvalid(f"the definition of {definition.code} is not valid: "
                                         f"{problems[0]['message']}", errors=problems)


def create_custom_indicator(session: Session, actor: Principal, data: Mapping[str, Any],
                            ) -> dict[str, Any]:
    """Add an indicator as data: value = formula over Q and named price-book parameters."""
    authorize(actor, "valuation.indicator.write")
    code = data["code"]
    if code in registry.builtin_indicators() or session.get(CustomIndicator, code) is not None:
        raise IndicatorExists(f"indicator code {code} is already in use")
    definition = _build(data)
    _validate(session, definition)
    row = CustomIndicator(code=code, category=definition.category, name_zh=definition.name_zh,
                          name_en=definition.name_en, definition=definition.to_dict(),
                          active=True, version=1, created_by=actor.label,
                          updated_by=actor.label)
    session.add(row)
    session.flush()
    audit.record(session, actor, "valuation.indicator.create", "valuation_indicator", code,
                 after=audit.snapshot(row))
    return get_indicator(session, code)


def update_custom_indicator(session: Session, actor: Principal, code: str,
                            changes: Mapping[str, Any]) -> dict[str, Any]:
    """Change a custom indicator (finished runs keep the definition they used)."""
    authorize(actor, "valuation.indicator.write")
    row = session.get(CustomIndicator, code, with_for_update=True)
    if row is None:
        if code in registry.builtin_indicators():
            raise IndicatorDefinitionInvalid(
                f"{code} is built in: change valuation/reference/ (a reviewed code change), or "
                "add a custom indicator with another code")
        raise IndicatorNotFound(f"no custom indicator {code}")
    before = audit.snapshot(row)
    data = {**row.definition, **{k: v for k, v in changes.items() if k != "active"}}
    if "parameters" not in changes:
        data["parameters"] = {k: {"unit": v["unit"], "kind": v["kind"],
                                  "description": v.get("description", "")}
                              for k, v in row.definition["parameters"].items()}
    data["code"] = code
    definition = _build(data)
    _validate(session, definition, replacing=code)
    row.definition = definition.to_dict()
    row.category, row.name_zh, row.name_en = (definition.category, definition.name_zh,
                                              definition.name_en)
    if "active" in changes:
        row.active = bool(changes["active"])
    row.version += 1
    row.updated_by = actor.label
    session.flush()
    audit.record(session, actor, "valuation.indicator.update", "valuation_indicator", code,
                 before=before, after=audit.snapshot(row))
    return get_indicator(session, code)
