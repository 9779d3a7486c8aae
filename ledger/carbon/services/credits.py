"""What moves credits: issuance, transfer, retirement, cancellation and reversal.

Each operation posts ONE ledger transaction through `ledger.core`'s public API and, in the
same unit of work, rewrites the serial blocks of the accounts it touched
(`carbon_blocks`): credits leave an account from its lowest serials (or exactly the serials
named), the receiving account's blocks are merged with their new neighbours, and the event
(`carbon_events`) names the blocks moved. The ledger checks the balances, periods and who may
debit what; the blocks always equal the balances (`ledger.carbon.services.verify`).

On PostgreSQL the registry rows of the accounts involved are locked first, in ascending
account id (as the ledger locks its balance rows), so concurrent moves of one account's
credits queue instead of computing blocks from a stale read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit
from ecovalue.audit.models import AuditEvent
from ecovalue.auth import Principal, authorize
from ecovalue.auth.policy import row_filter
from ecovalue.errors import Forbidden, ValidationFailed
from ledger import core as ledger
from ledger.carbon import errors, lifecycle, methodology, serials
from ledger.carbon.models import (
    RETIREMENT_PURPOSES,
    REVERSAL_CAUSES,
    CarbonAccount,
    CarbonBatch,
    CarbonBlock,
    CarbonEvent,
    CarbonProject,
    CarbonReport,
    CarbonRetirement,
    CarbonReversal,
)
from ledger.carbon.services.common import (
    fetch,
    get_batch,
    get_project,
    invalid,
    now_and_today,
    operator_party,
)
from ledger.core.rules import digest

BLOCKS = CarbonBlock.__table__
ACCOUNTS = CarbonAccount.__table__
EVENTS = CarbonEvent.__table__

_ACCOUNT_COLUMNS = (ACCOUNTS.c.ledger_account_id, ACCOUNTS.c.batch_id, ACCOUNTS.c.party_id,
                    ACCOUNTS.c.role, ACCOUNTS.c.code, ACCOUNTS.c.asset_code)
_ACCOUNT_BY_ID = sa.select(*_ACCOUNT_COLUMNS).where(
    ACCOUNTS.c.ledger_account_id == sa.bindparam("ref"))
_ACCOUNT_BY_CODE = sa.select(*_ACCOUNT_COLUMNS).where(ACCOUNTS.c.code == sa.bindparam("ref"))
_TRADABLE_OF = sa.select(*_ACCOUNT_COLUMNS).where(
    ACCOUNTS.c.batch_id == sa.bindparam("batch"), ACCOUNTS.c.party_id == sa.bindparam("party"),
    ACCOUNTS.c.role == "tradable").order_by(ACCOUNTS.c.ledger_account_id).limit(1)
_ROLE_OF = sa.select(*_ACCOUNT_COLUMNS).where(
    ACCOUNTS.c.batch_id == sa.bindparam("batch"), ACCOUNTS.c.role == sa.bindparam("role")
).order_by(ACCOUNTS.c.ledger_account_id).limit(1)
_LOCK = sa.select(ACCOUNTS.c.ledger_account_id).where(
    ACCOUNTS.c.ledger_account_id.in_(sa.bindparam("ids", expanding=True))).order_by(
    ACCOUNTS.c.ledger_account_id).with_for_update()
_BLOCKS_OF = sa.select(BLOCKS.c.id, BLOCKS.c.start_serial, BLOCKS.c.end_serial).where(
    BLOCKS.c.account_id == sa.bindparam("account")).order_by(BLOCKS.c.start_serial)
_FIRST_BLOCKS = _BLOCKS_OF.limit(sa.bindparam("n"))
_BLOCK_AT = sa.select(BLOCKS.c.id, BLOCKS.c.start_serial, BLOCKS.c.end_serial).where(
    BLOCKS.c.account_id == sa.bindparam("account"),
    BLOCKS.c.start_serial <= sa.bindparam("serial")).order_by(
    BLOCKS.c.start_serial.desc()).limit(1)
_NEIGHBOURS = sa.select(BLOCKS.c.id, BLOCKS.c.start_serial, BLOCKS.c.end_serial).where(
    BLOCKS.c.account_id == sa.bindparam("account"),
    sa.or_(BLOCKS.c.end_serial.in_(sa.bindparam("before", expanding=True)),
           BLOCKS.c.start_serial.in_(sa.bindparam("after", expanding=True))))
_DELETE_BLOCKS = BLOCKS.delete().where(BLOCKS.c.id.in_(sa.bindparam("ids", expanding=True)))
_INSERT_BLOCKS = BLOCKS.insert()
_INSERT_EVENT = EVENTS.insert().returning(EVENTS.c.id)
RETIREMENTS = CarbonRetirement.__table__
_INSERT_RETIREMENT = RETIREMENTS.insert().returning(RETIREMENTS.c.id)
_SEAL_RETIREMENT = RETIREMENTS.update().where(RETIREMENTS.c.id == sa.bindparam("r_id")).values(
    audit_seq=sa.bindparam("audit_seq"), audit_hash=sa.bindparam("audit_hash"))
_HOLDERS_OF_RANGE = sa.select(ACCOUNTS.c.role, ACCOUNTS.c.code, BLOCKS.c.start_serial,
                              BLOCKS.c.end_serial).join(
    ACCOUNTS, ACCOUNTS.c.ledger_account_id == BLOCKS.c.account_id).where(
    BLOCKS.c.batch_id == sa.bindparam("batch"),
    BLOCKS.c.start_serial <= sa.bindparam("end"), BLOCKS.c.end_serial >= sa.bindparam("start"))


@dataclasses.dataclass(frozen=True)
class BatchFacts:
    """What a movement needs of its batch, known from the account without a query."""

    id: int
    asset_code: str

    @property
    def prefix(self) -> str:
        """The serial prefix: the asset code without its batch number."""
        return self.asset_code.rsplit("-", 1)[0]

    @property
    def vintage_year(self) -> int:
        return int(self.prefix[-4:])


_BATCH_RANGE = sa.select(CarbonBatch.serial_block, CarbonBatch.serial_start,
                         CarbonBatch.serial_end).where(CarbonBatch.id == sa.bindparam("id"))


def batch_facts(account: Account) -> BatchFacts:
    return BatchFacts(account.batch_id, account.asset_code)


@dataclasses.dataclass(frozen=True)
class Account:
    """A batch account as the registry knows it."""

    id: int
    batch_id: int
    party_id: int
    role: str
    code: str
    asset_code: str


@dataclasses.dataclass(frozen=True)
class Moved:
    """The outcome of a transfer, retirement or cancellation."""

    event_id: int
    batch: BatchFacts
    source: Account
    target: Account
    quantity_t: int
    blocks: list[str]
    ledger_transaction_id: int
    retirement: CarbonRetirement | None = None


def _run(session: Session, statement: Any, params: Any = None) -> Any:
    return session.connection().execute(statement, params)


def _account(row: Any) -> Account:
    return Account(*row)


def find_account(session: Session, ref: int | str) -> Account:
    """A batch account by ledger id or code."""
    row = None
    if isinstance(ref, int) and not isinstance(ref, bool) and 0 < ref < 2**63:
        row = _run(session, _ACCOUNT_BY_ID, {"ref": ref}).first()
    elif isinstance(ref, str) and "\x00" not in ref:
        row = _run(session, _ACCOUNT_BY_CODE, {"ref": ref}).first()
    if row is None:
        raise errors.CarbonAccountNotFound(f"no carbon account {ref!r}", errors=[
            {"location": "json", "field": "account", "message": "a batch account's id or code"}])
    return _account(row)


def _role_account(session: Session, batch_id: int, role: str) -> Account:
    row = _run(session, _ROLE_OF, {"batch": batch_id, "role": role}).first()
    assert row is not None, f"batch {batch_id} has no {role} account"
    return _account(row)


def _open(session: Session, actor: Principal, batch: CarbonBatch | BatchFacts, party_id: int,
          kind: str, role: str, action: str, code: str | None = None,
          name: str | None = None) -> Account:
    account = ledger.create_account(session, actor, party_id=party_id, asset=batch.asset_code,
                                    kind=kind, code=code, name=name, action=action)
    _run(session, ACCOUNTS.insert(), {"ledger_account_id": account.id, "batch_id": batch.id,
                                      "party_id": party_id, "role": role,
                                      "code": account.code, "asset_code": batch.asset_code})
    return Account(account.id, batch.id, party_id, role, account.code, batch.asset_code)


def tradable_account(session: Session, actor: Principal, batch: CarbonBatch | BatchFacts,
                     party_id: int,
                     action: str = "carbon.account.open") -> Account:
    """The party's tradable account in `batch`, opened if missing."""
    row = _run(session, _TRADABLE_OF, {"batch": batch.id, "party": party_id}).first()
    if row is not None:
        return _account(row)
    account = ledger.ensure_account(session, actor, party_id=party_id, asset=batch.asset_code,
                                    kind="holding", action=action)
    _run(session, ACCOUNTS.insert(), {"ledger_account_id": account.id, "batch_id": batch.id,
                                      "party_id": party_id, "role": "tradable",
                                      "code": account.code, "asset_code": batch.asset_code})
    return Account(account.id, batch.id, party_id, "tradable", account.code, batch.asset_code)


