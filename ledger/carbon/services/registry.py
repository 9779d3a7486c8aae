"""The public registry (no token, no personal data): projects, issuances, holdings by batch,
retirements with their certificates, exports; traceability from batches to parcels, rights
holders and monitoring records, and from parcels to batches; the registry's invariants."""

from __future__ import annotations

import itertools
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.identifiers import mask_name
from catalog.models import MonitoringRecord, Party, Product
from ecovalue.audit.models import AuditEvent
from ecovalue.audit.services import content_hash, link
from ecovalue.auth import Principal, authorize
from ecovalue.spreadsheet import write_csv, write_xlsx
from ledger import core as ledger
from ledger.carbon import errors, serials
from ledger.carbon.models import (
    CarbonAccount,
    CarbonBatch,
    CarbonBlock,
    CarbonEvent,
    CarbonHousehold,
    CarbonProject,
    CarbonProjectParcel,
    CarbonReport,
    CarbonRetirement,
    CarbonTree,
)
from ledger.carbon.services.common import fetch, get_batch, party_names
from ledger.carbon.services.projects import PUBLIC_STATES, parcel_ids_of

BLOCK_SIZE = CarbonBlock.end_serial - CarbonBlock.start_serial + 1


def holder_view(party: Party | None, *, public: bool) -> dict:
    """A party as the registry shows it: a household's name masked (王*明) to authenticated
    readers, omitted in public."""
    if party is None:
        return {"kind": None, "name_zh": None}
    if party.kind == "household":
        return {"kind": party.kind, "name_zh": None if public else mask_name(party.name_zh)}
    return {"kind": party.kind, "name_zh": party.name_zh}


# --- issuances and holdings ------------------------------------------------------------------


def list_batches(*, project: str | None = None, vintage_year: int | None = None,
                 county_code: str | None = None) -> sa.Select:
    stmt = sa.select(CarbonBatch).join(CarbonProject, CarbonProject.id == CarbonBatch.project_id)
    if project:
        stmt = stmt.where(CarbonProject.code == project)
    if vintage_year is not None:
        stmt = stmt.where(CarbonBatch.vintage_year == vintage_year)
    if county_code:
        stmt = stmt.where(CarbonProject.county_code == county_code)
    return stmt.order_by(CarbonBatch.id)


def batch_totals(session: Session, batch_ids: list[int]) -> dict[int, dict[str, int]]:
    """Tonnes per role (tradable, buffer, retired, cancelled) of each batch, from the blocks."""
    out: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(
        ("tradable", "buffer", "retired", "cancelled"), 0))
    if batch_ids:
        for batch_id, role, tonnes in session.execute(
                sa.select(CarbonBlock.batch_id, CarbonAccount.role, sa.func.sum(BLOCK_SIZE))
                .join(CarbonAccount, CarbonAccount.ledger_account_id == CarbonBlock.account_id)
                .where(CarbonBlock.batch_id.in_(batch_ids))
                .group_by(CarbonBlock.batch_id, CarbonAccount.role)):
            out[batch_id][role] = int(tonnes)
    return out


def batch_view(session: Session, batch: CarbonBatch) -> dict:
    project = session.get_one(CarbonProject, batch.project_id)
    totals = batch_totals(session, [batch.id])[batch.id]
    return {**{c.key: getattr(batch, c.key) for c in CarbonBatch.__table__.columns},
            "project_code": project.code, "project_name_zh": project.name_zh,
            "project_name_en": project.name_en, "methodology": project.methodology,
            "county_code": project.county_code, **{f"{k}_t_now": v for k, v in totals.items()}}


