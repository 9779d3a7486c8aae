"""`account_id_sql`: the account `ensure_account` finds, as a subquery a sibling puts into a
statement of its own (the market's take reads its CNY accounts with it)."""

from __future__ import annotations

import sqlalchemy as sa

from ecovalue.auth import system_principal
from ledger import core as ledger

SYS = system_principal("test")


def test_it_finds_what_ensure_account_finds_and_null_when_there_is_none(world, database):
    party = sa.bindparam("party", type_=sa.BigInteger)
    stmt = sa.select(ledger.account_id_sql(party, "CNY", "holding"),
                     ledger.account_id_sql(party, "CNY", "escrow", "ESCROW"),
                     ledger.account_id_sql(party, "CNY", "escrow", "NO-SUCH-CODE"),
                     ledger.account_id_sql(party, "FCC-WM-2023-001", "holding"))
    with database.unit_of_work() as s:
        alice = s.execute(stmt, {"party": world.alice}).one()
        bank = s.execute(stmt, {"party": world.bank_party}).one()
        assert tuple(alice) == (world.accounts["ALICE"], None, None, world.accounts["ALICE-C"])
        assert tuple(bank) == (None, world.accounts["ESCROW"], None, None)
        assert alice[0] == ledger.ensure_account(s, SYS, party_id=world.alice, asset="CNY",
                                                 kind="holding").id
        # a second holding: both find the first (lowest id)
        ledger.create_account(s, SYS, party_id=world.alice, asset="CNY", kind="holding",
                              code="ALICE-2")
        assert s.execute(stmt, {"party": world.alice}).one()[0] == world.accounts["ALICE"]
        assert ledger.ensure_account(s, SYS, party_id=world.alice, asset="CNY",
                                     kind="holding").id == world.accounts["ALICE"]