def _lock(session: Session, account_ids: Sequence[int]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        _run(session, _LOCK, {"ids": sorted(set(account_ids))}).all()


def _blocks(session: Session, account_id: int) -> list[tuple[int, int, int]]:
    return [tuple(r) for r in _run(session, _BLOCKS_OF, {"account": account_id})]


_UPDATE_BLOCKS = BLOCKS.update().where(BLOCKS.c.id == sa.bindparam("b_id")).values(
    start_serial=sa.bindparam("b_start"), end_serial=sa.bindparam("b_end"))


def _write(session: Session, batch_id: int, account_id: int, gone: list[int],
           changed: list[tuple[int, serials.Range]], added: list[serials.Range]) -> None:
    """Deletes, then in-place updates, then inserts (so no two rows of a batch ever share a
    first serial, which is unique)."""
    if gone:
        _run(session, _DELETE_BLOCKS, {"ids": gone})
    if changed:
        _run(session, _UPDATE_BLOCKS, [{"b_id": i, "b_start": s, "b_end": e}
                                       for i, (s, e) in changed])
    if added:
        _run(session, _INSERT_BLOCKS, [{"batch_id": batch_id, "account_id": account_id,
                                        "start_serial": s, "end_serial": e} for s, e in added])


def _replace(session: Session, batch_id: int, account_id: int,
             old: Sequence[tuple[int, int, int]], new: Sequence[serials.Range]) -> None:
    """Make the account's blocks `new`, each a part of one old block (what is left after
    taking): an old block that lost everything is deleted, one that shrank is updated in
    place, one split in two is updated and the second part inserted."""
    gone, changed, added = [], [], []
    pieces = iter(sorted(new))
    piece = next(pieces, None)
    for block_id, start, end in old:
        inside = []
        while piece is not None and piece[0] <= end:
            assert start <= piece[0] and piece[1] <= end, "left blocks lie inside old ones"
            inside.append(piece)
            piece = next(pieces, None)
        if not inside:
            gone.append(block_id)
            continue
        if inside[0] != (start, end):
            changed.append((block_id, inside[0]))
        added.extend(inside[1:])
    _write(session, batch_id, account_id, gone, changed, added)


def _add(session: Session, batch_id: int, account_id: int,
         ranges: Sequence[serials.Range]) -> None:
    """Add blocks to an account, merged with the neighbours they touch (a merged run reuses
    one neighbour's row)."""
    neighbours = [tuple(r) for r in _run(session, _NEIGHBOURS, {
        "account": account_id, "before": [s - 1 for s, _ in ranges],
        "after": [e + 1 for _, e in ranges]})]
    if not neighbours:
        _write(session, batch_id, account_id, [], [], serials.merge(ranges))
        return
    gone, changed, added = [], [], []
    for run in serials.merge([*((s, e) for _, s, e in neighbours), *ranges]):
        rows = [i for i, s, e in neighbours if run[0] <= s and e <= run[1]]
        if rows:
            changed.append((rows[0], run))
            gone.extend(rows[1:])
        else:
            added.append(run)
    _write(session, batch_id, account_id, gone, changed, added)


def _refusal(session: Session, batch: BatchFacts, source: Account,
             wanted: serials.Range) -> Exception:
    """Why `source` cannot move the serials `wanted`: already retired, buffered/cancelled,
    held by someone else, or outside the batch."""
    text = serials.format_range(_prefix(batch), wanted) if wanted[0] >= 1 else str(wanted)
    holders = _run(session, _HOLDERS_OF_RANGE, {"batch": batch.id, "start": wanted[0],
                                                 "end": wanted[1]}).all()
    roles = {role for role, _code, _s, _e in holders}
    field = [{"location": "json", "field": "serial_block", "message": text}]
    if "retired" in roles:
        return errors.AlreadyRetired(f"serials of {text} are already retired; a tonne is "
                                     "retired once", errors=field)
    if roles & {"buffer", "cancelled"}:
        what = " and ".join(sorted(roles & {"buffer", "cancelled"}))
        return errors.NotTradable(f"serials of {text} are {what} credits; they cannot move",
                                  errors=field)
    return errors.SerialsNotHeld(f"account {source.code} does not hold all of {text}",
                                 errors=field)


def _prefix(batch: CarbonBatch | BatchFacts) -> str:
    return batch.asset_code.rsplit("-", 1)[0]


def _wanted(session: Session, batch: BatchFacts, serial_block: str | None,
            quantity_t: int | None) -> tuple[serials.Range | None, int]:
    """The exact serials named (checked against the batch), and the quantity."""
    if serial_block is None:
        if isinstance(quantity_t, bool) or not isinstance(quantity_t, int) \
                or not 0 < quantity_t <= 2**62:
            raise invalid("quantity_t must be a whole number of tonnes (at least 1)",
                          "quantity_t", "a positive integer")
        return None, quantity_t
    try:
        block = serials.parse_block(serial_block)
    except serials.SerialError as exc:
        raise errors.InvalidSerial(str(exc), errors=[
            {"location": "json", "field": "serial_block", "message": str(exc)}]) from None
    whole, first, last = _run(session, _BATCH_RANGE, {"id": batch.id}).one()
    if block.prefix != _prefix(batch) or block.start < first or block.end > last:
        raise errors.InvalidSerial(
            f"{serial_block} is not a block of batch {whole}",
            errors=[{"location": "json", "field": "serial_block", "message": f"inside {whole}"}])
    if quantity_t is not None and quantity_t != block.quantity_t:
        raise invalid(f"the block holds {block.quantity_t} t, not {quantity_t}", "quantity_t",
                      "the block's size, or leave it out")
    return (block.start, block.end), block.quantity_t


def _authorize_source(actor: Principal, action: str, source: Account) -> None:
    try:
        authorize(actor, action, party=source.party_id)
    except Forbidden as exc:
        if row_filter(actor, action).party is not None:
            raise ledger.AccountNotOwned(
                f"account {source.code} belongs to party {source.party_id}; a trader moves "
                "only its own party's credits", action=action) from exc
        raise


#: the code suffix of a batch's escrow account (the market's): its credits are tradable (they
#: count with the holdings) but move only through the market's settlement, never by a
#: transfer, retirement or cancellation of the registry
ESCROW_SUFFIX = "-ESCROW"


def escrow_account(session: Session, actor: Principal, batch: CarbonBatch | BatchFacts,
                   party_id: int, *, action: str) -> Account:
    """The batch's escrow account (ledger kind `escrow`, held by `party_id`, the market's
    operator), opened if missing: credits offered for sale wait there until a buyer takes
    them or the offer ends. Its credits are tradable ones (`tradable` + `retired` +
    `cancelled` + `buffer` = issued still holds) that only `plan_movement` moves."""
    code = f"{batch.asset_code}{ESCROW_SUFFIX}"
    row = _run(session, _ACCOUNT_BY_CODE, {"ref": code}).first()
    if row is not None:
        return _account(row)
    return _open(session, actor, batch, party_id, "escrow", "tradable", action, code=code,
                 name=f"{batch.asset_code} market escrow")


_HELD = sa.select(sa.func.coalesce(sa.func.sum(BLOCKS.c.end_serial - BLOCKS.c.start_serial + 1),
                                   0)).where(BLOCKS.c.account_id == sa.bindparam("account"))


def held_t(session: Session, account: Account) -> int:
    """Tonnes the account holds, from its serial blocks (equal to its ledger balance, which
    `verify` checks), readable by a service that authorizes its caller itself."""
    return int(_run(session, _HELD, {"account": account.id}).scalar_one())


def is_escrow(account: Account) -> bool:
    return account.code == f"{account.asset_code}{ESCROW_SUFFIX}"


@dataclasses.dataclass(frozen=True)
class PlannedMovement:
    """Credits about to move from `source` to `target`, for a caller that posts them in a
    ledger transaction of its own (delivery versus payment: the credit legs and the money
    legs in ONE transaction). `postings` are the credit legs to put in that transaction;
    once it is posted, `apply_movement` rewrites the serial blocks and records the event."""

    kind: str
    batch: BatchFacts
    source: Account
    target: Account
    quantity_t: int
    held: list[tuple[int, int, int]]
    taken: list[serials.Range]
    left: list[serials.Range]
    blocks: list[str]

    def postings(self) -> list[ledger.PostingSpec]:
        """The credit legs: debit the source, credit the target, in the batch's asset."""
        return [ledger.PostingSpec(self.source.id, self.batch.asset_code, "debit",
                                   self.quantity_t),
                ledger.PostingSpec(self.target.id, self.batch.asset_code, "credit",
                                   self.quantity_t)]

    def metadata(self) -> dict[str, Any]:
        """What the ledger transaction's metadata records of the blocks moved."""
        return {"carbon": self.kind, "batch": self.batch.asset_code,
                "blocks": len(self.blocks), "first_block": self.blocks[0],
                "blocks_sha256": digest(self.blocks)}


def plan_movement(session: Session, *, source: Account, target: Account, quantity_t: int,
                  wanted: serials.Range | None = None, kind: str = "transfer",
                  escrow: bool = False) -> PlannedMovement:
    """Lock the two accounts' registry rows (PostgreSQL, ascending id) and take `quantity_t`
    tonnes from the source's lowest serials (or exactly `wanted`). Nothing is written: the
    caller posts `postings()` (the ledger checks balances and who may debit) and then calls
    `apply_movement`, in the same unit of work. No authorization here: the caller has
    authorized the operation it performs. `escrow`: the source or target may be a batch's
    escrow account (only the market passes it)."""
    if source.role != "tradable":
        raise errors.NotTradable(f"account {source.code} holds {source.role} credits; they "
                                 "cannot be transferred, retired or cancelled")
    if not escrow and (is_escrow(source) or is_escrow(target)):
        raise errors.NotTradable(
            f"{source.code if is_escrow(source) else target.code} is the market's escrow: its "
            "credits move only when a trade settles or an offer ends")
    if source.batch_id != target.batch_id:
        raise invalid("credits move within one batch", "account", "accounts of one batch")
    batch = batch_facts(source)
    _lock(session, [source.id, target.id])
    # only the blocks the movement touches are read: the one holding the first serial named,
    # or the lowest `quantity_t` blocks (each holds at least a tonne, so they suffice)
    held = [tuple(r) for r in _run(session, _BLOCK_AT, {"account": source.id,
                                                        "serial": wanted[0]})] \
        if wanted is not None else \
        [tuple(r) for r in _run(session, _FIRST_BLOCKS, {"account": source.id,
                                                          "n": quantity_t})]
    ranges = [(s, e) for _, s, e in held]
    if wanted is not None:
        try:
            taken, left = serials.take_exact(ranges, wanted)
        except ValueError:
            raise _refusal(session, batch, source, wanted) from None
    else:
        if serials.total(ranges) < quantity_t:
            raise errors.InsufficientCredits(
                f"account {source.code} holds {serials.total(ranges)} t of {batch.asset_code}, "
                f"fewer than {quantity_t}", errors=[{"location": "json", "field": "quantity_t",
                                                     "message": "more than held"}])
        taken, left = serials.take(ranges, quantity_t)
    prefix = _prefix(batch)
    return PlannedMovement(kind, batch, source, target, quantity_t, held, taken, left,
                           [serials.format_range(prefix, r) for r in taken])


def apply_movement(session: Session, actor: Principal, plan: PlannedMovement, *,
                   ledger_transaction_id: int, reason: str | None = None,
                   now: dt.datetime | None = None) -> Moved:
    """After the caller's ledger transaction holding `plan.postings()` is posted: the source
    keeps what is left of its blocks, the target's blocks gain the serials taken (merged), and
    the event naming them is recorded. Returns the movement."""
    now, today = now_and_today(now)
    _replace(session, plan.batch.id, plan.source.id, plan.held, plan.left)
    _add(session, plan.batch.id, plan.target.id, plan.taken)
    event_id = _run(session, _INSERT_EVENT, {
        "batch_id": plan.batch.id, "kind": plan.kind, "from_account_id": plan.source.id,
        "to_account_id": plan.target.id, "quantity_t": plan.quantity_t, "blocks": plan.blocks,
        "ledger_transaction_id": ledger_transaction_id, "reason": reason,
        "effective_date": today, "actor": actor.label, "occurred_at": now}).scalar_one()
    return Moved(event_id, plan.batch, plan.source, plan.target, plan.quantity_t, plan.blocks,
                 ledger_transaction_id)


def _move(session: Session, actor: Principal, *, kind: str, action: str, batch: BatchFacts,
          source: Account, target: Account, quantity_t: int, wanted: serials.Range | None,
          memo: str, reason: str | None, now: dt.datetime, today: dt.date) -> Moved:
    plan = plan_movement(session, source=source, target=target, quantity_t=quantity_t,
                         wanted=wanted, kind=kind)
    view = ledger.post(session, actor, ledger.TransactionSpec(
        type=f"carbon.{kind}", memo=memo[:500], metadata=plan.metadata(),
        postings=plan.postings()), action=action, now=now)
    return apply_movement(session, actor, plan, ledger_transaction_id=view.id, reason=reason,
                          now=now)


def transfer(session: Session, actor: Principal, *, account: int | str, to_party_id: int,
             quantity_t: int | None = None, serial_block: str | None = None,
             memo: str | None = None, now: dt.datetime | None = None) -> Moved:
    """Move credits from `account` to the tradable account of `to_party_id` in the batch."""
    now, today = now_and_today(now)
    source = find_account(session, account)
    _authorize_source(actor, "carbon.transfer.create", source)
    batch = batch_facts(source)
    wanted, quantity = _wanted(session, batch, serial_block, quantity_t)
    if isinstance(to_party_id, bool) or not isinstance(to_party_id, int) \
            or not 0 < to_party_id < 2**63:
        raise invalid(f"no party {to_party_id}", "to_party_id", "an active party")
    # an existing account's party existed; opening a new one checks the party is active
    target = tradable_account(session, actor, batch, to_party_id)
    if target.id == source.id:
        raise invalid("a transfer needs another party", "to_party_id", "not the sender")
    return _move(session, actor, kind="transfer", action="carbon.transfer.create", batch=batch,
                 source=source, target=target, quantity_t=quantity, wanted=wanted,
                 memo=memo or f"transfer of {quantity} t {batch.asset_code}", reason=None,
                 now=now, today=today)


def _audit_hash(session: Session, seq: int) -> str:
    return session.scalar(sa.select(AuditEvent.hash).where(AuditEvent.seq == seq)) or ""


def retirement_data(r: CarbonRetirement) -> dict:
    """What the audit trail (and the certificate) records of a retirement."""
    return {"certificate_number": r.certificate_number, "batch_id": r.batch_id,
            "quantity_t": r.quantity_t, "blocks": list(r.blocks),
            "beneficiary_name": r.beneficiary_name, "purpose": r.purpose,
            "compliance_year": r.compliance_year, "jurisdiction": r.jurisdiction,
            "reason": r.reason, "vintage_year": r.vintage_year,
            "retired_on": r.retired_on.isoformat(), "account_id": r.account_id,
            "party_id": r.party_id, "event_id": r.event_id}


def retire(session: Session, actor: Principal, *, account: int | str,
           beneficiary_name: str, purpose: str, quantity_t: int | None = None,
           serial_block: str | None = None, compliance_year: int | None = None,
           jurisdiction: str | None = None, reason: str | None = None,
           now: dt.datetime | None = None) -> Moved:
    """Retire credits for good on behalf of `beneficiary_name`; returns the movement with its
    retirement (certificate) record, which carries the audit-chain hash of the event."""
    now, today = now_and_today(now)
    source = find_account(session, account)
    _authorize_source(actor, "carbon.retirement.create", source)
    problems = []
    beneficiary = (beneficiary_name or "").strip() if isinstance(beneficiary_name, str) else ""
    if not beneficiary or len(beneficiary) > 200:
        problems.append({"field": "beneficiary_name", "message": "1-200 characters"})
    if purpose not in RETIREMENT_PURPOSES:
        problems.append({"field": "purpose", "message": f"one of {RETIREMENT_PURPOSES}"})
    if compliance_year is not None and (isinstance(compliance_year, bool) or not isinstance(
            compliance_year, int) or not 2000 <= compliance_year <= 2100):
        problems.append({"field": "compliance_year", "message": "a year"})
    if problems:
        raise ValidationFailed("invalid retirement", errors=problems)
    batch = batch_facts(source)
    wanted, quantity = _wanted(session, batch, serial_block, quantity_t)
    target = _role_account(session, batch.id, "retired")
    moved = _move(session, actor, kind="retirement", action="carbon.retirement.create",
                  batch=batch, source=source, target=target, quantity_t=quantity,
                  wanted=wanted, memo=f"retirement of {quantity} t for {beneficiary}",
                  reason=reason, now=now, today=today)
    retirement = CarbonRetirement(
        certificate_number=f"QXN-RET-{today.year}-{moved.event_id:06d}",
        event_id=moved.event_id, batch_id=batch.id, account_id=source.id,
        party_id=source.party_id, quantity_t=quantity, blocks=moved.blocks,
        beneficiary_name=beneficiary, purpose=purpose, compliance_year=compliance_year,
        jurisdiction=jurisdiction, reason=reason, vintage_year=batch.vintage_year,
        retired_on=today, retired_at=now, retired_by=actor.label)
    values = {c.key: getattr(retirement, c.key) for c in RETIREMENTS.c if c.key != "id"}
    retirement.id = _run(session, _INSERT_RETIREMENT, values).scalar_one()
    seq = audit.record(session, actor, "carbon.retirement.create", "carbon_retirement",
                       retirement.id, after=retirement_data(retirement))
    retirement.audit_seq, retirement.audit_hash = seq, _audit_hash(session, seq)
    _run(session, _SEAL_RETIREMENT, {"r_id": retirement.id, "audit_seq": seq,
                                      "audit_hash": retirement.audit_hash})
    return dataclasses.replace(moved, retirement=retirement)


def cancel(session: Session, actor: Principal, *, account: int | str, reason: str,
           quantity_t: int | None = None, serial_block: str | None = None,
           now: dt.datetime | None = None) -> Moved:
    """Cancel credits (returned to the issuer: they leave circulation and cannot be
    retired), with a reason."""
    now, today = now_and_today(now)
    source = find_account(session, account)
    _authorize_source(actor, "carbon.cancellation.create", source)
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise invalid("a cancellation needs a reason", "reason", "required")
    batch = batch_facts(source)
    wanted, quantity = _wanted(session, batch, serial_block, quantity_t)
    target = _role_account(session, batch.id, "cancelled")
    moved = _move(session, actor, kind="cancellation", action="carbon.cancellation.create",
                  batch=batch, source=source, target=target, quantity_t=quantity,
                  wanted=wanted, memo=f"cancellation of {quantity} t: {reason}"[:500],
                  reason=reason[:500], now=now, today=today)
    audit.record(session, actor, "carbon.cancellation.create", "carbon_event", moved.event_id,
                 after={"batch": batch.asset_code, "account": source.code,
                        "quantity_t": quantity, "blocks": moved.blocks, "reason": reason})
    return moved


# --- issuance --------------------------------------------------------------------------------


def batch_data(batch: CarbonBatch) -> dict:
    return audit.snapshot(batch)


def issue(session: Session, actor: Principal, report_id: int, *,
          now: dt.datetime | None = None) -> CarbonBatch:
    """Issue the credits of a verified report: a new batch (ledger asset) with its serial
    block; the buffer share to the pooled buffer, the share of proceeds to the registry's
    fee account, the overall-mitigation share cancelled, the rest to the project owner, in
    one ledger transaction."""
    authorize(actor, "carbon.issuance.create")
    now, today = now_and_today(now)
    report = fetch(session, CarbonReport, report_id)
    if report is None:
        raise errors.ReportNotFound(f"no monitoring report {report_id}")
    if report.status == "issued":
        raise errors.AlreadyIssued(f"credits were already issued on report {report.id}")
    if report.status != "verified":
        raise errors.ReportNotVerified(f"report {report.id} is {report.status}; only a "
                                       "verified report is issued")
    project = session.get_one(CarbonProject, report.project_id)
    if project.status not in lifecycle.CREDITING_STATES:
        raise errors.ProjectLocked(f"project {project.code} is {project.status}")
    quantity = report.quantity_t
    split = methodology.split_issuance(
        quantity, buffer_share_bp=project.buffer_share_bp,
        share_of_proceeds_bp=project.share_of_proceeds_bp,
        overall_mitigation_bp=project.overall_mitigation_bp)
    if quantity == 0 or quantity == split.overall_mitigation_t:
        raise errors.NothingToIssue(f"report {report.id} supports {report.net_removals_tco2e:.3f}"
                                    " tCO2e: no whole tonne to issue")
    operator = operator_party(session)
    vintage = report.vintage_year
    earlier = session.execute(sa.select(sa.func.count(), sa.func.max(CarbonBatch.serial_end))
                              .where(CarbonBatch.project_id == project.id,
                                     CarbonBatch.vintage_year == vintage)).one()
    sequence, start = earlier[0] + 1, (earlier[1] or 0) + 1
    end = start + quantity - 1
    prefix = serials.prefix(project.county_code, project.code, vintage)
    asset_code = f"{prefix}-{sequence:02d}"
    block_text = serials.format_block(project.county_code, project.code, vintage, start, end)
    ledger.create_asset(
        session, actor, code=asset_code, kind="carbon_credit",
        name_zh=f"{project.name_zh} {vintage} 年第 {sequence} 批",
        name_en=f"{project.name_en or project.code}, vintage {vintage}, batch {sequence}",
        vintage_year=vintage, batch_reference=block_text, project_reference=project.code,
        attributes={"methodology": project.methodology, "report_id": report.id},
        action="carbon.issuance.create")
    batch = CarbonBatch(
        project_id=project.id, report_id=report.id, asset_code=asset_code,
        vintage_year=vintage, serial_block=block_text, serial_start=start, serial_end=end,
        quantity_t=quantity, buffer_t=split.buffer_t,
        share_of_proceeds_t=split.share_of_proceeds_t,
        overall_mitigation_t=split.overall_mitigation_t, owner_t=split.owner_t,
        ledger_transaction_id=0, issued_on=today, issued_at=now, issued_by=actor.label)
    session.add(batch)
    session.flush()
    action = "carbon.issuance.create"
    issuer = _open(session, actor, batch, operator, "external", "cancelled", action,
                   code=f"{asset_code}-ISSUER", name=f"{asset_code} issuer")
    parts = [("owner", split.owner_t, lambda: _open(
                 session, actor, batch, project.owner_party_id, "holding", "tradable", action)),
             ("buffer", split.buffer_t, lambda: _open(
                 session, actor, batch, operator, "buffer", "buffer", action,
                 code=f"{asset_code}-BUFFER", name=f"{asset_code} buffer pool")),
             ("share_of_proceeds", split.share_of_proceeds_t, lambda: _open(
                 session, actor, batch, operator, "fee", "tradable", action,
                 code=f"{asset_code}-PROCEEDS", name=f"{asset_code} share of proceeds"))]
    _open(session, actor, batch, operator, "retirement", "retired", action,
          code=f"{asset_code}-RETIRED", name=f"{asset_code} retired")
    legs, allotted = [], []
    cursor = start
    for name, amount, opener in parts:
        if amount <= 0:
            continue
        account = opener()
        block = (cursor, cursor + amount - 1)
        cursor += amount
        legs.append(ledger.PostingSpec(account.id, asset_code, "credit", amount))
        allotted.append((name, account, block))
    if split.overall_mitigation_t:
        allotted.append(("overall_mitigation", issuer,
                         (cursor, cursor + split.overall_mitigation_t - 1)))
    posted = quantity - split.overall_mitigation_t
    view = ledger.post(session, actor, ledger.TransactionSpec(
        type="carbon.issuance", memo=f"issuance of {block_text}", metadata={
            "carbon": "issuance", "batch": asset_code, "serial_block": block_text,
            "report_id": report.id, "parts": {n: serials.format_range(prefix, b)
                                              for n, _a, b in allotted}},
        postings=[ledger.PostingSpec(issuer.id, asset_code, "debit", posted), *legs]),
        # credits enter the ledger from the issuer's external account under the registry's
        # own authority (issuance), not finance's
        action=action, enter=action, now=now)
    batch.ledger_transaction_id = view.id
    for name, account, block in allotted:
        _add(session, batch.id, account.id, [block])
        _run(session, _INSERT_EVENT, {
            "batch_id": batch.id, "kind": "cancellation" if name == "overall_mitigation"
            else "issuance", "from_account_id": None, "to_account_id": account.id,
            "quantity_t": serials.size(block), "blocks": [serials.format_range(prefix, block)],
            "ledger_transaction_id": view.id, "reason": name.replace("_", " "),
            "effective_date": today, "actor": actor.label, "occurred_at": now}).scalar_one()
    report.status = "issued"
    session.flush()
    audit.record(session, actor, "carbon.issuance.create", "carbon_batch", batch.id,
                 after=batch_data(batch))
    return batch


# --- reversal --------------------------------------------------------------------------------


def record_reversal(session: Session, actor: Principal, ref: int | str, *, cause: str,
                    occurred_on: dt.date, lost_t: int, description: str,
                    now: dt.datetime | None = None) -> tuple[CarbonReversal, list[int]]:
    """A loss of stored carbon on a project (fire, illegal felling ...): the lost tonnes are
    cancelled from the buffer pool, the project's own batches first (oldest first), then the
    rest of the pool (oldest batch first), in one ledger transaction. Returns the reversal and
    its event ids."""
    authorize(actor, "carbon.reversal.create")
    now, today = now_and_today(now)
    project = get_project(session, ref)
    problems = []
    if cause not in REVERSAL_CAUSES:
        problems.append({"field": "cause", "message": f"one of {REVERSAL_CAUSES}"})
    if not isinstance(occurred_on, dt.date) or occurred_on > today:
        problems.append({"field": "occurred_on", "message": "a date, not in the future"})
    if isinstance(lost_t, bool) or not isinstance(lost_t, int) or not 0 < lost_t <= 2**62:
        problems.append({"field": "lost_t", "message": "a positive whole number of tonnes"})
    if not isinstance(description, str) or not description.strip():
        problems.append({"field": "description", "message": "required"})
    if problems:
        raise ValidationFailed("invalid reversal", errors=problems)
    pool = session.execute(sa.select(CarbonAccount.ledger_account_id, CarbonBatch.id).join(
        CarbonBatch, CarbonBatch.id == CarbonAccount.batch_id).where(
        CarbonAccount.role == "buffer").order_by(
        (CarbonBatch.project_id != project.id), CarbonBatch.id)).all()
    accounts: list[tuple[int, int]] = [(a, b) for a, b in pool]
    _lock(session, [a for a, _ in accounts])
    plan: list[tuple[int, int, list[tuple[int, int, int]], int]] = []
    need = lost_t
    for account_id, batch_id in accounts:
        if need == 0:
            break
        held = _blocks(session, account_id)
        available = serials.total((s, e) for _, s, e in held)
        if available:
            amount = min(available, need)
            plan.append((account_id, batch_id, held, amount))
            need -= amount
    if need:
        raise errors.BufferExhausted(f"the buffer pool holds {lost_t - need} t, fewer than the "
                                     f"{lost_t} t lost; nothing was cancelled")
    reversal = CarbonReversal(project_id=project.id, cause=cause, occurred_on=occurred_on,
                              lost_t=lost_t, description=description.strip()[:1000],
                              recorded_by=actor.label, recorded_at=now)
    session.add(reversal)
    session.flush()
    postings, moves = [], []
    for account_id, batch_id, held, amount in plan:
        batch = session.get_one(CarbonBatch, batch_id)
        issuer = _role_account(session, batch_id, "cancelled")
        taken, left = serials.take([(s, e) for _, s, e in held], amount)
        postings += [ledger.PostingSpec(account_id, batch.asset_code, "debit", amount),
                     ledger.PostingSpec(issuer.id, batch.asset_code, "credit", amount)]
        moves.append((batch, account_id, issuer, held, taken, left, amount))
    view = ledger.post(session, actor, ledger.TransactionSpec(
        type="carbon.reversal", memo=f"reversal {reversal.id} ({cause}) on {project.code}",
        metadata={"carbon": "reversal", "reversal_id": reversal.id, "project": project.code,
                  "lost_t": lost_t}, postings=postings), action="carbon.reversal.create",
        now=now)
    event_ids = []
    for batch, account_id, issuer, held, taken, left, amount in moves:
        _replace(session, batch.id, account_id, held, left)
        _add(session, batch.id, issuer.id, taken)
        event_ids.append(_run(session, _INSERT_EVENT, {
            "batch_id": batch.id, "kind": "reversal", "from_account_id": account_id,
            "to_account_id": issuer.id, "quantity_t": amount,
            "blocks": [serials.format_range(_prefix(batch), r) for r in taken],
            "ledger_transaction_id": view.id, "reason": f"{cause}: {reversal.description}"[:500],
            "reversal_id": reversal.id, "effective_date": today, "actor": actor.label,
            "occurred_at": now}).scalar_one())
    audit.record(session, actor, "carbon.reversal.create", "carbon_reversal", reversal.id,
                 after={**audit.snapshot(reversal), "event_ids": event_ids})
    return reversal, event_ids


def batch_of(session: Session, ref: int | str) -> CarbonBatch:
    return get_batch(session, ref)


def moved_view(moved: Moved, kind: str) -> dict:
    retirement = moved.retirement
    return {"event_id": moved.event_id, "kind": kind, "batch": moved.batch.asset_code,
            "from_account": moved.source.code, "to_account": moved.target.code,
            "quantity_t": moved.quantity_t, "serial_blocks": moved.blocks,
            "ledger_transaction_id": moved.ledger_transaction_id,
            "certificate_number": retirement.certificate_number if retirement else None,
            "certificate_url": f"/carbon/public/certificates/{retirement.certificate_number}"
            if retirement else None}


def reversal_view(session: Session, reversal: CarbonReversal) -> dict:
    events = list(session.scalars(sa.select(CarbonEvent).where(
        CarbonEvent.reversal_id == reversal.id).order_by(CarbonEvent.id)))
    return {**audit.snapshot(reversal), "occurred_on": reversal.occurred_on, "events": events}