def holdings(session: Session, ref: int | str, *, public: bool = True) -> list[dict]:
    """Who holds how many tonnes of a batch, and which serial blocks, by account."""
    batch = get_batch(session, ref)
    rows = session.execute(
        sa.select(CarbonAccount.ledger_account_id, CarbonAccount.code, CarbonAccount.role,
                  CarbonAccount.party_id, sa.func.sum(BLOCK_SIZE), sa.func.count())
        .join(CarbonBlock, CarbonBlock.account_id == CarbonAccount.ledger_account_id)
        .where(CarbonBlock.batch_id == batch.id)
        .group_by(CarbonAccount.ledger_account_id, CarbonAccount.code, CarbonAccount.role,
                  CarbonAccount.party_id)
        .order_by(CarbonAccount.ledger_account_id)).all()
    parties = party_names(session, {r[3] for r in rows})
    return [{"account_code": code, "role": role, "holder": holder_view(parties.get(party_id),
                                                                        public=public),
             "quantity_t": int(tonnes), "block_count": int(count), "batch": batch.asset_code}
            for _id, code, role, party_id, tonnes, count in rows]


def account_blocks(session: Session, account_code: str) -> dict:
    """The serial blocks an account holds, as text, and their total."""
    account = session.scalar(sa.select(CarbonAccount).where(CarbonAccount.code == account_code))
    if account is None:
        raise errors.CarbonAccountNotFound(f"no carbon account {account_code!r}")
    batch = session.get_one(CarbonBatch, account.batch_id)
    prefix = batch.serial_block.rsplit("-", 2)[0]
    ranges = [(s, e) for s, e in session.execute(
        sa.select(CarbonBlock.start_serial, CarbonBlock.end_serial)
        .where(CarbonBlock.account_id == account.ledger_account_id)
        .order_by(CarbonBlock.start_serial))]
    return {"account_code": account.code, "quantity_t": serials.total(ranges),
            "serial_blocks": [serials.format_range(prefix, r) for r in ranges]}


def events_of(session: Session, ref: int | str) -> sa.Select:
    batch = get_batch(session, ref)
    return sa.select(CarbonEvent).where(CarbonEvent.batch_id == batch.id).order_by(
        CarbonEvent.id)


# --- retirements and certificates ------------------------------------------------------------


def list_retirements(*, beneficiary: str | None = None, purpose: str | None = None,
                     vintage_year: int | None = None, batch: str | None = None,
                     compliance_year: int | None = None) -> sa.Select:
    stmt = sa.select(CarbonRetirement)
    if beneficiary:
        stmt = stmt.where(CarbonRetirement.beneficiary_name.contains(beneficiary.strip(),
                                                                     autoescape=True))
    if purpose:
        stmt = stmt.where(CarbonRetirement.purpose == purpose)
    if vintage_year is not None:
        stmt = stmt.where(CarbonRetirement.vintage_year == vintage_year)
    if compliance_year is not None:
        stmt = stmt.where(CarbonRetirement.compliance_year == compliance_year)
    if batch:
        stmt = stmt.join(CarbonBatch, CarbonBatch.id == CarbonRetirement.batch_id).where(
            CarbonBatch.asset_code == batch)
    return stmt.order_by(CarbonRetirement.id)


def get_retirement(session: Session, ref: int | str) -> CarbonRetirement:
    if isinstance(ref, int):
        found = fetch(session, CarbonRetirement, ref)
    else:
        found = None if "\x00" in ref else session.scalar(sa.select(CarbonRetirement).where(
            CarbonRetirement.certificate_number == ref))
    if found is None:
        raise errors.RetirementNotFound(f"no retirement certificate {ref!r}")
    return found


def retirement_view(session: Session, r: CarbonRetirement) -> dict:
    batch = session.get_one(CarbonBatch, r.batch_id)
    project = session.get_one(CarbonProject, batch.project_id)
    retiree = session.get_one(Party, r.party_id)
    return {**{c.key: getattr(r, c.key) for c in CarbonRetirement.__table__.columns
               if c.key not in ("account_id", "party_id", "retired_by")},
            "batch": batch.asset_code, "serial_block_of_batch": batch.serial_block,
            "project_code": project.code, "project_name_zh": project.name_zh,
            "project_name_en": project.name_en, "county_code": project.county_code,
            "methodology": project.methodology,
            "retired_by_party": holder_view(retiree, public=True),
            "certificate_url": f"/carbon/public/certificates/{r.certificate_number}"}


