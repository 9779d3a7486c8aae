"""Bulk import of products and monitoring records (catalog.imports reads and checks the file;
this module checks it against the database and writes it).

- A dry run reports every error of the file at once, or what a commit would do, and writes
  nothing. A commit with any error writes nothing either (one transaction, all or nothing).
- Natural keys make imports idempotent. Products: (region_code, type, name_zh). Monitoring
  records: (product, metric, year/month, method). A row whose key exists UPDATES that record
  when a value differs and is SKIPPED (counted `unchanged`) when nothing differs, so importing
  the same file twice creates no duplicates and changes nothing the second time (not even an
  import batch or an audit event: nothing happened). Optional
  columns absent from the file leave the stored fields alone; a present but empty cell clears
  the field.
- New products are created `registered` (the county's catalog; `draft` on request); existing
  products keep their state, except that a changed attested field of a verified product sends it
  back to `registered` (as an edit through the API does). Suspended and retired products are not
  changed by imports (row error).
- Scope: a registrar imports only rows of their own county; rows outside it are listed, and the
  whole file is refused with 403.
- Trail: each product created or changed gets a product_versions entry pointing to the import
  batch; monitoring records carry the batch id; the audit trail gets ONE event per batch with the
  file's SHA-256, the counts, the ids written and the previous values of changed records. One
  event per row would serialise 100,000 hash-chain appends behind the audit lock for no
  additional information.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import imports, lifecycle, vocabulary
from catalog.errors import FileTooLarge, ImportRejected
from catalog.identifiers import id_number_error, normalize_code, uscc_error
from catalog.models import ImportBatch, MonitoringRecord, Party, Product, ProductVersion, Region
from ecovalue import audit, protect
from ecovalue.auth import Principal, authorize, can
from ecovalue.db import bulk_insert_records, utcnow
from ecovalue.errors import Forbidden

_CHUNK = 5000
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")
_USCC_SHAPE = re.compile(r"^[0-9A-Z]{18}$")
#: what may be an ID-card number mistyped (15-digit first-generation numbers, a digit too many or
#: too few, separators, a wrong check letter): at least 14 digits and nothing but digits,
#: - / . and one final letter. Such a cell is masked in messages like a well-formed one, never
#: echoed whole (a mistyped all-digit credit code is masked too: it is not personal, but it
#: cannot be told apart).
_ID_LIKE = re.compile(r"^(?=(?:[-/.]*\d){14})[\d\-/.]+[A-Z]?$")
#: product fields an import can set, by the file column that carries them
_PRODUCT_FIELD_COLUMNS = {
    "name_en": "name_en", "external_code": "external_code", "holder_party_id": "holder",
    "rights_type": "rights_type", "area_ha": "area_ha", "latitude": "latitude",
    "longitude": "longitude", "grid_cell_id": "grid_cell_id", "quantity": "quantity",
    "quantity_unit": "quantity_unit", "quality_grade": "quality_grade",
    "development_status": "development_status", "brand": "brand",
    "certifications": "certifications",
}
_PRODUCT_COLUMNS = [c.key for c in Product.__table__.columns]
_INITIAL_STATES = ("draft", "registered")


@dataclasses.dataclass
class ImportReport:
    kind: str
    dry_run: bool
    filename: str
    encoding: str
    sha256: str
    rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    #: verified products whose attested fields changed: back to registered
    sent_back_for_verification: int = 0
    batch_id: int | None = None
    ignored_columns: list[str] = dataclasses.field(default_factory=list)


def _chunks(values: list, size: int = _CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _select_in(session: Session, stmt_for: Any, values: Iterable) -> list:
    """Rows of `stmt_for(chunk)` over `values` in chunks (bounded IN lists)."""
    values = list(values)
    rows: list = []
    for chunk in _chunks(values):
        rows.extend(session.execute(stmt_for(chunk)).all())
    return rows


def _id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """[[first, last], ...] of a set of ids (compact in the audit trail)."""
    ranges: list[list[int]] = []
    for i in sorted(ids):
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ranges


def _clean(value: Any) -> Any:
    """pandas' missing values as None, numpy scalars as Python ones."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    return value


