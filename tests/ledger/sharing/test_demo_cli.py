"""The demo loader and the `ecovalue sharing` commands."""

from __future__ import annotations

import sqlalchemy as sa

from ecovalue.auth import system_principal
from ledger import core
from ledger.sharing.models import SharingRun
from tests.conftest import load_demo


def test_demo_distributes_the_fund_and_traces_it(app, database, cli, tmp_path):
    load_demo(app)
    with database.unit_of_work() as s:
        distribution, purchase = s.scalars(sa.select(SharingRun).order_by(SharingRun.id)).all()
    assert (distribution.kind, distribution.status, distribution.amount_fen) == (
        "distribution", "paid", 150_000_00)
    assert (purchase.kind, purchase.amount_fen) == ("single_tree", 1805 * 300)
    verified = cli("ledger", "verify")
    assert verified.exit_code == 0, verified.output
    again = cli("demo", "load")
    assert "already present" in again.output
    shown = cli("sharing", "run", "show", str(distribution.id))
    assert "DEMO-WM-2025-1" in shown.output and "collective" in shown.output
    household = cli("sharing", "trace", "household", "11")
    assert household.exit_code == 0, household.output
    assert "兴义火电厂 (DEMO)" in household.output and "望谟火电厂 (DEMO)" in household.output
    out = tmp_path / "dalang.html"
    written = cli("sharing", "statement", "4", "-o", str(out))
    assert written.exit_code == 0, written.output
    assert "村级收益对账单" in out.read_text(encoding="utf-8")
    own = cli("sharing", "run", "approve", str(distribution.id), "--approver", "li")
    assert "already paid" in own.output


def test_cli_four_eyes_and_bad_input(app, database, cli):
    load_demo(app)
    prepared = cli("sharing", "run", "prepare", "--reference", "CLI-1", "--fund",
                   "DEMO-WM-SHARING-FUND", "--rule", "DEMO-WM-30-70", "--amount-fen", "1000",
                   "--collective", "4", "--record-date", "2025-06-30", "--preparer", "wang")
    assert prepared.exit_code == 0, prepared.output
    run_id = prepared.output.split()[1]
    refused = cli("sharing", "run", "approve", run_id, "--approver", "wang")
    assert refused.exit_code == 1 and "another finance officer" in refused.output
    paid = cli("sharing", "run", "approve", run_id, "--approver", "li")
    assert paid.exit_code == 0 and "paid" in paid.output
    too_much = cli("sharing", "run", "prepare", "--reference", "CLI-2", "--fund",
                   "DEMO-WM-SHARING-FUND", "--rule", "DEMO-WM-30-70", "--amount-fen",
                   "999999999999", "--collective", "4", "--record-date", "2025-06-30",
                   "--preparer", "wang")
    assert too_much.exit_code == 1 and "less than" in too_much.output


READER = system_principal("test")


def test_cli_reverses_a_paid_distribution_once(app, database, cli):
    load_demo(app)
    prepared = cli("sharing", "run", "prepare", "--reference", "CLI-R", "--fund",
                   "DEMO-WM-SHARING-FUND", "--rule", "DEMO-WM-30-70", "--amount-fen", "1000",
                   "--collective", "4", "--record-date", "2025-06-30", "--preparer", "wang")
    run_id = prepared.output.split()[1]
    assert cli("sharing", "run", "approve", run_id, "--approver", "li").exit_code == 0
    with database.unit_of_work() as s:
        fund_before = core.account_balance(s, READER, "DEMO-WM-SHARING-FUND").balance
    no_reason = cli("sharing", "run", "reverse", run_id)
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    own = cli("sharing", "run", "reverse", run_id, "--reason", "x", "--reverser", "wang")
    assert own.exit_code == 1 and "another finance officer reverses it" in own.output
    unpaid = cli("sharing", "run", "reverse", "999", "--reason", "x")
    assert unpaid.exit_code == 1 and "no distribution run 999" in unpaid.output
    done = cli("sharing", "run", "reverse", run_id, "--reason", "测试 test", "--reverser", "li")
    assert done.exit_code == 0, done.output
    assert f"run {run_id} reversed on" in done.output and "10.00 yuan back to " \
        "DEMO-WM-SHARING-FUND, 1 ledger transaction(s) reversed" in done.output
    again = cli("sharing", "run", "reverse", run_id, "--reason", "测试 test")
    assert again.exit_code == 0 and "(already reversed)" in again.output
    with database.unit_of_work() as s:
        assert s.get(SharingRun, int(run_id)).status == "reversed"
        fund_after = core.account_balance(s, READER, "DEMO-WM-SHARING-FUND").balance
    assert fund_after == fund_before + 1000
    verified = cli("ledger", "verify")
    assert verified.exit_code == 0, verified.output
