"""The villager register: households of a village collective (股份经济合作社) with their shares
(股份), members, enrolled trees and area, as a history of entries with effective dates.

The register as of a date is, for each household, its latest entry on or before that date
(a household whose latest entry says `left` is not in it). Entries are appended, never
changed; a correction is a new entry. Once a run has been paid with a record date, the
register of its collectives is fixed up to that date: an entry effective on or before it
is refused (it would rewrite what was paid).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit
from ecovalue.auth import Principal, authorize, county_of, system_principal
from ecovalue.clock import local_date, utcnow
from ledger import core
from ledger.sharing import errors
from ledger.sharing.allocation import Village
from ledger.sharing.models import SharingAccount, SharingRegisterEntry, SharingRun

#: the ledger reads benefit sharing makes on the caller's behalf, after authorizing the
#: caller for the sharing action itself (a county registrar prepares a run without the
#: right to read the ledger)
READER = system_principal("sharing")
#: the policy action under which sharing opens the CNY accounts of collectives and households
OPEN_ACCOUNT = "sharing.account.open"
#: the largest value of a register column (shares, trees, area_m2, members)
MAX_VALUE = 10**9
COLUMNS = ("shares", "members", "trees", "area_m2")


def _int_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "a whole number"
    if not 0 <= value <= MAX_VALUE:
        return f"from 0 to {MAX_VALUE:,}"
    return None


def party_of_kind(session: Session, party_id: Any, kind: str, field: str) -> Party:
    party = session.get(Party, party_id) if isinstance(party_id, int) and \
        not isinstance(party_id, bool) and 0 < party_id < 2**63 else None
    if party is None or party.kind != kind:
        cls = errors.UnknownHousehold if kind == "household" else errors.InvalidRegisterEntry
        raise cls(f"no {kind.replace('_', ' ')} {party_id}", errors=[
            {"location": "json", "field": field,
             "message": f"party {party_id} is not a {kind}" if party else "unknown party"}])
    return party


def account_of(session: Session, actor: Principal, party: Party) -> str:
    """The CNY account a collective or household is paid into, opened on first use."""
    code = session.get(SharingAccount, party.id)
    if code is not None:
        return code.account_code
    account = core.ensure_account(session, actor, party_id=party.id, asset="CNY",
                                  kind="holding", action=OPEN_ACCOUNT)
    session.add(SharingAccount(party_id=party.id, account_code=account.code))
    session.flush()
    return account.code


def locked_until(session: Session, collective_party_id: int) -> dt.date | None:
    """The latest record date of a paid run that included this collective."""
    dates: Sequence[Any] = session.execute(sa.select(SharingRun.record_date,
                                                     SharingRun.collective_party_ids)
                            .where(SharingRun.status == "paid")).all()
    paid = [d for d, ids in dates if collective_party_id in (ids or [])]
    return max(paid) if paid else None


def record_entry(session: Session, actor: Principal, *, collective_party_id: int,
                 household_party_id: int, effective_date: dt.date, status: str = "member",
                 shares: int = 0, members: int = 1, trees: int = 0, area_m2: int = 0,
                 reason: str | None = None, now: dt.datetime | None = None
                 ) -> SharingRegisterEntry:
    """A household joins the collective, changes its shares (trees, area, members), or
    leaves it, from `effective_date` (a local date, not in the future)."""
    now = now or utcnow()
    collective = party_of_kind(session, collective_party_id, "village_collective",
                               "collective_party_id")
    authorize(actor, "sharing.register.write", county=county_of(collective.region_code))
    household = party_of_kind(session, household_party_id, "household", "household_party_id")
    problems = []
    if status not in ("member", "left"):
        problems.append({"field": "status", "message": "member or left"})
    values = {"shares": shares, "members": members, "trees": trees, "area_m2": area_m2}
    for name, value in values.items():
        if (message := _int_problem(value)) is not None:
            problems.append({"field": name, "message": message})
    if not isinstance(effective_date, dt.date):
        problems.append({"field": "effective_date", "message": "a date"})
    elif effective_date > local_date(now):
        problems.append({"field": "effective_date",
                         "message": f"not after today ({local_date(now)}, Asia/Shanghai)"})
    if county_of(household.region_code) != county_of(collective.region_code):
        problems.append({"field": "household_party_id",
                         "message": "the household lives in another county than the "
                                    "collective"})
    if not household.active:
        problems.append({"field": "household_party_id", "message": "the household is inactive"})
    if reason is not None and len(reason) > 200:
        problems.append({"field": "reason", "message": "at most 200 characters"})
    if problems:
        raise errors.InvalidRegisterEntry("invalid register entry", errors=[
            {"location": "json", **p} for p in problems])
    history = session.scalars(sa.select(SharingRegisterEntry).where(
        SharingRegisterEntry.collective_party_id == collective.id,
        SharingRegisterEntry.household_party_id == household.id)
        .order_by(SharingRegisterEntry.effective_date)).all()
    if any(e.effective_date == effective_date for e in history):
        raise errors.InvalidRegisterEntry(
            f"household {household.id} already has an entry effective {effective_date}; "
            "record a correction on another date", errors=[
                {"location": "json", "field": "effective_date", "message": "already used"}])
    if status == "left":
        if not history or history[-1].effective_date > effective_date:
            raise errors.InvalidRegisterEntry(
                "a household can only leave after it joined", errors=[
                    {"location": "json", "field": "status", "message": "not a member then"}])
        values = {"shares": 0, "members": 0, "trees": 0, "area_m2": 0}
    locked = locked_until(session, collective.id)
    if locked is not None and effective_date <= locked:
        raise errors.RegisterLocked(
            f"a run paid with record date {locked} used this register: entries must take "
            f"effect after {locked}", locked_until=locked.isoformat())
    entry = SharingRegisterEntry(
        collective_party_id=collective.id, household_party_id=household.id,
        effective_date=effective_date, status=status, reason=reason, created_by=actor.label,
        created_at=now, **values)
    session.add(entry)
    session.flush()
    account_of(session, actor, collective)
    account_of(session, actor, household)
    audit.record(session, actor, "sharing.register.record", "sharing_register_entry", entry.id,
                 after=audit.snapshot(entry))
    return entry


@dataclasses.dataclass(frozen=True)
class RegisterRow:
    household_party_id: int
    name_zh: str
    id_number_masked: str | None
    bank_account_masked: str | None
    bank_name: str | None
    joined_on: dt.date
    effective_date: dt.date
    shares: int
    members: int
    trees: int
    area_m2: int
    account_code: str | None


def _latest(collective_party_id: int, as_of: dt.date) -> sa.Select:
    e = SharingRegisterEntry
    latest = sa.select(e.household_party_id, sa.func.max(e.effective_date).label("day")) \
        .where(e.collective_party_id == collective_party_id, e.effective_date <= as_of) \
        .group_by(e.household_party_id).subquery()
    first = sa.select(e.household_party_id, sa.func.min(e.effective_date).label("joined")) \
        .where(e.collective_party_id == collective_party_id) \
        .group_by(e.household_party_id).subquery()
    return sa.select(e, first.c.joined).join(latest, sa.and_(
        latest.c.household_party_id == e.household_party_id, latest.c.day == e.effective_date)) \
        .join(first, first.c.household_party_id == e.household_party_id) \
        .where(e.collective_party_id == collective_party_id, e.status == "member") \
        .order_by(e.household_party_id)


def register_as_of(session: Session, actor: Principal, collective_party_id: int,
                   as_of: dt.date) -> list[RegisterRow]:
    """The households of a collective as of the end of `as_of`, by party id, with their
    masked identifiers (never the numbers themselves)."""
    authorize(actor, "sharing.read")
    party_of_kind(session, collective_party_id, "village_collective", "collective_party_id")
    rows: Sequence[Any] = session.execute(_latest(collective_party_id, as_of)).all()
    ids = [r[0].household_party_id for r in rows]
    parties = {p.id: p for start in range(0, len(ids), 10_000) for p in session.scalars(
        sa.select(Party).where(Party.id.in_(ids[start:start + 10_000])))}
    accounts = dict(session.execute(sa.select(SharingAccount.party_id,
                                              SharingAccount.account_code)
                                    .where(SharingAccount.party_id.in_(ids))).all()) \
        if len(ids) <= 30_000 else dict(session.execute(sa.select(
            SharingAccount.party_id, SharingAccount.account_code)).all())
    out = []
    for entry, joined in rows:
        p = parties[entry.household_party_id]
        out.append(RegisterRow(entry.household_party_id, p.name_zh, p.id_number_masked,
                               p.bank_account_masked, p.bank_name, joined,
                               entry.effective_date, entry.shares, entry.members, entry.trees,
                               entry.area_m2, accounts.get(entry.household_party_id)))
    return out


def villages_as_of(session: Session, collective_party_ids: Sequence[int], as_of: dt.date,
                   *, only: Iterable[int] | None = None) -> list[Village]:
    """The villages of a run as `allocation.Village` (int64 columns, households by party
    id), from the register as of the record date: one ordered scan per collective, the
    latest entry of each household kept. `only`: restrict the households to these (each must
    be in one of the collectives' registers and have joined by the record date)."""
    return villages_with_accounts(session, collective_party_ids, as_of, only=only)[0]


#: a collective's register entries up to a date, in household and date order, each with the
#: household's ledger account code (driver level: a village may have 100,000 households)
_ENTRIES_WITH_ACCOUNTS = (
    "SELECT e.household_party_id, e.status, e.shares, e.members, e.trees, e.area_m2, "
    "a.account_code FROM sharing_register_entries AS e "
    "LEFT JOIN sharing_accounts AS a ON a.party_id = e.household_party_id "
    "WHERE e.collective_party_id = %s AND e.effective_date <= %s "
    "ORDER BY e.household_party_id, e.effective_date")


def villages_with_accounts(session: Session, collective_party_ids: Sequence[int],
                           as_of: dt.date, *, only: Iterable[int] | None = None
                           ) -> tuple[list[Village], dict[int, str]]:
    """`villages_as_of`, with the ledger account code of each household in them, read in
    the same scan."""
    villages = []
    accounts: dict[int, str] = {}
    found: set[int] = set()
    wanted = None if only is None else set(only)
    session.flush()
    for collective_party_id in collective_party_ids:
        latest: dict[int, Any] = {}
        for row in driver_rows(session, _ENTRIES_WITH_ACCOUNTS, (collective_party_id, as_of)):
            latest[row[0]] = row
        rows = [r for r in latest.values() if r[1] == "member"]
        if wanted is not None:
            rows = [r for r in rows if r[0] in wanted]
            found.update(r[0] for r in rows)
        accounts.update((r[0], r[6]) for r in rows if r[6] is not None)
        array = np.array([(r[0], r[2], r[3], r[4], r[5]) for r in rows],
                         dtype=np.int64).reshape(-1, 5)
        villages.append(Village(collective_party_id, array[:, 0], {
            "shares": array[:, 1], "members": array[:, 2], "trees": array[:, 3],
            "area_m2": array[:, 4]}))
    if wanted is not None:
        missing = sorted(wanted - found)
        if missing:
            _explain_missing(session, collective_party_ids, missing, as_of)
    return villages, accounts


def driver_rows(session: Session, sql: str, params: Sequence[Any]) -> list[tuple]:
    """The rows of a read (`%s` placeholders, dates as `dt.date`) on the driver's cursor, in
    the session's transaction: plain tuples of ints and text, without SQLAlchemy's per-row
    work (what a 100,000-household run reads). Pending ORM changes are not flushed first."""
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:  # the driver's placeholder, and dates stored as ISO text
        sql = sql.replace("%s", "?")
        params = [p.isoformat() if isinstance(p, dt.date) else p for p in params]
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    except raw.Error as exc:  # pragma: no cover - the error SQLAlchemy would raise
        raise sa.exc.DBAPIError.instance(sql, params, exc, raw.Error) from exc
    finally:
        cursor.close()


def accounts_in(session: Session, collective_party_ids: Sequence[int]) -> dict[int, str]:
    """The ledger account codes of every household ever in these collectives' registers."""
    members = sa.select(SharingRegisterEntry.household_party_id).where(
        SharingRegisterEntry.collective_party_id.in_(list(collective_party_ids)))
    session.flush()
    return dict(session.connection().execute(
        sa.select(SharingAccount.party_id, SharingAccount.account_code)
        .where(SharingAccount.party_id.in_(members))).all())


def _explain_missing(session: Session, collective_party_ids: Sequence[int],
                     missing: list[int], as_of: dt.date) -> None:
    joined = dict(session.execute(
        sa.select(SharingRegisterEntry.household_party_id,
                  sa.func.min(SharingRegisterEntry.effective_date))
        .where(SharingRegisterEntry.collective_party_id.in_(list(collective_party_ids)),
               SharingRegisterEntry.household_party_id.in_(missing))
        .group_by(SharingRegisterEntry.household_party_id)).all())
    later = {h: d for h, d in joined.items() if d > as_of}
    if later:
        h, day = min(later.items())
        raise errors.RecordDateBeforeJoining(
            f"the record date {as_of} is before household {h} joined ({day})", errors=[
                {"location": "json", "field": "record_date",
                 "message": f"household {h} joined on {day}"} for h, day in sorted(
                     later.items())][:200] or None)
    unknown = [h for h in missing if h not in joined]
    if unknown:
        raise errors.UnknownHousehold(
            f"household(s) {unknown[:10]} are not in the register of the run's collectives",
            errors=[{"location": "json", "field": "household_party_ids",
                     "message": f"household {h} is not in the register"} for h in unknown[:200]])
    raise errors.UnknownHousehold(
        f"household(s) {missing[:10]} had left the collective by {as_of}",
        errors=[{"location": "json", "field": "household_party_ids",
                 "message": f"household {h} is not a member on {as_of}"} for h in missing[:200]])


def history(session: Session, actor: Principal, collective_party_id: int, *,
            household_party_id: int | None = None) -> sa.Select:
    """Every entry of a collective's register (optionally one household's), oldest first."""
    authorize(actor, "sharing.read")
    stmt = sa.select(SharingRegisterEntry).where(
        SharingRegisterEntry.collective_party_id == collective_party_id)
    if household_party_id is not None:
        stmt = stmt.where(SharingRegisterEntry.household_party_id == household_party_id)
    return stmt.order_by(SharingRegisterEntry.effective_date, SharingRegisterEntry.id)