def _start(session: Session, actor: Principal, data: bytes, max_bytes: int | None,
           columns: tuple[imports.Column, ...], actions: list[str]) -> imports.Table:
    for action in actions:  # may this caller import at all (the county is checked per row)?
        authorize(actor, action, county=(actor.county_code if actor else None) or "")
    if max_bytes is not None and len(data) > max_bytes:
        raise FileTooLarge(f"the file has {len(data)} bytes; imports accept at most {max_bytes}")
    return imports.read_table(data, columns)


def _scope_errors(actor: Principal, table: imports.Table, counties: pd.Series,
                  actions: list[str], field: str) -> None:
    """Refuse (403) rows outside the counties the caller may write, listing each row."""
    refused = {c for c in counties.dropna().unique()
               if not all(can(actor, a, county=c) for a in actions)}
    if not refused:
        return
    mask = counties.isin(refused)
    errors = imports.Errors(table.headers)
    errors.add(mask.index[mask.to_numpy()], field,
               (f"county {c} is outside your scope ({actor.county_code})"
                for c in counties[mask]))
    raise Forbidden(f"{int(mask.sum())} rows lie outside the counties you may write; nothing "
                    f"was imported", errors=errors.sorted()[:imports.MAX_REPORTED_ERRORS])


def _reject(errors: list[dict], rows: int) -> None:
    if not errors:
        return
    errors = sorted(errors, key=lambda e: (e.get("row", 0), e.get("column", "")))
    bad_rows = len({e.get("row") for e in errors})
    shown = errors[:imports.MAX_REPORTED_ERRORS]
    more = (f"; the first {len(shown)} are listed" if len(shown) < len(errors) else "")
    raise ImportRejected(
        f"{len(errors)} errors in {bad_rows} of {rows} rows{more}; nothing was imported",
        errors=shown)


def _check_regions(session: Session, table: imports.Table, regions: pd.Series,
                   errors: imports.Errors) -> None:
    codes = [c for c in regions.dropna().unique()]
    levels = dict(_select_in(session, lambda chunk: sa.select(Region.code, Region.level)
                             .where(Region.code.in_(chunk)), codes))
    unknown = regions.notna() & ~regions.isin(list(levels))
    errors.mask_values(unknown, regions, "region_code", "unknown region code {}")
    prefecture = regions.isin([c for c, level in levels.items()
                               if level in ("province", "prefecture")])
    errors.mask(prefecture, "region_code", "a product lies in a county, township or village")


