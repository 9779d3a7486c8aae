"""`ledger.core.account_inflows`: the posted credits of an account with who paid them."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from ecovalue.auth import system_principal
from ledger import core
from tests.ledger.conftest import NOW, transfer

ADMIN = system_principal("test")


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def test_inflows_name_the_payer_and_leave_reversals_out(database, world):
    with database.unit_of_work() as s:
        core.post(s, ADMIN, transfer("BANK", "PLANT", 1_000, type="deposit",
                                     effective_date=dt.date(2024, 3, 1)))
        first = core.post(s, ADMIN, transfer("PLANT", "FUND", 300, type="compensation",
                                             effective_date=dt.date(2024, 3, 1))).id
        second = core.post(s, ADMIN, transfer("BANK", "FUND", 200, type="deposit")).id
        core.post(s, ADMIN, transfer("FUND", "ALICE", 100))  # a debit: no inflow
        undone = core.post(s, ADMIN, transfer("PLANT", "FUND", 50)).id
        core.reverse_transaction(s, ADMIN, undone)
        pending = core.post(s, ADMIN, core.TransactionSpec(type="transfer", pending=True,
                                                           postings=transfer("PLANT", "FUND",
                                                                             7).postings))
    with database.unit_of_work() as s:
        inflows = core.account_inflows(s, ADMIN, "FUND")
        assert [(i.transaction_id, i.amount, i.type) for i in inflows] == [
            (first, 300, "compensation"), (second, 200, "deposit"), (undone, 50, "transfer")]
        assert inflows[0].payers == (("PLANT", world.plant),)
        assert inflows[0].effective_date == dt.date(2024, 3, 1)
        assert inflows[2].reversed_by_id is not None and inflows[0].reversed_by_id is None
        assert [i.transaction_id for i in core.account_inflows(
            s, ADMIN, "FUND", date_from=dt.date(2024, 3, 2))] == [second, undone]
        assert [i.transaction_id for i in core.account_inflows(
            s, ADMIN, "FUND", transaction_ids=[second, pending.id])] == [second]
        # posting the pending makes its credit an inflow (of the resolution transaction)
        resolution = core.post_pending(s, ADMIN, pending.id)
        assert core.account_inflows(s, ADMIN, "FUND")[-1].transaction_id == resolution.id


def test_a_trader_reads_only_its_own_inflows(database, world):
    from ecovalue.auth.policy import Principal, Role

    trader = Principal(role=Role.TRADER, label="token:3", token_id=3, party_id=world.plant)
    with database.unit_of_work() as s:
        assert core.account_inflows(s, trader, "PLANT") == []
        with pytest.raises(core.AccountNotOwned):
            core.account_inflows(s, trader, "FUND")
