"""`ecovalue ledger ...` from the console."""

from __future__ import annotations

import datetime as dt

from openpyxl import load_workbook

from ecovalue.clock import local_today
from ledger.core.rules import RESERVED_TYPES
from tests.ledger.conftest import balance


def test_cli_round_trip(world, cli, database, tmp_path):
    result = cli("ledger", "tx", "create", "--type", "deposit", "-p", "BANK:CNY:debit:5000",
                 "-p", "ALICE:CNY:credit:5000", "--idempotency-key", "cli-1")
    assert result.exit_code == 0, result.output
    assert "credit ALICE" in " ".join(result.output.split())
    again = cli("ledger", "tx", "create", "--type", "deposit", "-p", "BANK:CNY:debit:5000",
                "-p", "ALICE:CNY:credit:5000", "--idempotency-key", "cli-1")
    assert "(replayed)" in again.output
    assert balance(database, "ALICE").balance == 5000
    tx_id = result.output.split()[1]
    assert cli("ledger", "tx", "show", tx_id).exit_code == 0
    assert "ALICE" in cli("ledger", "account", "list", "--asset", "CNY").output
    assert "5000 CNY" in cli("ledger", "balance", "ALICE").output
    out = tmp_path / "alice.xlsx"
    assert cli("ledger", "statement", "ALICE", "-o", str(out)).exit_code == 0
    assert load_workbook(out).active["B4"].value == 0  # opening balance
    reverse = cli("ledger", "tx", "reverse", tx_id)
    assert reverse.exit_code == 0 and balance(database, "ALICE").balance == 0
    assert cli("ledger", "verify").exit_code == 0


def test_cli_errors_exit_1_with_the_reason(world, cli):
    result = cli("ledger", "tx", "create", "--type", "transfer", "-p", "ALICE:CNY:debit:5",
                 "-p", "PLANT:CNY:credit:5")
    assert result.exit_code == 1 and "short by 5" in result.output
    bad = cli("ledger", "tx", "create", "--type", "transfer", "-p", "ALICE:CNY:debit:1.5",
              "-p", "PLANT:CNY:credit:1.5")
    assert bad.exit_code == 2 and "integer amount" in bad.output


def test_cli_periods_assertions_and_batch(world, cli, tmp_path, database):
    month = local_today().replace(day=1) - dt.timedelta(days=1)
    name = f"{month:%Y-%m}"
    assert cli("ledger", "period", "close", name).exit_code == 0
    assert name in cli("ledger", "period", "list").output
    assert cli("ledger", "period", "close", name).exit_code == 1
    assert cli("ledger", "period", "reopen", name).exit_code == 0
    path = tmp_path / "batch.csv"
    path.write_text("type,debit_account,credit_account,asset,amount,effective_date,memo\n"
                    "deposit,BANK,ALICE,CNY,300,,first\ndeposit,BANK,PLANT,CNY,200,,second\n",
                    encoding="utf-8")
    result = cli("ledger", "batch", "import", str(path))
    assert result.exit_code == 0 and "2 transactions posted" in result.output
    today = local_today().isoformat()
    ok = cli("ledger", "assert", "ALICE", "--as-of", today, "--expected", "300")
    assert ok.exit_code == 0 and "passed" in ok.output
    assert cli("ledger", "assert", "ALICE", "--as-of", today, "--expected", "1").exit_code == 1
    assert cli("ledger", "recheck").exit_code == 1
    assert "expired" in cli("ledger", "pending", "expire").output


def test_cli_help_says_amounts_are_fen_and_which_types_exist(cli):
    ledger_help = " ".join(cli("ledger", "--help").output.split())
    assert "fen for CNY (50000 = 500.00 yuan)" in ledger_help
    create_help = " ".join(cli("ledger", "tx", "create", "--help").output.split())
    assert "AMOUNT is an integer: fen for CNY" in create_help
    assert "'reversal' and 'pending_resolution' are reserved" in create_help
    assert RESERVED_TYPES == {"reversal", "pending_resolution"}  # else update the help text
    assert "a lowercase letter, then up to 39 of a-z 0-9 _ ." in create_help
    assert "fen" in " ".join(cli("ledger", "assert", "--help").output.split())
