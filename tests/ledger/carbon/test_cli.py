"""`ecovalue carbon verify` and `ecovalue ledger verify` find a broken serial partition."""

from __future__ import annotations

import sqlalchemy as sa

from ledger.carbon.models import CarbonBlock
from tests.ledger.carbon.conftest import issued_batch


def test_verify_commands_catch_a_missing_block(world, database, cli):
    batch = issued_batch(database, world)
    assert cli("carbon", "verify").exit_code == 0
    assert cli("ledger", "verify").exit_code == 0
    holdings = cli("carbon", "holdings", batch)
    assert holdings.exit_code == 0 and "buffer" in holdings.output
    with database.unit_of_work() as s:  # tamper: serials 1-10 vanish from the owner's block
        s.execute(sa.update(CarbonBlock).where(CarbonBlock.start_serial == 1)
                  .values(start_serial=11))
    for command in (("carbon", "verify"), ("ledger", "verify")):
        result = cli(*command)
        assert result.exit_code == 1, command
        assert f"{batch}: serials 1-10 are held by no account" in result.output
        assert "ledger balance" in result.output