def _resolve_holders(session: Session, holders: pd.Series, counties: pd.Series,
                     errors: imports.Errors) -> pd.Series:
    """Party ids for the `holder` cells: `#id`, a credit code, a household's ID-card number
    (matched through the blind index; never echoed), or a party name unique in the county."""
    pairs = pd.DataFrame({"holder": holders, "county": counties})
    pairs = pairs[(pairs["holder"] != "")]
    by_id: dict[str, int] = {}
    by_code: dict[str, str] = {}
    by_index: dict[str, str] = {}
    by_name: set[str] = set()
    malformed: dict[str, str] = {}
    protector = protect.protector()
    for text in pairs["holder"].unique():
        stripped = text.lstrip("#")
        if stripped.isascii() and stripped.isdigit() and (
                text.startswith("#") or len(stripped) < 15):
            by_id[text] = int(stripped)
            continue
        code = normalize_code(text)
        if len(code) == 18 and uscc_error(code) is None:
            by_code[text] = code
        elif len(code) == 18 and id_number_error(code) is None:
            by_index[text] = protector.blind_index(code)
        elif _ID_SHAPE.match(code) or _ID_LIKE.match(code):
            malformed[text] = (f"{protect.mask_id_number(code)} is not a valid ID-card number "
                               f"({id_number_error(code)})")
        elif _USCC_SHAPE.match(code):
            malformed[text] = f"{code} is not a valid credit code ({uscc_error(code)})"
        else:
            by_name.add(text)
    columns = (Party.id, Party.name_zh, Party.region_code, Party.active, Party.credit_code,
               Party.id_number_index)
    found: dict[int, Any] = {}
    for column, values in ((Party.id, set(by_id.values())), (Party.credit_code,
                           set(by_code.values())), (Party.id_number_index,
                           set(by_index.values())), (Party.name_zh, by_name)):
        for row in _select_in(session, lambda chunk, c=column: sa.select(*columns)
                              .where(c.in_(chunk)), values):
            found[row.id] = row
    ids_by_code = {r.credit_code: r.id for r in found.values() if r.credit_code}
    ids_by_index = {r.id_number_index: r.id for r in found.values() if r.id_number_index}
    names: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in found.values():
        names[(r.name_zh, r.region_code[:6])].append(r.id)

    resolved: dict[tuple[str, str], int | str] = {}
    for (text, county), _ in pairs.groupby(["holder", "county"], sort=False, dropna=False):
        party_id: int | None
        if text in malformed:
            resolved[(text, county)] = malformed[text]
            continue
        if text in by_id:
            party_id = by_id[text] if by_id[text] in found else None
            problem = f"no party {text}"
        elif text in by_code:
            party_id = ids_by_code.get(by_code[text])
            problem = f"no party with credit code {by_code[text]}; register it first"
        elif text in by_index:
            party_id = ids_by_index.get(by_index[text])
            problem = (f"no household with ID-card number "
                       f"{protect.mask_id_number(normalize_code(text))}; register it first")
        else:
            candidates = names.get((text, county), []) if isinstance(county, str) else []
            party_id = candidates[0] if len(candidates) == 1 else None
            problem = (f"{len(candidates)} parties named {text!r} in county {county}: use the "
                       f"credit code or #id" if len(candidates) > 1 else
                       f"no party named {text!r} in county {county}; register it first or use "
                       f"its credit code or #id")
        if party_id is not None and not found[party_id].active:
            resolved[(text, county)] = f"party {party_id} is deactivated"
        else:
            resolved[(text, county)] = party_id if party_id is not None else problem
    per_row = [resolved.get((h, c)) if h != "" else None
               for h, c in zip(holders, counties)]
    result = pd.Series(per_row, index=holders.index, dtype=object)
    problems = result.map(lambda v: isinstance(v, str))
    errors.mask_values(problems, result, "holder", "{}")
    return result.where(~problems, None)


_PLAIN = (str, int, float, bool, type(None), list, dict)


def _snapshot_row(row: dict, now: Any, now_json: str) -> dict:
    """The JSON history entry of a product given as a dict of columns (the same shape as
    audit.snapshot of the ORM object). Values from a file are plain (lists and dicts of text);
    the batch's timestamp is rendered once, anything else goes through audit.to_jsonable."""
    out = {}
    for key in _PRODUCT_COLUMNS:
        value = row.get(key)
        out[key] = (now_json if value is now else value if isinstance(value, _PLAIN)
                    else audit.to_jsonable(value))
    return out


def _records(frame: pd.DataFrame) -> Iterator[tuple[int, dict]]:
    """(row number, {column: value}) with missing values as None, fast (column lists, not
    pandas row objects)."""
    columns = {}
    for name in frame.columns:
        series = frame[name].astype(object)
        columns[name] = series.where(series.notna(), None).tolist()
    names = list(columns)
    for position, row_number in enumerate(frame.index.tolist()):
        yield row_number, {name: columns[name][position] for name in names}


def _record_batch(session: Session, actor: Principal, kind: str, filename: str,
                  table: imports.Table, report: ImportReport, now: Any) -> ImportBatch:
    """The batch row every written import leaves, its id noted in the report."""
    batch = ImportBatch(kind=kind, filename=filename[:255], sha256=report.sha256,
                        encoding=table.encoding, rows=report.rows, created=report.created,
                        updated=report.updated, unchanged=report.unchanged,
                        county_code=actor.county_code, actor=actor.label, created_at=now)
    session.add(batch)
    session.flush()
    report.batch_id = batch.id
    return batch