def verify_certificate(session: Session, number: str, *, quantity_t: int | None,
                       beneficiary_name: str | None, audit_hash: str | None,
                       serial_blocks: list[str] | None) -> dict:
    """Does a certificate match the registry? Every field the holder shows is compared with
    the record, and the record's audit event is checked against the hash chain (its stored
    hash recomputed from its content). CertificateMismatch lists what differs."""
    retirement = get_retirement(session, number)
    problems = []
    if quantity_t is not None and quantity_t != retirement.quantity_t:
        problems.append({"field": "quantity_t", "message": f"the registry says "
                                                           f"{retirement.quantity_t}"})
    if beneficiary_name is not None and beneficiary_name.strip() != retirement.beneficiary_name:
        problems.append({"field": "beneficiary_name", "message": "differs from the registry"})
    if serial_blocks is not None and sorted(s.strip() for s in serial_blocks) != sorted(
            retirement.blocks):
        problems.append({"field": "serial_blocks", "message": "differ from the registry: "
                         + ", ".join(retirement.blocks)[:300]})
    if audit_hash is not None and audit_hash.strip().lower() != retirement.audit_hash:
        problems.append({"field": "audit_hash", "message": "not the hash of the retirement's "
                                                           "audit event"})
    event = session.get(AuditEvent, retirement.audit_seq) if retirement.audit_seq else None
    chain_ok = event is not None and event.hash == retirement.audit_hash and link(
        event.seq, event.prev_hash, content_hash(
            occurred_at=event.occurred_at, actor=event.actor, action=event.action,
            entity_type=event.entity_type, entity_id=event.entity_id, before=event.before,
            after=event.after, request_id=event.request_id)) == event.hash and (
        event.after or {}).get("certificate_number") == retirement.certificate_number
    if not chain_ok:
        problems.append({"field": "audit_hash", "message": "the registry's audit event of this "
                                                           "retirement does not verify"})
    if problems:
        for p in problems:
            p["location"] = "query"
        raise errors.CertificateMismatch(
            f"certificate {retirement.certificate_number} does not match the registry: "
            + ", ".join(p["field"] for p in problems), errors=problems)
    return {"valid": True, "certificate_number": retirement.certificate_number,
            "quantity_t": retirement.quantity_t, "serial_blocks": list(retirement.blocks),
            "beneficiary_name": retirement.beneficiary_name,
            "audit_hash": retirement.audit_hash, "audit_seq": retirement.audit_seq}


# --- exports ---------------------------------------------------------------------------------


def export(session: Session, kind: str, fmt: str, stmt: sa.Select | None = None,
           batch: str | None = None) -> bytes:
    """A public list as CSV (UTF-8 with BOM) or XLSX, with Chinese and English names."""
    stmt = stmt if stmt is not None else sa.select(CarbonBatch).where(sa.false())
    if kind == "projects":
        rows = [{"code": p.code, "name_zh": p.name_zh, "name_en": p.name_en,
                 "methodology": p.methodology, "county_code": p.county_code,
                 "status": p.status, "crediting_start": p.crediting_start,
                 "crediting_end": p.crediting_end, "buffer_share_bp": p.buffer_share_bp}
                for p in session.scalars(stmt)]
    elif kind == "issuances":
        rows = []
        for b in session.scalars(stmt):
            view = batch_view(session, b)
            rows.append({k: view[k] for k in (
                "asset_code", "serial_block", "project_code", "project_name_zh",
                "project_name_en", "vintage_year", "quantity_t", "owner_t", "buffer_t",
                "share_of_proceeds_t", "overall_mitigation_t", "retired_t_now",
                "cancelled_t_now", "issued_on")})
    elif kind == "holdings":
        rows = [{"batch": h["batch"], "account_code": h["account_code"], "role": h["role"],
                 "holder_kind": h["holder"]["kind"], "holder_name_zh": h["holder"]["name_zh"],
                 "quantity_t": h["quantity_t"], "block_count": h["block_count"]}
                for h in holdings(session, batch or "")]
    else:
        rows = []
        for r in session.scalars(stmt):
            view = retirement_view(session, r)
            rows.append({**{k: view[k] for k in (
                "certificate_number", "batch", "project_code", "project_name_zh",
                "vintage_year", "quantity_t", "beneficiary_name", "purpose",
                "compliance_year", "jurisdiction", "retired_on", "audit_hash")},
                "serial_blocks": " ".join(view["blocks"])})
    columns = list(rows[0]) if rows else []
    table = [columns, *([row[c] for c in columns] for row in rows)]
    # through the shell's one export writer: text that would start a formula stays text
    return write_csv(table) if fmt == "csv" else write_xlsx({kind: table})


