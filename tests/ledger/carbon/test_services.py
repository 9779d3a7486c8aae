"""The registry's services end to end: project, report, issuance, movements, reversal."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ledger import core as ledger
from ledger.carbon import errors
from ledger.carbon.models import CarbonBatch, CarbonEvent, CarbonReport
from ledger.carbon.services import credits, registry, reports
from tests.ledger.carbon.conftest import ADMIN, NOW, issued_batch, registered_project

FIR = 0.307 * 1.634 * (1 + 0.246) * 0.520 * 44 / 12  # tCO2e per m3, Chinese fir
PINE = 0.380 * 1.472 * (1 + 0.187) * 0.460 * 44 / 12  # Masson pine


def test_issuance_from_catalog_records(database, world, session):
    code = issued_batch(database, world)
    batch = session.scalar(sa.select(CarbonBatch).where(CarbonBatch.asset_code == code))
    report = session.get(CarbonReport, batch.report_id)
    # north 3000 -> 3900 m3, south 1200 -> 1500 m3 (end of 2020 to end of 2023): 1,200 m3,
    # 60 % fir and 40 % pine
    expected = 1200 * (0.6 * FIR + 0.4 * PINE)
    assert report.actual_removals_tco2e == pytest.approx(expected, rel=1e-9)
    assert batch.quantity_t == int(expected)  # 1,395 t, rounded down
    assert (batch.owner_t, batch.buffer_t) == (batch.quantity_t - batch.quantity_t * 2 // 10,
                                               batch.quantity_t * 2 // 10)
    assert batch.serial_block == f"QXN-522326-WM-AR-001-2023-000001-{batch.quantity_t:06d}"
    holdings = {h["role"]: h["quantity_t"] for h in registry.holdings(session, code)}
    assert holdings == {"tradable": batch.owner_t, "buffer": batch.buffer_t}
    assert registry.verify(session, ADMIN) == []
    assert ledger.verify(session, ADMIN) == []


def test_transfer_retire_cancel_and_reversal_keep_the_invariants(database, world, session):
    code = issued_batch(database, world)
    owner = f"P{world.collective}-HOLDING-{code}"
    with database.unit_of_work() as s:
        moved = credits.transfer(s, ADMIN, account=owner, to_party_id=world.plant,
                                 quantity_t=300, now=NOW)
        assert moved.blocks == ["QXN-522326-WM-AR-001-2023-000001-000300"]
        plant = moved.target.code
        retired = credits.retire(s, ADMIN, account=plant, quantity_t=100,
                                 beneficiary_name="兴义火电厂", purpose="thermal_power_pilot",
                                 compliance_year=2024, jurisdiction="522300", now=NOW)
        assert retired.retirement.audit_hash and len(retired.retirement.audit_hash) == 64
        credits.cancel(s, ADMIN, account=plant, quantity_t=10, reason="double counting check",
                       now=NOW)
        _reversal, events = credits.record_reversal(
            s, ADMIN, "WM-AR-001", cause="fire", occurred_on=dt.date(2025, 3, 1), lost_t=50,
            description="森林火灾 (test)", now=NOW)
        assert len(events) == 1
    assert registry.verify(session, ADMIN) == []
    roles = {}
    for h in registry.holdings(session, code):
        roles[h["role"]] = roles.get(h["role"], 0) + h["quantity_t"]
    batch = session.scalar(sa.select(CarbonBatch).where(CarbonBatch.asset_code == code))
    assert roles == {"tradable": batch.owner_t - 110, "retired": 100, "cancelled": 60,
                     "buffer": batch.buffer_t - 50}
    kinds = [e.kind for e in session.scalars(sa.select(CarbonEvent).order_by(CarbonEvent.id))]
    assert kinds == ["issuance", "issuance", "transfer", "retirement", "cancellation",
                     "reversal"]


def test_retiring_buffered_or_retired_serials_is_refused(database, world, session):
    code = issued_batch(database, world)
    with database.session(write=False) as s:
        batch = s.scalar(sa.select(CarbonBatch).where(CarbonBatch.asset_code == code))
    owner = f"P{world.collective}-HOLDING-{code}"
    prefix = "QXN-522326-WM-AR-001-2023"
    buffered = f"{prefix}-{batch.owner_t + 1:06d}-{batch.owner_t + 5:06d}"
    with database.unit_of_work() as s, pytest.raises(errors.NotTradable):
        credits.retire(s, ADMIN, account=owner, serial_block=buffered, beneficiary_name="x",
                       purpose="voluntary", now=NOW)
    with database.unit_of_work() as s:
        credits.retire(s, ADMIN, account=owner, serial_block=f"{prefix}-000010-000019",
                       beneficiary_name="x", purpose="voluntary", now=NOW)
    with database.unit_of_work() as s, pytest.raises(errors.AlreadyRetired):
        credits.retire(s, ADMIN, account=owner, serial_block=f"{prefix}-000015-000016",
                       beneficiary_name="x", purpose="voluntary", now=NOW)
    with database.unit_of_work() as s, pytest.raises(errors.InvalidSerial):
        credits.retire(s, ADMIN, account=owner, serial_block=f"{prefix}-000015",
                       beneficiary_name="x", purpose="voluntary", now=NOW)
    with database.unit_of_work() as s, pytest.raises(errors.NotTradable):
        credits.retire(s, ADMIN, account=f"{code}-BUFFER", quantity_t=1, beneficiary_name="x",
                       purpose="voluntary", now=NOW)
    assert registry.verify(session, ADMIN) == []


def test_reports_refuse_overlap_and_unverified_issuance(database, world):
    project_id = registered_project(database, world)
    with database.unit_of_work() as s:
        first = reports.file_report(s, ADMIN, project_id, period_start=dt.date(2021, 1, 1),
                                    period_end=dt.date(2022, 12, 31), source="catalog",
                                    now=NOW)
        first_id = first.id
    with database.unit_of_work() as s, pytest.raises(errors.ReportNotVerified):
        credits.issue(s, ADMIN, first_id, now=NOW)
    with database.unit_of_work() as s, pytest.raises(errors.PeriodOverlap):
        reports.file_report(s, ADMIN, project_id, period_start=dt.date(2022, 1, 1),
                            period_end=dt.date(2023, 12, 31), source="catalog", now=NOW)
    with database.unit_of_work() as s, pytest.raises(errors.MonitoringDataMissing):
        reports.file_report(s, ADMIN, project_id, period_start=dt.date(2023, 1, 1),
                            period_end=dt.date(2023, 6, 30), source="catalog", now=NOW)