def import_products(session: Session, actor: Principal, data: bytes, filename: str, *,
                    dry_run: bool = False, initial_status: str = "registered",
                    max_bytes: int | None = None) -> ImportReport:
    """Import products from a CSV/XLSX file (see the module docstring for the rules)."""
    if initial_status not in _INITIAL_STATES:
        raise ImportRejected("new products start as draft or registered",
                             errors=[{"field": "status", "message": "draft or registered"}])
    actions = ["catalog.product.write"] + (
        ["catalog.product.submit"] if initial_status == "registered" else [])
    table = _start(session, actor, data, max_bytes, imports.PRODUCT_COLUMNS, actions)
    report = ImportReport("products", dry_run, filename, table.encoding,
                          hashlib.sha256(data).hexdigest(), len(table.frame),
                          ignored_columns=table.ignored_columns)
    rows, pure_errors = imports.check_products(table)
    _scope_errors(actor, table, rows["county_code"], actions, "region_code")
    errors = imports.Errors(table.headers)
    errors.items.extend(pure_errors)
    _check_regions(session, table, rows["region_code"], errors)
    rows["holder_party_id"] = _resolve_holders(session, rows["holder"], rows["county_code"],
                                               errors)

    # existing products by natural key, set-based
    region_codes = [c for c in rows["region_code"].dropna().unique()]
    existing: dict[tuple, dict] = {}
    compared = [Product.__table__.c[name] for name in (
        "id", "region_code", "type_code", "name_zh", "status", "version",
        *_PRODUCT_FIELD_COLUMNS)]
    for record in _select_in(session, lambda chunk: sa.select(*compared)
                             .where(Product.region_code.in_(chunk)), region_codes):
        existing[(record.region_code, record.type_code, record.name_zh)] = dict(record._mapping)
    codes = rows[["county_code", "external_code"]].dropna()
    taken: dict[tuple, Any] = {}  # (county, external code) -> the owning product's row
    for record in _select_in(session, lambda chunk: sa.select(
            Product.id, Product.county_code, Product.external_code, Product.region_code,
            Product.type_code, Product.name_zh).where(
                Product.county_code.in_(list(codes["county_code"].unique())),
                Product.external_code.in_(chunk)),
            list(codes["external_code"].unique())):
        taken[(record.county_code, record.external_code)] = record

    present = set(table.headers)
    fields = [f for f, col in _PRODUCT_FIELD_COLUMNS.items() if col in present]
    now = utcnow()
    inserts: list[dict] = []
    updates: list[tuple[dict, dict, set[str]]] = []  # (stored, new values, changed fields)
    for row_number, row in _records(rows):
        key = (row["region_code"], row["type_code"], row["name_zh"])
        stored = existing.get(key)
        code_owner = taken.get((row["county_code"], row["external_code"])) \
            if row["external_code"] else None
        if code_owner is not None and (code_owner.region_code, code_owner.type_code,
                                       code_owner.name_zh) != key:
            errors.add([row_number], "external_code",
                       f"external code {row['external_code']} belongs to product "
                       f"{code_owner.id}")
        if stored is None:
            inserts.append({"row": row_number, **row})
            continue
        values = {f: row[f] for f in fields}
        changed = {f for f, v in values.items() if stored[f] != v}
        if not changed:
            report.unchanged += 1
        elif stored["status"] not in lifecycle.EDITABLE_STATES:
            errors.add([row_number], "name_zh", f"product {stored['id']} is {stored['status']}; "
                                                "imports do not change it")
        else:
            updates.append((stored, values, changed))
    _reject(errors.items, report.rows)
    report.created = len(inserts)
    report.updated = len(updates)
    report.sent_back_for_verification = sum(
        1 for stored, _, changed in updates
        if lifecycle.reverification_needed(stored["status"], changed))
    if dry_run or not (inserts or updates):
        return report  # nothing to write: no batch, no audit event

    batch = _record_batch(session, actor, "products", filename, table, report, now)

    new_rows = [{
        "external_code": r["external_code"], "name_zh": r["name_zh"], "name_en": r["name_en"],
        "category": r["category"], "type_code": r["type_code"], "region_code": r["region_code"],
        "county_code": r["county_code"], "holder_party_id": int(r["holder_party_id"]),
        "rights_type": r["rights_type"], "area_ha": r["area_ha"], "latitude": r["latitude"],
        "longitude": r["longitude"], "grid_cell_id": r["grid_cell_id"],
        "quantity": r["quantity"], "quantity_unit": r["quantity_unit"],
        "quality_grade": r["quality_grade"], "development_status": r["development_status"],
        "brand": r["brand"], "certifications": r["certifications"],
        "attributes": {"note": r["note"]} if r["note"] else {},
        "status": initial_status, "version": 1, "verified_at": None, "verified_by": None,
        "created_at": now, "created_by": actor.label, "updated_at": now,
        "updated_by": actor.label,
    } for r in inserts]
    # executemany without RETURNING (SQLite would return ids one statement per row), then the
    # new ids by natural key, set-based
    bulk_insert_records(session, Product.__table__, new_rows)
    new_ids = {}
    for record in _select_in(session, lambda chunk: sa.select(
            Product.id, Product.region_code, Product.type_code, Product.name_zh)
            .where(Product.region_code.in_(chunk), Product.created_at == now,
                   Product.version == 1), region_codes):
        new_ids[(record.region_code, record.type_code, record.name_zh)] = record.id
    created_ids = [new_ids[(r["region_code"], r["type_code"], r["name_zh"])] for r in new_rows]
    now_json = audit.to_jsonable(now)
    versions = []
    for product_id, values in zip(created_ids, new_rows, strict=True):
        values["id"] = product_id
        versions.append({"product_id": product_id, "version": 1, "change": "import",
                         "status": initial_status, "data": _snapshot_row(values, now, now_json),
                         "changed_fields": [], "reason": None, "actor": actor.label,
                         "changed_at": now, "import_batch_id": batch.id})

    update_rows = []
    full = {r.id: dict(r._mapping) for r in _select_in(  # whole rows, for the history
        session, lambda chunk: sa.select(Product.__table__).where(Product.id.in_(chunk)),
        [stored["id"] for stored, _, _ in updates])}
    for stored, values, changed in updates:
        new = {**full[stored["id"]], **{f: values[f] for f in changed}}
        reason = None
        if lifecycle.reverification_needed(stored["status"], changed):
            new["status"] = "registered"
            reason = "attested fields changed after verification: needs verification again"
        new["version"] = stored["version"] + 1
        new["updated_at"], new["updated_by"] = now, actor.label
        update_rows.append({k: new[k] for k in ("id", "status", "version", "updated_at",
                                                 "updated_by", *changed)})
        versions.append({"product_id": stored["id"], "version": new["version"],
                         "change": "import", "status": new["status"],
                         "data": _snapshot_row(new, now, now_json),
                         "changed_fields": sorted(changed), "reason": reason,
                         "actor": actor.label, "changed_at": now, "import_batch_id": batch.id})
    # rows changing different fields cannot share one UPDATE statement: group by field set
    by_fields: dict[tuple, list[dict]] = defaultdict(list)
    for row in update_rows:
        by_fields[tuple(sorted(row))].append(row)
    for group in by_fields.values():
        session.execute(sa.update(Product), group)
    bulk_insert_records(session, ProductVersion.__table__, versions)
    audit.record(session, actor, "catalog.product.import", "import_batch", batch.id, after={
        "filename": filename, "sha256": report.sha256, "encoding": table.encoding,
        "rows": report.rows, "created": report.created, "updated": report.updated,
        "unchanged": report.unchanged, "initial_status": initial_status,
        "sent_back_for_verification": report.sent_back_for_verification,
        "created_ids": _id_ranges(created_ids),
        "updated_ids": _id_ranges(s["id"] for s, _, _ in updates),
    })
    session.flush()
    return report


