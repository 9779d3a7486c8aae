"""The pilot's invariants (run by `ecovalue ledger verify`) hold after settlements and name a
tampered record; concurrent settlements of one obligation never over-settle it."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from ecovalue.errors import EcovalueError
from ledger.pilot.models import PilotObligation, PilotSettlement
from ledger.pilot.services import checks, obligations
from tests.conftest import tampering
from tests.ledger.pilot.conftest import ADMIN, NOW
from tests.ledger.pilot.test_services import balance, file_and_verify


def test_verify_is_clean_after_settlements_and_names_tampering(database, pilot, cli):
    obligation_id = file_and_verify(database, pilot)
    with database.unit_of_work() as s:
        obligations.settle(s, pilot.plant, obligation_id, retirements=[
            obligations.RetirementPart(account=pilot.plant_credits, quantity_t=10)],
            fee_t=20, now=NOW)
    with database.session() as s:
        assert checks.verify(s, ADMIN) == []
    result = cli("ledger", "verify")
    assert result.exit_code == 0, result.output
    with tampering(database) as s:
        s.execute(sa.update(PilotObligation).values(fee_t=PilotObligation.fee_t - 1,
                                                    paid_fen=PilotObligation.paid_fen - 5_000))
        s.execute(sa.update(PilotSettlement).where(PilotSettlement.kind == "retirement")
                  .values(quantity_t=11))
    with database.session() as s:
        problems = checks.verify(s, ADMIN)
    assert any("differ from its settlements" in p for p in problems)
    assert any("registry retirement" in p and "differs" in p for p in problems)
    assert cli("ledger", "verify").exit_code == 1


def test_racing_settlements_exactly_one_takes_the_last_tonnes(database, pilot):
    """Eight plants' requests at once for the whole obligation: one settles it, the others
    get a clean over-settlement refusal; the fund holds exactly one payment. On PostgreSQL
    the obligation's row lock queues them; on SQLite BEGIN IMMEDIATE does."""
    obligation_id = file_and_verify(database, pilot)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            with database.unit_of_work() as s:
                obligations.settle(s, pilot.plant, obligation_id, fee_t=1_405, now=NOW)
            outcomes.append("settled")
        except EcovalueError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["pilot-over-settlement"] * 7 + ["settled"]
    assert balance(database, "TEST-FOREST-FUND") == 1_405 * 5_000
