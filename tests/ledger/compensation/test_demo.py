"""The demo dataset's compensation: the Nanpan agreement in force, 2024 settled."""

from __future__ import annotations

from ecovalue.auth import system_principal
from ledger import core as ledger
from ledger.compensation.services import agreements, settlements
from tests.conftest import load_demo


def test_demo_agreement_in_force_and_2024_settled(app, database):
    load_demo(app)
    actor = system_principal("test")
    with database.unit_of_work() as s:
        agreement = agreements.in_force(s, actor, "DEMO-NANPAN-2024")
        assert agreement.version == 1
        (settlement,) = s.scalars(settlements.list_settlements(s, actor)).all()
        assert (settlement.period, settlement.status) == ("2024", "approved")
        assert ledger.account_balance(s, actor, "COMP-DEMO-NANPAN-2024-WANGMO").balance == \
            400_000_00
        assert settlements.verify(s, actor) == []
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert "compensation: demo agreement already present" in result.output