# --- monitoring ------------------------------------------------------------------------------


def _resolve_products(session: Session, rows: pd.DataFrame, errors: imports.Errors) -> None:
    """Fill rows['product'] with the product's (id, county, type, status) or None."""
    by_id = [int(v) for v in rows["product_id"].dropna().unique()]
    regions = [c for c in rows["region_code"].dropna().unique()]
    columns = (Product.id, Product.county_code, Product.type_code, Product.status,
               Product.region_code, Product.name_zh, Product.external_code)
    found = {r.id: r for r in _select_in(
        session, lambda chunk: sa.select(*columns).where(Product.id.in_(chunk)), by_id)}
    by_key, by_code = {}, {}
    for r in _select_in(session, lambda chunk: sa.select(*columns)
                        .where(Product.region_code.in_(chunk)), regions):
        by_key[(r.region_code, r.type_code, r.name_zh)] = r
        if r.external_code:
            by_code[(r.region_code, r.external_code)] = r
    products: list = []
    for row_number, pid, region, type_code, name, code in zip(
            rows.index, rows["product_id"], rows["region_code"], rows["type_code"],
            rows["name_zh"], rows["external_code"]):
        pid, region, type_code, name, code = (_clean(v) for v in (pid, region, type_code, name,
                                                                  code))
        product = None
        if pid is not None:
            product = found.get(int(pid))
            if product is None:
                errors.add([row_number], "product_id", f"no product {int(pid)}")
        elif region is not None and code is not None:
            product = by_code.get((region, code))
            if product is None:
                errors.add([row_number], "external_code",
                           f"no product with external code {code} in region {region}")
        elif region is not None and type_code is not None and name is not None:
            product = by_key.get((region, type_code, name))
            if product is None:
                errors.add([row_number], "name_zh",
                           f"no {type_code} product named {name!r} in region {region}")
        if product is not None and product.status == "retired":
            errors.add([row_number], "product_id" if "product_id" in errors.headers
                       else "name_zh", f"product {product.id} is retired")
        products.append(product)
    rows["product"] = pd.Series(products, index=rows.index, dtype=object)


