"""Distribution runs and single-tree purchases: amount + rule (or trees x price) -> lines ->
one atomic ledger batch.

A distribution is prepared (the allocation preview: every collective, household and named
account with its amount, stored with a digest), then approved by the finance bureau — never
by its preparer — which pays it: one `ledger.core.post_batch` debiting the fund and
crediting every line, all or nothing, and fixes the run's attribution to the fund's inflows
(`trace`). A single-tree purchase is paid by its buyer at once, in full to the households.

A second request with the same `reference` and the same body returns the first run (it pays
once); with another body it is refused. Approving a paid run again changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import operator
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit
from ecovalue.auth import Principal, authorize, county_of
from ecovalue.auth.policy import row_filter
from ecovalue.bulk import paused_gc
from ecovalue.clock import local_date, utcnow
from ecovalue.db import bulk_insert, bulk_insert_records
from ecovalue.errors import ValidationFailed
from ledger import core
from ledger.sharing import allocation, errors
from ledger.sharing.models import (
    SharingFund,
    SharingRun,
    SharingRunLine,
    SharingRunSource,
    SharingTreeProgramme,
)
from ledger.sharing.services import config
from ledger.sharing.services.register import (
    READER,
    account_of,
    driver_rows,
    party_of_kind,
    villages_with_accounts,
)

#: credits per ledger transaction of a run (the core allows 1,000 postings: one is the debit)
CREDITS_PER_TRANSACTION = 999
MAX_AMOUNT_FEN = 10**15
MAX_COLLECTIVES = 500
TRANSACTION_TYPES = {"distribution": "sharing.distribution", "single_tree": "sharing.single_tree"}
#: 1 mu = 2000/3 m2: trees allowed on `area_m2` at `per_mu` trees per mu, rounded down
M2_PER_MU_NUMERATOR, M2_PER_MU_DENOMINATOR = 2000, 3


@dataclasses.dataclass
class RunResult:
    run: SharingRun
    replayed: bool = False


def _amount_problem(amount: Any) -> str | None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        return "a whole number of fen"
    if amount <= 0:
        return "must be positive"
    if amount > MAX_AMOUNT_FEN:
        return f"at most {MAX_AMOUNT_FEN:,} fen"
    return None


def _common_checks(collective_party_ids: Any, record_date: Any, now: dt.datetime,
                   amount: Any | None = None) -> list[dict]:
    problems = []
    if amount is not None and (message := _amount_problem(amount)) is not None:
        problems.append({"location": "json", "field": "amount_fen", "message": message})
    if not isinstance(collective_party_ids, list) or not collective_party_ids or \
            len(collective_party_ids) > MAX_COLLECTIVES or \
            len(set(collective_party_ids)) != len(collective_party_ids):
        problems.append({"location": "json", "field": "collective_party_ids",
                         "message": f"1 to {MAX_COLLECTIVES} distinct collectives"})
    if isinstance(record_date, dt.date) and record_date > local_date(now):
        problems.append({"location": "json", "field": "record_date",
                         "message": f"not after today ({local_date(now)}, Asia/Shanghai)"})
    return problems


def _existing(session: Session, reference: str, request_sha256: str) -> RunResult | None:
    run = session.scalar(sa.select(SharingRun).where(SharingRun.reference == reference))
    if run is None:
        return None
    if run.request_sha256 != request_sha256:
        raise errors.ReferenceTaken(
            f"run {run.id} already has the reference {reference!r} with other terms; "
            "a run is paid once: choose another reference for another run", run_id=run.id)
    return RunResult(run, replayed=True)


#: a line, as `_lines` builds it and `_insert_lines` stores it (after run id and line no)
_LINE_FIELDS = ("kind", "party_id", "village_party_id", "account_code", "part",
                "basis_value", "amount_fen")
#: a line: (kind, party, village, account code, part, basis value, amount), ints and text
Line = tuple[str, int | None, int | None, str, str, int | None, int]


def _insert_lines(session: Session, run: SharingRun, lines: list[Line]) -> str:
    """Store the lines set-based (every value is already an int or text, as stored) and
    return their digest."""
    run_id = run.id
    rows = [(run_id, i, *line) for i, line in enumerate(lines, start=1)]
    bulk_insert(session, SharingRunLine.__table__, ("run_id", "line_no", *_LINE_FIELDS), rows)
    return lines_digest(map(_DIGESTED_OF_LINE, lines))


#: the digested fields (kind, party, village, account, part, amount) of a line
_DIGESTED_OF_LINE = operator.itemgetter(0, 1, 2, 3, 4, 6)


def lines_digest(lines: Iterable[Sequence[Any]]) -> str:
    """SHA-256 over one text line per run line (kind, party, village, account, part,
    amount; None as empty): what the approver saw is what is paid."""
    text = "".join([
        f"{kind}|{'' if party is None else party}|{'' if village is None else village}|"
        f"{'' if account is None else account}|{'' if part is None else part}|"
        f"{'' if amount is None else amount}\n"
        for kind, party, village, account, part, amount in lines])
    return hashlib.sha256(text.encode()).hexdigest()


def _collectives(session: Session, ids: list[int]) -> list[Party]:
    return [party_of_kind(session, c, "village_collective", f"collective_party_ids.{i}")
            for i, c in enumerate(ids)]


# --- distributions -----------------------------------------------------------------------------


@paused_gc()
def prepare_run(session: Session, actor: Principal, *, reference: str, fund_code: str,
                rule_code: str, amount_fen: int, collective_party_ids: list[int],
                record_date: dt.date, rule_version: int | None = None,
                window_from: dt.date | None = None,
                household_party_ids: list[int] | None = None, memo: str | None = None,
                now: dt.datetime | None = None) -> RunResult:
    """The allocation preview of distributing `amount_fen` of a fund by a rule among the
    households of `collective_party_ids` as registered on `record_date`. Nothing is paid
    until the finance bureau approves it. The rule version becomes immutable."""
    now = now or utcnow()
    if row_filter(actor, "sharing.run.prepare").nothing:
        authorize(actor, "sharing.run.prepare")  # refuses, with the reason
    problems = _common_checks(collective_party_ids, record_date, now, amount_fen)
    if memo is not None and len(memo) > 300:
        problems.append({"location": "json", "field": "memo", "message": "at most 300 characters"})
    if window_from is not None and isinstance(record_date, dt.date) and window_from > record_date:
        problems.append({"location": "json", "field": "window_from",
                         "message": "not after the record date"})
    if problems:
        raise ValidationFailed("invalid distribution", errors=problems)
    collectives = _collectives(session, collective_party_ids)
    authorize(actor, "sharing.run.prepare",
              county={county_of(c.region_code) for c in collectives})
    fund = config.get_fund(session, fund_code)
    version = config.get_version(session, rule_code, rule_version)
    request = {"kind": "distribution", "fund": fund.account_code, "rule": rule_code,
               "version": version.version, "amount_fen": amount_fen,
               "collectives": collective_party_ids, "record_date": record_date.isoformat(),
               "window_from": window_from.isoformat() if window_from else None,
               "households": household_party_ids, "memo": memo}
    request_sha256 = config.canonical_sha256(request)
    found = _existing(session, reference, request_sha256)
    if found is not None:
        return found
    available = core.account_balance(session, READER, fund.account_code).available or 0
    if amount_fen > available:
        raise errors.FundInsufficient(
            f"the fund {fund.account_code} holds {available} fen available, less than the "
            f"{amount_fen} fen to distribute", available_fen=available)
    villages, accounts = villages_with_accounts(session, collective_party_ids, record_date,
                                                only=household_party_ids)
    try:
        blocks = allocation.evaluate_rule(amount_fen, version.definition, villages)
    except allocation.AllocationError as exc:
        raise errors.NothingToShare(str(exc)) from exc
    lines = _lines(session, actor, blocks, collectives, accounts)
    if version.used_at is None:
        version.used_at = now
    run = SharingRun(
        kind="distribution", reference=reference, fund_id=fund.id, rule_version_id=version.id,
        payer_account_code=fund.account_code, amount_fen=amount_fen,
        collective_party_ids=list(collective_party_ids), record_date=record_date,
        window_from=window_from, status="prepared", memo=memo, request_sha256=request_sha256,
        line_count=len(lines), lines_sha256="", prepared_by=actor.label,
        prepared_token_id=actor.token_id, prepared_at=now)
    session.add(run)
    session.flush()
    run.lines_sha256 = _insert_lines(session, run, lines)
    session.flush()
    audit.record(session, actor, "sharing.run.prepare", "sharing_run", run.id,
                 after=audit.snapshot(run))
    return RunResult(run)


def _lines(session: Session, actor: Principal, blocks: list[allocation.Block],
           collectives: list[Party], accounts: dict[int, str]) -> list[Line]:
    collective_accounts = {c.id: account_of(session, actor, c) for c in collectives}
    lines: list[Line] = []
    for kind, targets, village, part, amounts, weights in blocks:
        if kind == "account":
            try:
                account = core.get_account(session, READER, targets)
            except core.errors.AccountNotFound as exc:
                raise errors.InvalidRule(f"rule part {part!r} pays account {targets!r}, which "
                                         "does not exist", errors=[
                                             {"location": "json", "field": "rule_code",
                                              "message": f"unknown account {targets!r}"}]) from exc
            lines.append(("account", account.party_id, village, account.code, part, None,
                          int(amounts[0])))
        elif kind == "collective":
            lines.append(("collective", int(targets), int(targets),
                          collective_accounts[int(targets)], part, None, int(amounts[0])))
        else:
            assert weights is not None
            households = targets.tolist()
            # one pass at C speed: a village may have 100,000 households
            lines.extend(zip(repeat("household"), households, repeat(village),
                             map(accounts.__getitem__, households), repeat(part),
                             weights.tolist(), amounts.tolist(), strict=False))
    return lines


def prepared_by(run: SharingRun, actor: Principal) -> bool:
    """Whether `actor` prepared `run` (by token where either has one, else by label)."""
    if run.prepared_token_id is not None or actor.token_id is not None:
        return run.prepared_token_id == actor.token_id
    return run.prepared_by == actor.label


def _four_eyes(run: SharingRun, actor: Principal) -> None:
    if prepared_by(run, actor):
        raise errors.FourEyesViolation(
            f"run {run.id} was prepared by {run.prepared_by}: another finance officer "
            "approves it")


def get_run(session: Session, run_id: int, *, lock: bool = False) -> SharingRun:
    stmt = sa.select(SharingRun).where(SharingRun.id == run_id)
    if lock:
        stmt = stmt.with_for_update()
    run = session.scalar(stmt) if isinstance(run_id, int) and 0 < run_id < 2**63 else None
    if run is None:
        raise errors.RunNotFound(f"no distribution run {run_id}")
    return run


@paused_gc()
def approve_run(session: Session, actor: Principal, run_id: int, *,
                now: dt.datetime | None = None) -> RunResult:
    """Approve a prepared distribution and pay it: one ledger batch from the fund to every
    line with an amount, and the run's attribution to the fund's inflows. Approving a paid
    run again returns it unchanged (it pays once)."""
    now = now or utcnow()
    authorize(actor, "sharing.run.approve")
    run = get_run(session, run_id, lock=True)
    if run.status == "paid":
        return RunResult(run, replayed=True)
    if run.status != "prepared" or run.kind != "distribution":
        raise errors.RunNotPrepared(f"run {run.id} is {run.status}, not waiting for approval")
    _four_eyes(run, actor)
    assert run.fund_id is not None
    fund = session.scalar(sa.select(SharingFund).where(SharingFund.id == run.fund_id)
                          .with_for_update())
    assert fund is not None
    lines = _load_lines(session, run)
    if _digest(lines) != run.lines_sha256:  # pragma: no cover - tampering
        raise errors.RunNotPrepared(f"run {run.id}'s lines differ from the preview approved")
    available = core.account_balance(session, READER, fund.account_code).available or 0
    if run.amount_fen > available:
        raise errors.FundInsufficient(
            f"the fund {fund.account_code} holds {available} fen available, less than the "
            f"{run.amount_fen} fen of run {run.id}", available_fen=available)
    from ledger.sharing.services.trace import (  # the attribution rule
        store_attribution,
        unattributed,
    )

    today = local_date(now)
    inflows, remaining = unattributed(session, fund, window_from=run.window_from, date_to=today)
    try:
        attributed = allocation.attribute(run.amount_fen, remaining)
    except allocation.AllocationError as exc:
        raise errors.FundInsufficient(
            f"the fund's inflows from {run.window_from or 'its start'} to {today} not yet "
            f"attributed to a distribution ({int(np.sum(remaining))} fen) do not cover "
            f"{run.amount_fen} fen") from exc
    batch_id = _pay(session, actor, run, lines, action="sharing.run.approve", on=today,
                    memo=f"{run.reference} 利益分配 benefit distribution")
    sources = [{"run_id": run.id, "inflow_transaction_id": inflow.transaction_id,
                "fund_id": fund.id, "amount_fen": int(part)}
               for inflow, part in zip(inflows, attributed.tolist(), strict=True) if part > 0]
    bulk_insert_records(session, SharingRunSource.__table__, sources)
    store_attribution(session, run, [(ln[1], ln[7]) for ln in lines],
                      [(s["inflow_transaction_id"], s["amount_fen"]) for s in sources])
    fund.attributed_fen += run.amount_fen
    before = audit.snapshot(run)
    run.status, run.approved_by, run.paid_at, run.paid_on = "paid", actor.label, now, today
    run.ledger_batch_id = batch_id
    session.flush()
    audit.record(session, actor, "sharing.run.approve", "sharing_run", run.id, before=before,
                 after={**audit.snapshot(run), "sources": [
                     [s["inflow_transaction_id"], s["amount_fen"]] for s in sources]})
    return RunResult(run)


def cancel_run(session: Session, actor: Principal, run_id: int) -> SharingRun:
    """Cancel a prepared run (nothing was paid); its rule version stays immutable."""
    authorize(actor, "sharing.run.cancel")
    run = get_run(session, run_id, lock=True)
    if run.status != "prepared":
        raise errors.RunNotPrepared(f"run {run.id} is {run.status}: only a prepared run can "
                                    "be cancelled")
    before = audit.snapshot(run)
    run.status = "cancelled"
    session.flush()
    audit.record(session, actor, "sharing.run.cancel", "sharing_run", run.id, before=before,
                 after=audit.snapshot(run))
    return run


#: a run's lines as (id, line no, kind, party, village, account code, part, amount)
_LOAD_LINES = (
    "SELECT id, line_no, kind, party_id, village_party_id, account_code, part, amount_fen "
    "FROM sharing_run_lines WHERE run_id = %s ORDER BY line_no")


def _load_lines(session: Session, run: SharingRun) -> list[tuple]:
    session.flush()
    # driver rows, not the ORM nor Core rows: 100,000 plain tuples
    return driver_rows(session, _LOAD_LINES, (run.id,))


def _digest(lines: Sequence[tuple]) -> str:
    return lines_digest(map(operator.itemgetter(2, 3, 4, 5, 6, 7), lines))


def _pay(session: Session, actor: Principal, run: SharingRun, lines: Sequence[tuple], *,
         action: str, on: dt.date, memo: str) -> int:
    """Post the run: transactions of up to 999 credits, each with its debit of the payer,
    in one batch; the lines learn their transaction."""
    # (line no, account code, amount) of the lines with an amount
    paying = [(ln[1], ln[5], ln[7]) for ln in lines if ln[7] > 0]
    specs, chunks = [], []
    credit = core.PostingSpec
    for start in range(0, len(paying), CREDITS_PER_TRANSACTION):
        chunk = paying[start:start + CREDITS_PER_TRANSACTION]
        total = sum(amount for _, _, amount in chunk)
        specs.append(core.TransactionSpec(
            type=TRANSACTION_TYPES[run.kind], effective_date=on, memo=memo,
            metadata={"sharing_run": run.id, "reference": run.reference,
                      "lines": [chunk[0][0], chunk[-1][0]]},
            postings=[core.PostingSpec(run.payer_account_code, "CNY", "debit", total),
                      *[credit(code, "CNY", "credit", amount) for _, code, amount in chunk]]))
        chunks.append((chunk[0][0], chunk[-1][0]))
    batch_id, tx_ids = core.post_batch(session, actor, specs, memo=memo, action=action)
    _mark_paid(session, run, chunks, tx_ids)
    return batch_id


def _mark_paid(session: Session, run: SharingRun, chunks: list[tuple[int, int]],
               tx_ids: list[int]) -> None:
    """Each paying line learns its transaction (`chunks`: the line ranges, in order)."""
    table = SharingRunLine.__table__
    session.connection().execute(
        table.update().where(table.c.run_id == run.id,
                             table.c.line_no >= sa.bindparam("first"),
                             table.c.line_no <= sa.bindparam("last"),
                             table.c.amount_fen > 0)
        .values(transaction_id=sa.bindparam("tx_id")),
        [{"first": first, "last": last, "tx_id": tx_id}
         for (first, last), tx_id in zip(chunks, tx_ids, strict=True)])


# --- single-tree purchases -----------------------------------------------------------------------


def eligible_trees(trees: np.ndarray, area_m2: np.ndarray,
                   programme: SharingTreeProgramme) -> np.ndarray:
    """Trees a programme pays for per household: the enrolled trees, at most the per-household
    cap, and, where the household's area is registered (> 0), at most `max_trees_per_mu` per
    mu of it (pro rata below the area cap, rounded down to whole trees)."""
    eligible = np.minimum(np.asarray(trees, dtype=np.int64), programme.max_trees_per_household)
    if programme.max_trees_per_mu:
        area = np.asarray(area_m2, dtype=np.int64)
        by_area = programme.max_trees_per_mu * area * M2_PER_MU_DENOMINATOR \
            // M2_PER_MU_NUMERATOR
        eligible = np.where(area > 0, np.minimum(eligible, by_area), eligible)
    return eligible


@paused_gc()
def create_purchase(session: Session, actor: Principal, *, reference: str, programme_code: str,
                    buyer_account_code: str, collective_party_ids: list[int],
                    record_date: dt.date, years: int = 1,
                    household_party_ids: list[int] | None = None, memo: str | None = None,
                    now: dt.datetime | None = None) -> RunResult:
    """A buyer pays for the single-tree carbon of the households of `collective_party_ids`
    (or only `household_party_ids` of them) for `years` years: eligible trees x price x
    years to each household, in full, exact to the fen, in one ledger batch from the
    buyer's account. Each household's statement names the buyer."""
    now = now or utcnow()
    authorize(actor, "sharing.purchase.create", party=actor.party_id)
    problems = _common_checks(collective_party_ids, record_date, now)
    programme = config.get_programme(session, programme_code)
    if isinstance(years, bool) or not isinstance(years, int) or \
            not 1 <= years <= programme.term_years:
        problems.append({"location": "json", "field": "years",
                         "message": f"1 to {programme.term_years} (the programme's term)"})
    if memo is not None and len(memo) > 300:
        problems.append({"location": "json", "field": "memo", "message": "at most 300 characters"})
    if problems:
        raise ValidationFailed("invalid single-tree purchase", errors=problems)
    buyer_account = core.get_account(session, actor, buyer_account_code)
    authorize(actor, "sharing.purchase.create", party=buyer_account.party_id)
    buyer = session.get(Party, buyer_account.party_id)
    assert buyer is not None
    request_sha256 = config.canonical_sha256({
        "kind": "single_tree", "programme": programme.code, "buyer": buyer_account.code,
        "collectives": collective_party_ids, "record_date": record_date.isoformat(),
        "years": years, "households": household_party_ids, "memo": memo})
    found = _existing(session, reference, request_sha256)
    if found is not None:
        return found
    collectives = _collectives(session, collective_party_ids)
    villages, accounts = villages_with_accounts(session, collective_party_ids, record_date,
                                                only=household_party_ids)
    lines: list[Line] = []
    part = f"{programme.code}: {programme.price_fen_per_tree_year} fen/tree/year x {years}"
    for village in villages:
        trees = eligible_trees(village.columns["trees"], village.columns["area_m2"], programme)
        amounts = trees * programme.price_fen_per_tree_year * years
        for h, t, amount in zip(village.household_party_ids.tolist(), trees.tolist(),
                                amounts.tolist(), strict=True):
            if t > 0:
                lines.append(("household", h, village.collective_party_id, accounts[h], part,
                              t, amount))
    total = sum(line[6] for line in lines)
    if total <= 0:
        raise errors.NothingToShare("no household of these collectives has trees enrolled "
                                    f"on {record_date}")
    if total > MAX_AMOUNT_FEN:
        raise errors.InvalidAmount(f"the purchase comes to {total} fen, more than one "
                                   "request may pay")
    available = core.account_balance(session, actor, buyer_account.code).available or 0
    if total > available:
        raise errors.FundInsufficient(
            f"the buyer's account {buyer_account.code} holds {available} fen available, less "
            f"than the {total} fen of this purchase", available_fen=available)
    del collectives
    run = SharingRun(
        kind="single_tree", reference=reference, programme_id=programme.id,
        buyer_party_id=buyer.id, payer_account_code=buyer_account.code, years=years,
        amount_fen=total, collective_party_ids=list(collective_party_ids),
        record_date=record_date, status="paid", memo=memo, request_sha256=request_sha256,
        line_count=len(lines), lines_sha256="", prepared_by=actor.label,
        prepared_token_id=actor.token_id, prepared_at=now, approved_by=actor.label,
        paid_at=now, paid_on=local_date(now))
    session.add(run)
    session.flush()
    run.lines_sha256 = _insert_lines(session, run, lines)
    session.flush()
    run.ledger_batch_id = _pay(
        session, actor, run, _load_lines(session, run), action="sharing.purchase.create",
        on=local_date(now), memo=f"{reference} 单株碳汇 single-tree carbon, buyer 购买方 "
                                 f"{buyer.name_zh}")
    session.flush()
    audit.record(session, actor, "sharing.purchase.create", "sharing_run", run.id,
                 after=audit.snapshot(run))
    return RunResult(run)


def list_runs(session: Session, actor: Principal, *, kind: str | None = None,
              status: str | None = None) -> sa.Select:
    authorize(actor, "sharing.read")
    stmt = sa.select(SharingRun)
    if kind:
        stmt = stmt.where(SharingRun.kind == kind)
    if status:
        stmt = stmt.where(SharingRun.status == status)
    return stmt.order_by(SharingRun.id.desc())


def lines_of(session: Session, actor: Principal, run_id: int) -> sa.Select:
    authorize(actor, "sharing.read")
    run = get_run(session, run_id)
    return sa.select(SharingRunLine).where(SharingRunLine.run_id == run.id) \
        .order_by(SharingRunLine.line_no)


def read_run(session: Session, actor: Principal, run_id: int) -> SharingRun:
    authorize(actor, "sharing.read")
    return get_run(session, run_id)
