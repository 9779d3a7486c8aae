"""Statement import, runs, decisions, sign-off and period close, through the services, on the
database the suite runs on."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa
from flask import render_template
from openpyxl import load_workbook

from ecovalue.audit.models import AuditEvent
from ecovalue.errors import Forbidden
from ledger import core as ledger
from ledger.reconcile import errors, simulate
from ledger.reconcile.models import ReconcileItem, ReconcileLine, ReconcileStatement
from ledger.reconcile.services import reports, runs, statements
from tests.ledger.conftest import make_party
from tests.ledger.reconcile.conftest import (
    AUDITOR,
    PERIOD,
    PREPARER,
    SIGNER,
    csv_bytes,
    day,
    pay,
    xlsx_bytes,
)

pytestmark = pytest.mark.usefixtures("after_the_month")


@pytest.fixture()
def month(world, database):
    """March 2024 in the ledger: two deposits into FUND and a payout from it to ALICE."""
    with database.unit_of_work() as s:
        ids = {
            "grant": pay(s, "BANK", "FUND", 500_000_00, day(3), reference="GZ-2024-031"),
            "plant": pay(s, "BANK", "FUND", 80_000_00, day(10), reference="PL-77"),
            "payout": pay(s, "FUND", "ALICE", 120_000_00, day(15), type_="payout"),
        }
    return ids


def statement_rows(ids):
    return [
        (day(3).isoformat(), "S1", "500000.00", None, "500000.00", "州财政局", "GZ-2024-031", None),
        (day(11).isoformat(), "S2", "80000.00", None, "580000.00", "州 财政局", None, "货款"),
        (day(16).isoformat(), "S3", None, "120000.00", "460000.00", "望谟县某村集体", None,
         f"EV-{ids['payout']}"),
        (day(31).isoformat(), "S4", "12.34", None, "460012.34", "银行", None, "利息"),
    ]


def import_(session, data, **kwargs):
    kwargs.setdefault("account", "FUND")
    kwargs.setdefault("period", PERIOD)
    return statements.import_statement(session, PREPARER, data, "march.csv", **kwargs)


def test_import_then_reimport_adds_nothing(database, month):
    data = csv_bytes(statement_rows(month))
    with database.unit_of_work() as s:
        first = import_(s, data)
    assert (first.lines_added, first.lines_already_present) == (4, 0)
    assert (first.opening_balance_fen, first.closing_balance_fen) == (0, 460_012_34)
    with database.unit_of_work() as s:
        again = import_(s, data)
    assert (again.lines_added, again.lines_already_present, again.line_count) == (0, 4, 4)
    with database.unit_of_work() as s:  # the same lines as GBK, and as XLSX: still nothing new
        assert import_(s, csv_bytes(statement_rows(month), encoding="gbk")).lines_added == 0
        assert import_(s, xlsx_bytes(statement_rows(month))).lines_added == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(ReconcileLine)) == 4
        amounts = sorted(s.scalars(sa.select(ReconcileLine.amount_fen)))
    assert amounts == [-120_000_00, 12_34, 80_000_00, 500_000_00]


def test_a_second_file_adds_the_new_lines_only(database, month):
    rows = statement_rows(month)
    with database.unit_of_work() as s:
        import_(s, csv_bytes(rows[:2]))
    with database.unit_of_work() as s:
        result = import_(s, csv_bytes(rows))
    assert (result.lines_added, result.lines_already_present) == (2, 2)


def test_every_bad_line_is_reported_and_nothing_is_stored(database, month):
    rows = [
        (day(3).isoformat(), "S1", "500000.00", None, None, "州财政局", "GZ", None),
        (day(3).isoformat(), "S1", "10.00", None, None, "州财政局", "GZ", None),  # serial twice
        ("2024-04-02", "S3", "5.00", None, None, "x", None, None),  # outside March
        (day(5).isoformat(), "S4", "1.234", None, None, "x", None, None),  # three decimals
        ("tomorrow", "S5", "1.00", None, None, "x", None, None),
        (day(6).isoformat(), "S6", "1.00", "1.00", None, "x", None, None),  # both sides
    ]
    data = csv_bytes(rows, header="交易日期,流水号,收入,支出,余额,对方户名,附言,摘要,网点")
    with database.unit_of_work() as s, pytest.raises(errors.StatementRejected) as refused:
        import_(s, data, opening_balance_fen=0, closing_balance_fen=1)
    codes = {(e["row"], e["code"]) for e in refused.value.errors}
    assert codes >= {(1, "unknown-column"), (3, "duplicate-line"), (4, "date-outside-period"),
                     (5, "invalid-amount"), (6, "invalid-date"), (7, "invalid-amount")}
    with database.unit_of_work() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ReconcileStatement)) == 0


def test_a_closing_balance_that_does_not_follow_is_refused(database, month):
    rows = statement_rows(month)
    with database.unit_of_work() as s, pytest.raises(errors.StatementRejected) as refused:
        import_(s, csv_bytes([(*r[:4], None, *r[5:]) for r in rows]),
                opening_balance_fen=0, closing_balance_fen=460_000_00)
    assert [e["code"] for e in refused.value.errors] == ["closing-balance"]
    assert "12.34" in refused.value.errors[0]["message"]
    bad_running = [*rows[:2], (*rows[2][:4], "460001.00", *rows[2][5:]), rows[3]]
    with database.unit_of_work() as s, pytest.raises(errors.StatementRejected) as refused:
        import_(s, csv_bytes(bad_running))
    assert ("balance-mismatch", 4) in {(e["code"], e["row"]) for e in refused.value.errors}


def test_wrong_encoding_and_exact_repeats_are_refused(database, month):
    with database.unit_of_work() as s, pytest.raises(errors.StatementRejected) as refused:
        import_(s, csv_bytes(statement_rows(month)).decode().encode("utf-16"))
    assert refused.value.errors[0]["code"] == "encoding"
    repeated = [(day(2).isoformat(), None, "1.00", None, None, "x", None, None)] * 2
    with database.unit_of_work() as s, pytest.raises(errors.StatementRejected) as refused:
        import_(s, csv_bytes(repeated), opening_balance_fen=0, closing_balance_fen=200)
    assert [(e["row"], e["code"]) for e in refused.value.errors] == [(3, "duplicate-line")]


def test_bank_mapping_reads_its_own_headers(database, month):
    header = "Txn Date,Ref No,Credit Amt,Debit Amt,Running Bal,Payer,Note,Remark"
    with database.unit_of_work() as s:
        statements.put_mapping(s, PREPARER, "HSBC", name_zh="汇丰银行", columns={
            "value_date": ["Txn Date"], "bank_serial": ["Ref No"], "credit": ["Credit Amt"],
            "debit": ["Debit Amt"], "balance": ["Running Bal"], "counterparty": ["Payer"],
            "reference": ["Note"], "memo": ["Remark"]})
    with database.unit_of_work() as s, pytest.raises(errors.StatementRejected):
        import_(s, csv_bytes(statement_rows(month), header=header))  # DEFAULT headers
    with database.unit_of_work() as s:
        assert import_(s, csv_bytes(statement_rows(month), header=header),
                       bank_code="HSBC").lines_added == 4


def _run(database, month):
    with database.unit_of_work() as s:
        import_(s, csv_bytes(statement_rows(month)))
    with database.unit_of_work() as s:
        return runs.create_run(s, PREPARER, account="FUND", period=PERIOD).id


def _items(database, run_id):
    with database.session(write=False) as s:
        return {(i.category, i.rule, i.status): i for i in s.scalars(
            sa.select(ReconcileItem).where(ReconcileItem.run_id == run_id,
                                           ReconcileItem.status != "withdrawn"))}


def test_run_matches_proposes_and_reconciles(database, month):
    run_id = _run(database, month)
    found = _items(database, run_id)
    assert set(found) == {("matched", "reference", "confirmed"),
                          ("matched", "counterparty", "proposed"),
                          ("only_in_statement", None, "open")}
    by_reference = [i for i in _all_items(database, run_id) if i.rule == "reference"]
    assert sorted(i.transaction_ids[0] for i in by_reference) == sorted(
        [month["grant"], month["payout"]])
    with database.session(write=False) as s:
        summary = runs.summarize(s, runs.get_run(s, PREPARER, run_id))
    # ledger 460,000.00 + interest 12.34 + (proposed) 80,000.00 - 80,000.00 = statement
    assert summary.ledger_closing_fen == 460_000_00
    assert summary.outstanding_statement_fen == 80_000_00 + 12_34
    assert summary.outstanding_ledger_fen == 80_000_00
    assert summary.reconciled_fen == summary.statement_closing_fen == 460_012_34
    assert summary.balanced and summary.unresolved == 2


def _all_items(database, run_id):
    with database.session(write=False) as s:
        return list(s.scalars(sa.select(ReconcileItem).where(ReconcileItem.run_id == run_id)))


def test_sign_off_rules_and_period_close(database, month):
    run_id = _run(database, month)
    found = _items(database, run_id)
    proposed = found[("matched", "counterparty", "proposed")].id
    interest = found[("only_in_statement", None, "open")].id
    with database.unit_of_work() as s, pytest.raises(errors.UnresolvedItems):
        runs.sign_off(s, SIGNER, run_id)
    with database.unit_of_work() as s:
        runs.confirm(s, PREPARER, run_id, proposed)
        with pytest.raises(Exception, match="reason"):
            runs.explain(s, PREPARER, run_id, interest, reason="  ")
        runs.explain(s, PREPARER, run_id, interest, reason="March interest, booked in April")
    with database.unit_of_work() as s, pytest.raises(errors.PreparerMaySignOff):
        runs.sign_off(s, PREPARER, run_id)
    with database.unit_of_work() as s, pytest.raises(Forbidden):
        runs.sign_off(s, AUDITOR, run_id)
    with database.unit_of_work() as s:
        signed = runs.sign_off(s, SIGNER, run_id, note="agreed with ABC's statement")
        assert signed.status == "signed_off" and signed.assertion_id is not None
        assertion = ledger.list_assertions(s, SIGNER, account="FUND")
        assert s.scalars(assertion).first().passed
    for attempt in (lambda s: runs.explain(s, PREPARER, run_id, interest, reason="again"),
                    lambda s: runs.unmatch(s, PREPARER, run_id, proposed, reason="no"),
                    lambda s: runs.create_run(s, PREPARER, account="FUND", period=PERIOD),
                    lambda s: import_(s, csv_bytes(statement_rows(month)))):
        with database.unit_of_work() as s, pytest.raises(errors.RunSignedOff):
            attempt(s)
    with database.unit_of_work() as s:
        runs.close_period(s, SIGNER, PERIOD)
    with database.unit_of_work() as s, pytest.raises(ledger.PeriodClosed):
        pay(s, "BANK", "FUND", 1, day(20))
    with database.session(write=False) as s:
        actions = set(s.scalars(sa.select(AuditEvent.action)
                                .where(AuditEvent.action.like("reconcile.%"))))
    assert actions >= {"reconcile.statement.import", "reconcile.run.create",
                       "reconcile.item.confirm", "reconcile.item.explain",
                       "reconcile.run.signoff", "reconcile.period.close"}


def test_closing_needs_every_statement_signed_off(database, month):
    _run(database, month)
    with database.unit_of_work() as s, pytest.raises(errors.PeriodNotReconciled):
        runs.close_period(s, SIGNER, PERIOD)
    with database.unit_of_work() as s, pytest.raises(errors.PeriodNotReconciled):
        runs.close_period(s, SIGNER, dt.date(2024, 2, 1))


def test_manual_match_unmatch_and_matching_twice(database, month):
    run_id = _run(database, month)
    found = _items(database, run_id)
    proposed = found[("matched", "counterparty", "proposed")]
    confirmed = next(i for i in _all_items(database, run_id) if i.rule == "reference"
                     and month["grant"] in i.transaction_ids)
    with database.unit_of_work() as s:
        reopened = runs.unmatch(s, PREPARER, run_id, proposed.id, reason="check the payer")
    assert len(reopened) == 2
    open_now = _items(database, run_id)
    assert ("only_in_ledger", None, "open") in open_now
    line = proposed.line_ids[0]
    with database.unit_of_work() as s, pytest.raises(errors.AlreadyMatched):
        runs.manual_match(s, PREPARER, run_id, line_ids=[line],
                          transaction_ids=confirmed.transaction_ids, reason="x")
    interest_line = found[("only_in_statement", None, "open")].line_ids[0]
    with database.unit_of_work() as s, pytest.raises(errors.InvalidMatch, match="sum"):
        runs.manual_match(s, PREPARER, run_id, line_ids=[interest_line],
                          transaction_ids=[month["plant"]], reason="x")
    with database.unit_of_work() as s:
        item = runs.manual_match(s, PREPARER, run_id, line_ids=[line],
                                 transaction_ids=[month["plant"]],
                                 reason="plant paid a day late; confirmed by phone")
        assert (item.rule, item.status) == ("manual", "confirmed")
    with database.session(write=False) as s:
        summary = runs.summarize(s, runs.get_run(s, PREPARER, run_id))
        assert summary.balanced and summary.unresolved == 1
        events = s.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "reconcile.item.match")).all()
    assert events[0].after["reason"].startswith("plant paid")


def test_sign_off_refused_when_the_ledger_changed(database, month):
    run_id = _run(database, month)
    with database.unit_of_work() as s:
        for item in _items(database, run_id).values():
            if item.status in ("proposed", "open"):
                runs.explain(s, PREPARER, run_id, item.id, reason="looked at")
        pay(s, "BANK", "FUND", 5_00, day(20))  # posted after the run, dated in March
    with database.unit_of_work() as s, pytest.raises(errors.LedgerChanged):
        runs.sign_off(s, SIGNER, run_id)


def test_report_sections_xlsx_and_html(database, month, app):
    run_id = _run(database, month)
    with database.session(write=False) as s:
        report = reports.build_report(s, SIGNER, PERIOD)
    sections = {sec.key: sec for sec in report.sections}
    assert [sec.key for sec in report.sections] == [
        "funds", "compensation", "sharing", "distributions", "carbon", "market",
        "reconciliations"]
    assert sections["sharing"].rows == [] and sections["market"].rows == []
    fund = next(r for r in sections["funds"].rows if r[0] == "FUND")
    assert fund[2:6] == [0, 580_000_00, 120_000_00, 460_000_00]
    assert [r[0] for r in sections["distributions"].rows] == [month["payout"]]
    assert sections["reconciliations"].rows[0][0] == run_id
    book = load_workbook(io.BytesIO(reports.report_xlsx(report)))
    assert book.sheetnames == [s.sheet_title for s in report.sections]
    assert book["资金余额 Fund balances"]["A2"].value == "account"
    with app.test_request_context():
        html = render_template("reconcile/report_print.html", report=report, yuan=reports.yuan)
    assert "资金余额" in html and "Fund balances" in html and "46000000" in html


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


@pytest.mark.parametrize("seed", [3, 11, 42])
def test_simulated_month_through_the_database(database, world, seed):
    """A simulator seed posted into the ledger (one party per counterparty, so the ledger's
    names are the simulator's) and imported as a bank CSV: the run reports exactly the
    injected findings, ids mapped to the stored ones."""
    sim = simulate.simulate(seed, period=PERIOD)
    ids: dict[int, int] = {}
    with database.unit_of_work() as s:
        pay(s, "BANK", "FUND", 10**12, PERIOD - dt.timedelta(days=1))  # an opening balance
        accounts = {}
        for n, name in enumerate(sorted(set(sim.items.counterparty))):
            party = make_party(s, name, "enterprise", "522301")
            for kind in ("external", "holding"):
                code = f"SIM-{n}-{kind}"
                ledger.create_account(s, PREPARER, party_id=party, asset="CNY", kind=kind,
                                      code=code)
            accounts[name] = n
        for row in sim.items.itertuples():
            n = accounts[row.counterparty]
            debit, credit = (f"SIM-{n}-external", "FUND") if row.amount_fen > 0 else \
                ("FUND", f"SIM-{n}-holding")
            ids[row.transaction_id] = pay(s, debit, credit, abs(row.amount_fen),
                                          row.effective_date, reference=row.reference)

    def memo(text):
        if not isinstance(text, str):
            return None
        return re.sub(r"EV-(\d+)", lambda m: f"EV-{ids[int(m[1])]}", text)

    rows = [(r.value_date.isoformat(), f"SIM-{r.line_id}",
             _yuan(r.amount_fen) if r.amount_fen > 0 else None,
             _yuan(-r.amount_fen) if r.amount_fen < 0 else None, None,
             r.counterparty, r.reference if isinstance(r.reference, str) else None,
             memo(r.memo)) for r in sim.lines.itertuples()]
    total = int(sim.lines.amount_fen.sum())
    with database.unit_of_work() as s:
        result = import_(s, csv_bytes(rows), opening_balance_fen=10**12,
                         closing_balance_fen=10**12 + total)
        run = runs.create_run(s, PREPARER, account="FUND", period=PERIOD)
        stored = dict(s.execute(sa.select(ReconcileLine.bank_serial, ReconcileLine.id)
                                .where(ReconcileLine.statement_id == result.statement_id)).all())
        found = {(i.category, i.rule, frozenset(i.line_ids), frozenset(i.transaction_ids))
                 for i in s.scalars(sa.select(ReconcileItem)
                                    .where(ReconcileItem.run_id == run.id))}
        summary = runs.summarize(s, run)
    line_of = {lid: stored[f"SIM-{lid}"] for lid in sim.lines.line_id}
    expected = {(c, r, frozenset(line_of[i] for i in ls), frozenset(ids[t] for t in ts))
                for c, r, ls, ts in sim.expected}
    assert found == expected, f"seed {seed}: replay with simulate.simulate({seed})"
    assert summary.balanced


def test_compensation_section_by_agreement_from_posted_reservations(database, world):
    """A settlement's payment is a reservation (with the agreement in its metadata) that finance
    posts later: the report shows the posted payment under its agreement; an unposted one and
    other types are not compensation."""
    from ecovalue.auth import system_principal
    actor = system_principal("test")
    with database.unit_of_work() as s:
        reserved = ledger.post(s, actor, ledger.TransactionSpec(
            type="compensation.settlement", pending=True, effective_date=day(5),
            memo="CHISHUI 2024-03", metadata={"agreement": "CHISHUI-2018"},
            postings=[ledger.PostingSpec("BANK", "CNY", "debit", 300_00),
                      ledger.PostingSpec("FUND", "CNY", "credit", 300_00)])).id
        ledger.post(s, actor, ledger.TransactionSpec(
            type="compensation.settlement", pending=True, effective_date=day(6),
            metadata={"agreement": "OTHER"},
            postings=[ledger.PostingSpec("BANK", "CNY", "debit", 7_00),
                      ledger.PostingSpec("FUND", "CNY", "credit", 7_00)]))
        posted = ledger.post_pending(s, actor, reserved, effective_date=day(7)).id
        fee = pay(s, "BANK", "FUND", 50_00, day(8), type_="pilot.fee")
        pay(s, "BANK", "FUND", 1_00, day(9), type_="deposit")
    with database.session(write=False) as s:
        report = reports.build_report(s, SIGNER, PERIOD)
    rows = next(sec for sec in report.sections if sec.key == "compensation").rows
    assert [(r[0], r[5], r[7]) for r in rows] == [(fee, 50_00, None),
                                                  (posted, 300_00, "CHISHUI-2018")]
    assert rows[1][8] == "CHISHUI 2024-03"


def test_a_new_run_carries_over_the_decisions_that_still_apply(database, month):
    """Decisions of an open run are applied again on the run that replaces it, where the same
    lines and transactions are still there; those that no longer apply are listed with why,
    and the carry-over is audited."""
    run_id = _run(database, month)
    found = _items(database, run_id)
    payout = next(i for i in _all_items(database, run_id) if i.rule == "reference"
                  and month["payout"] in i.transaction_ids)
    with database.unit_of_work() as s:
        runs.confirm(s, PREPARER, run_id, found[("matched", "counterparty", "proposed")].id,
                     reason="payee confirmed by phone")
        runs.explain(s, PREPARER, run_id, found[("only_in_statement", None, "open")].id,
                     reason="interest, booked next month")
        runs.unmatch(s, PREPARER, run_id, payout.id, reason="check the village's account")
        runs.manual_match(s, PREPARER, run_id, line_ids=payout.line_ids,
                          transaction_ids=[month["payout"]], reason="account checked")
        interest = pay(s, "BANK", "FUND", 12_34, day(31))  # the interest, booked after all
    with database.unit_of_work() as s:
        new = runs.create_run(s, SIGNER, account="FUND", period=PERIOD)
        carried = runs.carry_over_of(s, new)
        assert runs.get_run(s, SIGNER, run_id).status == "superseded"
    assert carried["from_run"] == run_id
    assert [(d["decision"], d["reason"]) for d in carried["applied"]] == [
        ("unmatch", "check the village's account"), ("match", "account checked"),
        ("confirm", "payee confirmed by phone")]
    [gone] = carried["not_applicable"]
    assert (gone["decision"], gone["reason"]) == ("explain", "interest, booked next month")
    assert "no unresolved only_in_statement" in gone["why"]
    live = _items(database, new.id)
    manual = live[("matched", "manual", "confirmed")]
    assert (manual.transaction_ids, manual.reason) == ([month["payout"]], "account checked")
    plant = live[("matched", "counterparty", "confirmed")]
    assert (plant.transaction_ids, plant.reason) == ([month["plant"]], "payee confirmed by phone")
    assert live[("matched", "amount_date", "proposed")].transaction_ids == [interest]
    with database.session(write=False) as s:
        summary = runs.summarize(s, runs.get_run(s, SIGNER, new.id))
        assert summary.unresolved == 1 and summary.balanced
        events = {e.action: e for e in s.scalars(sa.select(AuditEvent).where(
            AuditEvent.action.in_(("reconcile.run.carry_over", "reconcile.item.match")))
            .order_by(AuditEvent.seq))}
    carry_event = events["reconcile.run.carry_over"]
    assert carry_event.entity_id == str(new.id)
    assert carry_event.after["not_applicable"][0]["item_id"] == gone["item_id"]
    assert events["reconcile.item.match"].after["originally_decided_by"] == PREPARER.label


def test_a_first_run_carries_nothing_over(database, month):
    run_id = _run(database, month)
    with database.session(write=False) as s:
        assert runs.carry_over_of(s, runs.get_run(s, PREPARER, run_id)) is None


def test_the_console_run_page_lists_the_decisions_that_no_longer_apply(client, database,
                                                                      month):
    from ecovalue.auth import system_principal
    from ecovalue.auth.services import create_token
    run_id = _run(database, month)
    interest_item = _items(database, run_id)[("only_in_statement", None, "open")]
    with database.unit_of_work() as s:
        runs.explain(s, PREPARER, run_id, interest_item.id, reason="interest, next month")
        pay(s, "BANK", "FUND", 12_34, day(31))
        secret = create_token(s, system_principal("test"), name="officer",
                              role="finance").secret
    with database.unit_of_work() as s:
        new_id = runs.create_run(s, SIGNER, account="FUND", period=PERIOD).id
    client.set_cookie("ecovalue_console", secret, path="/console")
    page = client.get(f"/console/runs/{new_id}").get_data(as_text=True)
    assert f"Decisions carried over from run {run_id}" in page
    assert re.search(r'id="carried-gone">1<', page) and "interest, next month" in page
    old_page = client.get(f"/console/runs/{run_id}").get_data(as_text=True)
    assert "carried over" not in old_page