def import_monitoring(session: Session, actor: Principal, data: bytes, filename: str, *,
                      dry_run: bool = False, max_bytes: int | None = None) -> ImportReport:
    """Import monitoring records from a CSV/XLSX file (see the module docstring)."""
    actions = ["catalog.monitoring.write"]
    table = _start(session, actor, data, max_bytes, imports.MONITORING_COLUMNS, actions)
    report = ImportReport("monitoring", dry_run, filename, table.encoding,
                          hashlib.sha256(data).hexdigest(), len(table.frame),
                          ignored_columns=table.ignored_columns)
    rows, pure_errors = imports.check_monitoring(table)
    errors = imports.Errors(table.headers)
    errors.items.extend(pure_errors)
    _resolve_products(session, rows, errors)
    counties = rows["product"].map(lambda p: p.county_code if p is not None else None)
    _scope_errors(actor, table, counties, actions,
                  "product_id" if "product_id" in table.headers else "region_code")

    # the unit's dimension depends on the product's type
    types = rows["product"].map(lambda p: p.type_code if p is not None else None)
    checkable = types.notna() & rows["metric"].notna() & (rows["unit"] != "")
    triples = pd.DataFrame({"m": rows["metric"], "t": types, "u": rows["unit"]})[checkable]
    for (m, t, u), group in triples.groupby(["m", "t", "u"], sort=False):
        message = vocabulary.metric_unit_error(m, t, u)
        if message:
            errors.add(group.index, "unit", message)

    ok = rows["product"].notna() & rows["period_year"].notna() & rows["metric"].notna() \
        & rows["method"].notna()
    keyed: dict[tuple, int] = {}
    wanted: dict[tuple, dict] = {}
    for row_number, product, year, month, metric, method in zip(
            rows.index[ok], rows["product"][ok], rows["period_year"][ok],
            rows["period_month"][ok], rows["metric"][ok], rows["method"][ok]):
        month_value = None if pd.isna(month) else int(month)
        start, end = vocabulary.period_bounds(int(year), month_value)
        key = (product.id, metric, start, end, method)
        if key in keyed:
            errors.add([row_number], "metric", f"same product, metric, period and method as "
                                               f"row {keyed[key]}")
            continue
        keyed[key] = row_number
        wanted[key] = {"row": row_number, "product": product, "year": int(year),
                       "month": month_value, "start": start, "end": end}
    stored: dict[tuple, Any] = {}
    product_ids = sorted({k[0] for k in wanted})
    for record in _select_in(session, lambda chunk: sa.select(MonitoringRecord.__table__)
                             .where(MonitoringRecord.product_id.in_(chunk)), product_ids):
        stored[(record.product_id, record.metric, record.period_start, record.period_end,
                record.method)] = record
    _reject(errors.items, report.rows)

    now = utcnow()
    inserts, updates = [], []
    for key, w in wanted.items():
        row = rows.loc[w["row"]]
        values = {"value": float(row["value"]), "unit": row["unit"],
                  "source": _clean(row["source"]), "note": _clean(row["note"])}
        if "source" not in table.headers:
            values.pop("source")
        if "note" not in table.headers:
            values.pop("note")
        existing = stored.get(key)
        if existing is None:
            inserts.append({
                "product_id": w["product"].id, "county_code": w["product"].county_code,
                "period_year": w["year"], "period_month": w["month"], "period_start": w["start"],
                "period_end": w["end"], "metric": key[1], "method": key[4],
                "source": None, "note": None, **values, "recorded_by": actor.label,
                "recorded_at": now, "version": 1})
            continue
        changed = {f for f, v in values.items() if getattr(existing, f) != v}
        if changed:
            updates.append((existing, {f: values[f] for f in changed}))
        else:
            report.unchanged += 1
    report.created, report.updated = len(inserts), len(updates)
    if dry_run or not (inserts or updates):
        return report  # nothing to write: no batch, no audit event

    batch = _record_batch(session, actor, "monitoring", filename, table, report, now)
    for row in inserts:
        row["import_batch_id"] = batch.id
    bulk_insert_records(session, MonitoringRecord.__table__, inserts)
    created_ids = list(session.scalars(sa.select(MonitoringRecord.id).where(
        MonitoringRecord.import_batch_id == batch.id)))
    previous = []
    by_fields: dict[tuple, list[dict]] = defaultdict(list)
    for existing, changes in updates:
        previous.append({"id": existing.id, "version": existing.version,
                         **{f: audit.to_jsonable(getattr(existing, f)) for f in changes}})
        row = {"id": existing.id, "version": existing.version + 1, "recorded_by": actor.label,
               "recorded_at": now, "import_batch_id": batch.id, **changes}
        by_fields[tuple(sorted(row))].append(row)
    for group in by_fields.values():
        session.execute(sa.update(MonitoringRecord), group)
    audit.record(session, actor, "catalog.monitoring.import", "import_batch", batch.id, after={
        "filename": filename, "sha256": report.sha256, "encoding": table.encoding,
        "rows": report.rows, "created": report.created, "updated": report.updated,
        "unchanged": report.unchanged, "created_ids": _id_ranges(created_ids),
        "updated_previous_values": previous,
    })
    session.flush()
    return report


def list_batches(session: Session, actor: Principal, *, kind: str | None = None) -> sa.Select:
    authorize(actor, "catalog.product.read")
    stmt = sa.select(ImportBatch)
    if kind:
        stmt = stmt.where(ImportBatch.kind == kind)
    return stmt.order_by(ImportBatch.id.desc())