# --- traceability ----------------------------------------------------------------------------


def _record_view(r: MonitoringRecord) -> dict:
    return {"id": r.id, "product_id": r.product_id, "metric": r.metric,
            "period_start": r.period_start, "period_end": r.period_end, "value": r.value,
            "unit": r.unit, "method": r.method, "source": r.source}


def trace(session: Session, actor: Principal | None, ref: int | str, *,
          public: bool) -> dict:
    """Where a batch's credits come from: its project and report, the parcels, their rights
    holders (households masked, or omitted in public), the monitoring records and the
    enrolled households of a single-tree project."""
    if not public:
        authorize(actor, "carbon.read")
    batch = get_batch(session, ref)
    project = session.get_one(CarbonProject, batch.project_id)
    report = session.get_one(CarbonReport, batch.report_id)
    products = list(session.scalars(sa.select(Product).where(
        Product.id.in_(parcel_ids_of(session, project.id))).order_by(Product.id)))
    removals: dict[int, float] = defaultdict(float)
    for line in report.calculation or []:
        if "parcel_id" in line:
            removals[line["parcel_id"]] += line["removals_tco2e"]
    records = list(session.scalars(sa.select(MonitoringRecord).where(
        MonitoringRecord.id.in_(report.record_ids or [])).order_by(MonitoringRecord.id)))
    by_product: dict[int, list[dict]] = defaultdict(list)
    for record in records:
        by_product[record.product_id].append(_record_view(record))
    parties = party_names(session, {p.holder_party_id for p in products})
    parcels = [{"product_id": p.id, "name_zh": p.name_zh, "name_en": p.name_en,
                "type_code": p.type_code, "region_code": p.region_code, "area_ha": p.area_ha,
                "rights_type": p.rights_type,
                "holder": holder_view(parties.get(p.holder_party_id), public=public),
                "removals_tco2e": removals.get(p.id),
                "monitoring_records": by_product.get(p.id, [])} for p in products]
    households = []
    if project.methodology == "single_tree":
        counts = dict(session.execute(sa.select(CarbonTree.household_id, sa.func.count())
                                      .where(CarbonTree.project_id == project.id)
                                      .group_by(CarbonTree.household_id)).all())
        for h in session.scalars(sa.select(CarbonHousehold).where(
                CarbonHousehold.project_id == project.id).order_by(CarbonHousehold.id)):
            households.append({"product_id": h.product_id, "area_mu": h.area_mu,
                               "trees": counts.get(h.id, 0),
                               "holder": holder_view(session.get_one(Party, h.party_id),
                                                     public=public)})
    return {"batch": batch.asset_code, "serial_block": batch.serial_block,
            "quantity_t": batch.quantity_t, "vintage_year": batch.vintage_year,
            "project_code": project.code, "project_name_zh": project.name_zh,
            "project_name_en": project.name_en, "methodology": project.methodology,
            "report": {"id": report.id, "period_start": report.period_start,
                       "period_end": report.period_end, "source": report.source,
                       "actual_removals_tco2e": report.actual_removals_tco2e,
                       "baseline_tco2e": report.baseline_tco2e,
                       "leakage_tco2e": report.leakage_tco2e,
                       "net_removals_tco2e": report.net_removals_tco2e,
                       "quantity_t": report.quantity_t, "input_sha256": report.input_sha256,
                       "parameter_set_version": report.parameter_set_version,
                       "verified_by": report.verified_by, "verified_at": report.verified_at},
            "parcels": parcels, "households": households}


