"""Bulk import of products and monitoring records (catalog.imports reads and checks the file;
this module checks it against the database and writes it).

- A dry run reports every error of the file at once, or what a commit would do, and writes
  nothing. A commit with any error writes nothing either (one transaction, all or nothing).
- Natural keys make imports idempotent. Products: (region_code, type, name_zh). Monitoring
  records: (product, metric, year/month, method). A row whose key exists UPDATES that record
  when a value differs and is SKIPPED (counted `unchanged`) when nothing differs, so importing
  the same file twice creates no duplicates and changes nothing the second time (not even an
  import batch or an audit event: nothing happened). A blank
  cell, like an absent column, leaves the stored field alone; `[清空]` clears it (not in the
  columns a product always has). The report lists each change (old -> new) and its lifecycle
  consequence, on a dry run too.
- Places by name (县(市)/乡镇/村, 所在地) are resolved in the region hierarchy
  (catalog.places); vocabulary cells through labels and synonyms (catalog.services.synonyms);
  holders not registered yet are created in the same transaction (`NewHolder`).
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

from catalog import imports, lifecycle, places, vocabulary
from catalog.errors import FileTooLarge, ImportRejected
from catalog.identifiers import (
    bank_account_error,
    id_number_error,
    mask_name,
    normalize_code,
    uscc_error,
)
from catalog.models import ImportBatch, MonitoringRecord, Party, Product, ProductVersion, Region
from catalog.services import parties, synonyms
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
_PRODUCT_FIELD_COLUMNS = imports.PRODUCT_FIELD_COLUMNS
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
    #: per product changed (or that would change): row, product, fields old -> new, and the
    #: lifecycle consequence (e.g. "verified → registered: attested fields change")
    changes: list[dict] = dataclasses.field(default_factory=list)
    #: rights holders not yet registered that the import creates (kind, name, county, credit
    #: code when given, identified, the rows naming them)
    holders_to_create: list[dict] = dataclasses.field(default_factory=list)
    #: parties the commit created (0 on a dry run)
    parties_created: int = 0


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


@dataclasses.dataclass
class NewHolder:
    """A rights holder the file names that is not registered yet: created by the commit."""

    kind: str
    name_zh: str
    county_code: str
    credit_code: str | None
    id_number: str | None  #: never reported: only its masked form
    bank_account: str | None
    bank_name: str | None
    rows: list[int] = dataclasses.field(default_factory=list)
    region_codes: set[str] = dataclasses.field(default_factory=set)

    @property
    def region_code(self) -> str:
        """Where it is registered: the one region its rows share, else their county."""
        return next(iter(self.region_codes)) if len(self.region_codes) == 1 else self.county_code

    def report(self) -> dict:
        return {"kind": self.kind, "name_zh": self.name_zh, "county_code": self.county_code,
                "region_code": self.region_code, "credit_code": self.credit_code,
                "id_number_masked": protect.mask_id_number(self.id_number)
                if self.id_number else None,
                "identified": self.kind != "enterprise" or self.credit_code is not None,
                "rows": self.rows}


def _holder_lookup(session: Session, by_id: set[int], by_code: set[str], by_index: set[str],
                   by_name: set[str]) -> dict[int, Any]:
    columns = (Party.id, Party.name_zh, Party.region_code, Party.active, Party.credit_code,
               Party.id_number_index)
    found: dict[int, Any] = {}
    for column, values in ((Party.id, by_id), (Party.credit_code, by_code),
                           (Party.id_number_index, by_index), (Party.name_zh, by_name)):
        for row in _select_in(session, lambda chunk, c=column: sa.select(*columns)
                              .where(c.in_(chunk)), values):
            found[row.id] = row
    return found


def _resolve_holders(session: Session, rows: pd.DataFrame, errors: imports.Errors
                     ) -> tuple[pd.Series, dict[tuple, NewHolder]]:
    """Party ids for the `holder` cells: `#id`, a credit code, a household's ID-card number
    (matched through the blind index; never echoed), or a party name unique in the county
    (with the 统一社会信用代码 / 身份证号 columns, the code decides). A name no party of the
    county has is a holder to create (`NewHolder`, kind from 权利人类型 or from the name); the
    Series holds the id, the new holder's key, or None (blank cell, or a row whose place is
    unknown: its error is elsewhere)."""
    protector = protect.protector()
    holders, counties = rows["holder"], rows["county_code"]

    def text_or_none(name: str) -> list[str | None]:
        return [v if isinstance(v, str) and v else None for v in rows[name]]

    credits, id_numbers = text_or_none("holder_credit_code"), text_or_none("holder_id_number")
    by_id: set[int] = set()
    by_code: set[str] = set()
    by_index: set[str] = set()
    by_name: set[str] = set()
    for text, credit, id_number in zip(holders, credits, id_numbers, strict=True):
        if not text:
            continue
        stripped = text.lstrip("#")
        code = normalize_code(text)
        if stripped.isascii() and stripped.isdigit() and (text.startswith("#")
                                                           or len(stripped) < 15):
            by_id.add(int(stripped))
        elif len(code) == 18 and uscc_error(code) is None:
            by_code.add(code)
        elif len(code) == 18 and id_number_error(code) is None:
            by_index.add(protector.blind_index(code))
        else:
            by_name.add(text)
        if credit and uscc_error(credit) is None:
            by_code.add(credit)
        if id_number and id_number_error(id_number) is None:
            by_index.add(protector.blind_index(id_number))
    found = _holder_lookup(session, by_id, by_code, by_index, by_name)
    ids_by_code = {r.credit_code: r.id for r in found.values() if r.credit_code}
    ids_by_index = {r.id_number_index: r.id for r in found.values() if r.id_number_index}
    names: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in found.values():
        names[(r.name_zh, r.region_code[:6])].append(r.id)

    new_holders: dict[tuple, NewHolder] = {}
    result: list[Any] = []

    def fail(row: int, field: str, message: str) -> None:
        errors.add([row], field, message)
        result.append(None)

    for row, text, county, region, credit, id_number, kind, account, bank in zip(
            rows.index, holders, counties, rows["region_code"], credits, id_numbers,
            text_or_none("holder_kind"), text_or_none("holder_bank_account"),
            text_or_none("holder_bank_name"), strict=True):
        county = county if isinstance(county, str) else None
        kind = kind if isinstance(kind, str) else None
        if not text:
            result.append(None)
            continue
        stripped, code = text.lstrip("#"), normalize_code(text)
        party_id: int | None = None
        if stripped.isascii() and stripped.isdigit() and (text.startswith("#")
                                                           or len(stripped) < 15):
            party_id = int(stripped) if int(stripped) in found else None
            if party_id is None:
                fail(row, "holder", f"no party {text}")
                continue
        elif len(code) == 18 and uscc_error(code) is None:
            party_id = ids_by_code.get(code)
            if party_id is None:
                fail(row, "holder", f"no party with credit code {code}: write the holder's "
                                    f"name in 权利人 and the code in 统一社会信用代码 to register "
                                    f"it")
                continue
        elif len(code) == 18 and id_number_error(code) is None:
            party_id = ids_by_index.get(protector.blind_index(code))
            if party_id is None:
                fail(row, "holder", f"no household with ID-card number "
                                    f"{protect.mask_id_number(code)}: write the head's name in "
                                    f"权利人 and the number in 身份证号 to register it")
                continue
        elif _ID_SHAPE.match(code) or _ID_LIKE.match(code):
            fail(row, "holder", f"{protect.mask_id_number(code)} is not a valid ID-card number "
                                f"({id_number_error(code)})")
            continue
        elif _USCC_SHAPE.match(code):
            fail(row, "holder", f"{code} is not a valid credit code ({uscc_error(code)})")
            continue
        else:  # a name, perhaps with its identifier in the holder columns
            if credit and (message := uscc_error(credit)) is not None:
                fail(row, "holder_credit_code", f"{credit} is not a valid credit code "
                                                f"({message})")
                continue
            if id_number and (message := id_number_error(id_number)) is not None:
                fail(row, "holder_id_number", f"{protect.mask_id_number(id_number)} is not a "
                                              f"valid ID-card number ({message})")
                continue
            if account and (message := bank_account_error(account)) is not None:
                fail(row, "holder_bank_account", message)
                continue
            identified_by = (ids_by_code.get(credit) if credit else
                             ids_by_index.get(protector.blind_index(id_number))
                             if id_number else None)
            if identified_by is not None:
                if found[identified_by].name_zh != text:
                    fail(row, "holder", f"the {'credit code' if credit else 'ID-card number'} "
                                        f"belongs to party #{identified_by} "
                                        f"{found[identified_by].name_zh!r}, not {text!r}")
                    continue
                party_id = identified_by
            elif county is None:
                result.append(None)  # the place is unknown: reported on its own column
                continue
            else:
                candidates = [] if (credit or id_number) else names.get((text, county), [])
                if len(candidates) > 1:
                    fail(row, "holder", f"{len(candidates)} parties named {text!r} in "
                                        f"county {county}: "
                                        f"{', '.join(f'#{c}' for c in sorted(candidates))}; "
                                        f"write #id or the credit code")
                    continue
                if candidates:
                    party_id = candidates[0]
                else:
                    kind = kind or ("household" if id_number else
                                    imports.holder_kind_from_name(text))
                    if kind is None:
                        fail(row, "holder", f"{text!r} is not registered in county {county} "
                                            f"and its kind cannot be told from the name: add a "
                                            f"权利人类型 column (村集体, 合作社, 农户, 企业, 政府)")
                        continue
                    if kind == "household" and not id_number:
                        fail(row, "holder", f"{text!r} is not registered: a new household "
                                            f"needs its head's ID-card number (身份证号 column)")
                        continue
                    if kind == "household" and credit:
                        fail(row, "holder_credit_code", "a household carries an ID-card "
                                                        "number, not a credit code")
                        continue
                    if kind != "household" and (id_number or account):
                        fail(row, "holder_id_number" if id_number else "holder_bank_account",
                             "only a household holder carries an ID-card number and a "
                             "personal bank account")
                        continue
                    key = (kind, text, county, credit,
                           protector.blind_index(id_number) if id_number else None)
                    holder = new_holders.setdefault(key, NewHolder(
                        kind=kind, name_zh=text, county_code=county, credit_code=credit,
                        id_number=id_number, bank_account=account, bank_name=bank))
                    holder.rows.append(int(row))
                    if isinstance(region, str):
                        holder.region_codes.add(region)
                    result.append(key)
                    continue
        if not found[party_id].active:
            fail(row, "holder", f"party {party_id} is deactivated")
            continue
        result.append(party_id)
    return pd.Series(result, index=rows.index, dtype=object), new_holders


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


def _resolve_places(session: Session, actor: Principal, rows: pd.DataFrame,
                    errors: imports.Errors) -> None:
    """Fill `region_code` (and `county_code`) of the rows that name their place (县(市)/乡镇/村
    columns or 所在地); a code given beside the names must be the place they name."""
    named = [any(v for v in names.values()) for names in rows["place_names"]]
    if not any(named):
        return
    index = places.PlaceIndex(places.Region(code, level, name_zh, parent) for
                              code, level, name_zh, parent in session.execute(
                                  sa.select(Region.code, Region.level, Region.name_zh,
                                            Region.parent_code)))
    scope = actor.county_code
    cache: dict[tuple, tuple[str | None, str | None, str | None]] = {}
    codes = rows["region_code"].tolist()
    for position, (row, names, has_names) in enumerate(zip(rows.index, rows["place_names"],
                                                          named, strict=True)):
        if not has_names:
            continue
        key = tuple(sorted(names.items()))
        if key not in cache:
            code: str | None
            field: str | None = None
            message: str | None = None
            if any(names[level] for level in places.PLACE_LEVELS):
                code, problem = index.resolve_columns(
                    {level: names[level] for level in places.PLACE_LEVELS}, scope)
                if problem is not None:
                    field, message = f"{problem[0]}_name", problem[1]
                elif names["location"]:
                    inside, message = index.resolve_location(names["location"], scope)
                    if message is not None:
                        field = "location"
                    elif code is not None and inside is not None and not index.is_within(
                            inside, code) and not index.is_within(code, inside):
                        field, message = "location", (
                            f"{names['location']!r} is {inside} {index.full_name(inside)}, "
                            f"not in {index.full_name(code)}")
                    else:
                        code = inside if inside and code and index.is_within(inside, code) \
                            else code
            else:
                code, message = index.resolve_location(names["location"], scope)
                if message is not None:
                    field = "location"
            cache[key] = (code, field, message)
        code, field, message = cache[key]
        if message is not None:
            assert field is not None
            errors.add([row], field, message)
            codes[position] = None
            continue
        given = codes[position]
        if given is not None and given != code:
            errors.add([row], "region_code",
                       f"{given} is not the place the names say: {code} "
                       f"{index.full_name(code) if code else ''}")
            codes[position] = None
            continue
        codes[position] = code
    rows["region_code"] = pd.Series(codes, index=rows.index, dtype=object)
    rows["county_code"] = rows["region_code"].str[:6]


def _display(field: str, value: Any, holders: dict[int, str]) -> Any:
    """A field's value as the dry run shows it: the holder as `#id name` (a household's name
    masked), a new holder as `new: name`."""
    if field != "holder_party_id" or value is None:
        return value
    if isinstance(value, tuple):
        return f"new {value[0]}: {value[1]}"
    return f"#{value} {holders.get(value, '')}".strip()


def _holder_labels(session: Session, ids: Iterable[int]) -> dict[int, str]:
    labels: dict[int, str] = {}
    for pid, kind, name in _select_in(session, lambda chunk: sa.select(
            Party.id, Party.kind, Party.name_zh).where(Party.id.in_(chunk)), set(ids)):
        labels[pid] = (mask_name(name) or "") if kind == "household" else name
    return labels


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
    rows, pure_errors = imports.check_products(table, synonyms.lookup_tables(session))
    errors = imports.Errors(table.headers)
    errors.items.extend(pure_errors)
    _resolve_places(session, actor, rows, errors)
    _scope_errors(actor, table, rows["county_code"], actions,
                  "region_code" if "region_code" in table.headers else next(
                      c for c in imports.PLACE_COLUMNS if c in table.headers))
    _check_regions(session, table, rows["region_code"], errors)
    imports.duplicate_keys(rows, errors)
    rows["holder_party_id"], new_holders = _resolve_holders(session, rows, errors)

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
    updates: list[tuple[dict, dict, set[str], int]] = []  # stored, values, changed, row
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
            if None in key:
                continue  # its key is wrong: reported already
            if not row["holder"]:
                errors.add([row_number], "holder", "a rights holder is required for a new "
                                                   "product")
            if "rights_type" in row["blank_fields"]:
                errors.add([row_number], "rights_type", "a rights type is required for a new "
                                                        "product")
            if row["quantity"] is None and row["quantity_unit"] is not None:
                errors.add([row_number], "quantity", "a unit without a quantity")
            row["development_status"] = row["development_status"] or "not_developed"
            inserts.append({"row": row_number, **row})
            continue
        blank = set(row["blank_fields"])
        values = {f: row[f] for f in fields if f not in blank}
        if "quantity_unit" in values and "quantity" not in values and values[
                "quantity_unit"] != stored["quantity_unit"]:
            errors.add([row_number], "quantity_unit",
                       f"the unit changes ({stored['quantity_unit']} -> "
                       f"{values['quantity_unit']}) but the quantity is blank: give the "
                       f"quantity in the new unit")
            continue
        changed = {f for f, v in values.items() if stored[f] != v}
        if not changed:
            report.unchanged += 1
        elif stored["status"] not in lifecycle.EDITABLE_STATES:
            errors.add([row_number], "name_zh", f"product {stored['id']} is {stored['status']}; "
                                                "imports do not change it")
        else:
            updates.append((stored, values, changed, row_number))
    _reject(errors.items, report.rows)
    report.created = len(inserts)
    report.updated = len(updates)
    report.holders_to_create = [h.report() for h in new_holders.values()]
    labels = _holder_labels(session, [v for s, vals, _, _ in updates
                                      for v in (s["holder_party_id"], vals.get(
                                          "holder_party_id")) if isinstance(v, int)])
    for stored, values, changed, row_number in updates:
        back = lifecycle.reverification_needed(stored["status"], changed)
        report.sent_back_for_verification += int(back)
        if len(report.changes) < imports.MAX_REPORTED_ERRORS:
            report.changes.append({
                "row": row_number, "product_id": stored["id"], "name_zh": stored["name_zh"],
                "status": stored["status"],
                "fields": [{"field": f, "old": _display(f, stored[f], labels),
                            "new": _display(f, values[f], labels)} for f in sorted(changed)],
                "lifecycle": (f"{stored['status']} → registered: attested fields change "
                              f"({', '.join(sorted(changed & lifecycle.ATTESTED_FIELDS))})"
                              if back else None)})
    if dry_run or not (inserts or updates):
        return report  # nothing to write: no batch, no audit event

    batch = _record_batch(session, actor, "products", filename, table, report, now)
    created_parties = {}
    for key, holder in new_holders.items():
        party = parties.create_party(session, actor, {
            "kind": holder.kind, "name_zh": holder.name_zh, "region_code": holder.region_code,
            "credit_code": holder.credit_code, "id_number": holder.id_number,
            "bank_account": holder.bank_account, "bank_name": holder.bank_name,
            "attributes": {"created_by_import_batch": batch.id}}, allow_unidentified=True)
        created_parties[key] = party.id
    report.parties_created = len(created_parties)

    def holder_id(value: Any) -> Any:
        return created_parties[value] if isinstance(value, tuple) else value

    for r in inserts:
        r["holder_party_id"] = holder_id(r["holder_party_id"])
    for _, values, _, _ in updates:
        if "holder_party_id" in values:
            values["holder_party_id"] = holder_id(values["holder_party_id"])

    new_rows = [{
        "external_code": r["external_code"], "name_zh": r["name_zh"], "name_en": r["name_en"],
        "category": r["category"], "type_code": r["type_code"], "region_code": r["region_code"],
        "county_code": r["county_code"], "holder_party_id": int(r["holder_party_id"]),
        "rights_type": r["rights_type"], "area_ha": r["area_ha"], "latitude": r["latitude"],
        "longitude": r["longitude"], "grid_cell_id": r["grid_cell_id"],
        "quantity": r["quantity"], "quantity_unit": r["quantity_unit"],
        "quality_grade": r["quality_grade"], "development_status": r["development_status"],
        "brand": r["brand"], "certifications": r["certifications"] or [],
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
        [stored["id"] for stored, _, _, _ in updates])}
    for stored, values, changed, _ in updates:
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
        "updated_ids": _id_ranges(s["id"] for s, _, _, _ in updates),
        "parties_created": sorted(created_parties.values()),
        "changes": report.changes,
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


# --- parties ---------------------------------------------------------------------------------


def import_parties(session: Session, actor: Principal, data: bytes, filename: str, *,
                   dry_run: bool = False, max_bytes: int | None = None) -> ImportReport:
    """Import a register of parties (village collectives, cooperatives, households with the
    head's ID-card number and bank account, enterprises, bodies), the villager registers that
    benefit sharing needs. A row matches a stored party by credit code, by ID-card number
    (blind index) or, without either, by name and kind in the county: matched rows are
    `unchanged`, except that a household's bank account or bank given (and different) is
    updated -- a blank cell never erases. New ones are created through the party service
    (validation, encryption of personal data, one audit event each), all or nothing.
    Personal data are never echoed: the report shows masked ID-card numbers only."""
    actions = ["catalog.party.write"]
    table = _start(session, actor, data, max_bytes, imports.PARTY_COLUMNS, actions)
    report = ImportReport("parties", dry_run, filename, table.encoding,
                          hashlib.sha256(data).hexdigest(), len(table.frame),
                          ignored_columns=table.ignored_columns)
    rows, pure_errors = imports.check_parties(table, synonyms.lookup_tables(session))
    errors = imports.Errors(table.headers)
    errors.items.extend(pure_errors)
    _resolve_places(session, actor, rows, errors)
    _scope_errors(actor, table, rows["county_code"], actions,
                  "region_code" if "region_code" in table.headers else next(
                      c for c in imports.PLACE_COLUMNS if c in table.headers))
    known = set(r for r, in _select_in(session, lambda chunk: sa.select(Region.code)
                                       .where(Region.code.in_(chunk)),
                                       list(rows["region_code"].dropna().unique())))
    unknown = rows["region_code"].notna() & ~rows["region_code"].isin(list(known))
    errors.mask_values(unknown, rows["region_code"], "region_code", "unknown region code {}")
    protector = protect.protector()
    plans: list[tuple[int, dict, Party | None]] = []
    seen: dict[Any, int] = {}
    for row_number, row in _records(rows):
        if row["kind"] is None or not row["name_zh"] or row["region_code"] is None:
            continue
        for field, check in (("credit_code", uscc_error), ("id_number", id_number_error),
                             ("bank_account", bank_account_error)):
            value = row[field]
            if value and (message := check(value)) is not None:
                shown = protect.mask_id_number(value) if field == "id_number" else value
                errors.add([row_number], field, f"{shown}: {message}" if field != "bank_account"
                           else message)
                break
        else:
            id_index = protector.blind_index(row["id_number"]) if row["id_number"] else None
            key = (row["credit_code"] or id_index or
                   (row["kind"], row["name_zh"], row["county_code"]))
            if key in seen:
                errors.add([row_number], "name_zh", f"the same party as row {seen[key]}")
                continue
            seen[key] = row_number
            party = None
            if row["credit_code"]:
                party = session.scalar(sa.select(Party).where(
                    Party.credit_code == row["credit_code"]))
            elif id_index:
                party = session.scalar(sa.select(Party).where(Party.id_number_index == id_index))
            else:
                matches = session.scalars(sa.select(Party).where(
                    Party.name_zh == row["name_zh"], Party.kind == row["kind"],
                    Party.region_code.startswith(row["county_code"], autoescape=True))).all()
                if len(matches) > 1:
                    errors.add([row_number], "name_zh", f"{len(matches)} parties named "
                               f"{row['name_zh']!r} in county {row['county_code']}: "
                               f"{', '.join(f'#{p.id}' for p in matches)}; add the credit code")
                    continue
                party = matches[0] if matches else None
            if row["kind"] == "household" and party is None and not row["id_number"]:
                errors.add([row_number], "id_number", "a new household needs its head's "
                                                      "ID-card number")
                continue
            plans.append((row_number, row, party))
    _reject(errors.items, report.rows)
    creates, changes = [], []
    for row_number, row, party in plans:
        if party is None:
            creates.append((row_number, row))
            continue
        change = {}
        if row["bank_account"] and party.kind == "household" and (
                party.bank_account_encrypted is None
                or protector.decrypt(party.bank_account_encrypted) != row["bank_account"]):
            change["bank_account"] = row["bank_account"]
        if row["bank_name"] and row["bank_name"] != party.bank_name:
            change["bank_name"] = row["bank_name"]
        if change:
            changes.append((row_number, party, change))
            report.changes.append({
                "row": row_number, "product_id": None, "party_id": party.id,
                "name_zh": party.name_zh,
                "status": "active" if party.active else "inactive", "lifecycle": None,
                "fields": [{"field": f, "old": protect.mask_account(
                    protector.decrypt(party.bank_account_encrypted))
                    if f == "bank_account" and party.bank_account_encrypted else
                    getattr(party, f) if f != "bank_account" else None,
                    "new": protect.mask_account(v) if f == "bank_account" else v}
                    for f, v in sorted(change.items())]})
        else:
            report.unchanged += 1
    report.created, report.updated = len(creates), len(changes)
    report.holders_to_create = [{
        "kind": row["kind"], "name_zh": row["name_zh"], "county_code": row["county_code"],
        "region_code": row["region_code"], "credit_code": row["credit_code"],
        "id_number_masked": protect.mask_id_number(row["id_number"]),
        "identified": row["kind"] != "enterprise" or bool(row["credit_code"]),
        "rows": [row_number]} for row_number, row in creates]
    if dry_run or not (creates or changes):
        return report
    batch = _record_batch(session, actor, "parties", filename, table, report, utcnow())
    for _, row in creates:
        parties.create_party(session, actor, {
            "kind": row["kind"], "name_zh": row["name_zh"], "name_en": row["name_en"],
            "region_code": row["region_code"], "credit_code": row["credit_code"],
            "id_number": row["id_number"], "bank_account": row["bank_account"],
            "bank_name": row["bank_name"], "attributes": {"created_by_import_batch": batch.id}},
            allow_unidentified=True)
    for _, party, change in changes:
        parties.update_party(session, actor, party.id, change)
    report.parties_created = len(creates)
    audit.record(session, actor, "catalog.party.import", "import_batch", batch.id, after={
        "filename": filename, "sha256": report.sha256, "encoding": table.encoding,
        "rows": report.rows, "created": report.created, "updated": report.updated,
        "unchanged": report.unchanged})
    session.flush()
    return report


def list_batches(session: Session, actor: Principal, *, kind: str | None = None) -> sa.Select:
    authorize(actor, "catalog.product.read")
    stmt = sa.select(ImportBatch)
    if kind:
        stmt = stmt.where(ImportBatch.kind == kind)
    return stmt.order_by(ImportBatch.id.desc())
