"""Racing preparations of one period: one settlement, its payments reserved once."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from ledger.compensation.models import CompensationPayment, CompensationSettlement
from ledger.compensation.services import assessments, settlements
from tests.ledger.compensation.conftest import ADMIN, PREPARER, in_force


def test_racing_preparations_settle_once(database, pilot):
    code = in_force(database, pilot)
    with database.unit_of_work() as s:
        assessments.record_values(s, ADMIN, [
            {"section": section, "period": "2019", "indicator": "water_quality_class",
             "value": "II"} for section in ("QINGSHUIPU", "LIANYUXI")])
    barrier = threading.Barrier(4)
    results: list[tuple[int, bool]] = []
    failures: list[BaseException] = []

    def prepare() -> None:
        try:
            barrier.wait()
            with database.unit_of_work() as s:
                settlement, created = settlements.prepare(s, PREPARER, code, "2019")
                results.append((settlement.id, created))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=prepare) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len({i for i, _ in results}) == 1 and sum(c for _, c in results) == 1
    with database.unit_of_work() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(CompensationSettlement)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(CompensationPayment)) == 2
        assert settlements.verify(s, ADMIN) == []