def parcel_batches(session: Session, product_id: int) -> list[dict]:
    """The batches issued on a parcel (through the projects covering it)."""
    product = fetch(session, Product, product_id)
    if product is None:
        from catalog.errors import ProductNotFound

        raise ProductNotFound(f"no product {product_id}")
    rows = session.scalars(sa.select(CarbonBatch).join(
        CarbonProjectParcel, CarbonProjectParcel.project_id == CarbonBatch.project_id).where(
        CarbonProjectParcel.product_id == product.id).order_by(CarbonBatch.id))
    return [batch_view(session, b) for b in rows]


def public_project_filter(stmt: sa.Select) -> sa.Select:
    return stmt.where(CarbonProject.status.in_(PUBLIC_STATES))


# --- invariants ------------------------------------------------------------------------------


def verify(session: Session, actor: Principal) -> list[str]:
    """The registry's invariants, for `ecovalue ledger verify` and `ecovalue carbon verify`:
    per batch, tradable + retired + cancelled + buffer = issued; the blocks of its accounts
    cover its serial range without overlap or gap; every account's blocks are merged and
    equal its ledger balance (the issuer's: issued + balance = cancelled); retirement
    records add up to the retired blocks. Returns the problems found."""
    authorize(actor, "ledger.read")
    problems: list[str] = []
    blocks = defaultdict(list)
    for account_id, start, end in session.execute(sa.select(
            CarbonBlock.account_id, CarbonBlock.start_serial, CarbonBlock.end_serial)
            .order_by(CarbonBlock.account_id, CarbonBlock.start_serial)):
        blocks[account_id].append((start, end))
    accounts = list(session.scalars(sa.select(CarbonAccount)))
    by_batch = defaultdict(list)
    for account in accounts:
        by_batch[account.batch_id].append(account)
    retired_records = dict(session.execute(sa.select(
        CarbonRetirement.batch_id, sa.func.sum(CarbonRetirement.quantity_t))
        .group_by(CarbonRetirement.batch_id)).all())
    for batch in session.scalars(sa.select(CarbonBatch).order_by(CarbonBatch.id)):
        totals: dict[str, int] = defaultdict(int)
        held = {}
        for account in by_batch.get(batch.id, []):
            ranges = blocks.get(account.ledger_account_id, [])
            held[account.code] = ranges
            tonnes = serials.total(ranges)
            totals[account.role] += tonnes
            if any(a[1] + 1 >= b[0] for a, b in itertools.pairwise(ranges)):
                problems.append(f"{batch.asset_code}: account {account.code} has adjacent "
                                "or overlapping blocks (not merged)")
            balance = ledger.account_balance(session, actor, account.ledger_account_id).balance
            expected = tonnes - batch.quantity_t if account.role == "cancelled" else tonnes
            if balance != expected:
                problems.append(f"{batch.asset_code}: account {account.code} holds blocks of "
                                f"{tonnes} t but its ledger balance is {balance}")
        accounted = sum(totals[r] for r in ("tradable", "retired", "cancelled", "buffer"))
        if accounted != batch.quantity_t:
            problems.append(f"{batch.asset_code}: tradable {totals['tradable']} + retired "
                            f"{totals['retired']} + cancelled {totals['cancelled']} + buffer "
                            f"{totals['buffer']} = {accounted}, not the {batch.quantity_t} "
                            "issued")
        problems += [f"{batch.asset_code}: {p}" for p in serials.partition_problems(
            (batch.serial_start, batch.serial_end), held)]
        if int(retired_records.get(batch.id) or 0) != totals["retired"]:
            problems.append(f"{batch.asset_code}: retirement records total "
                            f"{retired_records.get(batch.id) or 0} t, retired blocks "
                            f"{totals['retired']} t")
    return problems

