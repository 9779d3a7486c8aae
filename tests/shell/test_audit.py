"""Audit trail: hash chain appended in order, verified, tampering detected and located."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa

from ecovalue import audit
from ecovalue.audit.models import AuditEvent
from ecovalue.audit.services import GENESIS_HASH
from ecovalue.db import pipelined
from tests.conftest import tampering


def _append(database, system, n):
    with database.unit_of_work() as s:
        for i in range(n):
            audit.record(s, system, "test.change", "thing", i, before={"v": i},
                         after={"v": i + 1, "name": "生态产品", "ratio": 0.1})


def test_chain_links_each_event_to_the_previous(database, system):
    _append(database, system, 3)
    with database.session() as s:
        events = list(s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)))
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    first = events[0]  # the documented link, also on PostgreSQL where SQL computes it
    content = hashlib.sha256(json.dumps({
        "occurred_at": first.occurred_at.isoformat(), "actor": first.actor,
        "action": "test.change", "entity_type": "thing", "entity_id": "0", "before": {"v": 0},
        "after": {"v": 1, "name": "生态产品", "ratio": 0.1}, "request_id": None,
    }, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    assert first.hash == hashlib.sha256(f"1|{GENESIS_HASH}|{content}".encode()).hexdigest()
    with database.session() as s:
        report = audit.verify_chain(s)
    assert report.ok and report.checked == 3


def test_tampered_row_is_named(database, system):
    _append(database, system, 5)
    with tampering(database) as s:
        s.execute(sa.update(AuditEvent).where(AuditEvent.seq == 3)
                  .values(after={"v": 999, "name": "生态产品", "ratio": 0.1}))
    with database.session() as s:
        report = audit.verify_chain(s)
    assert not report.ok
    assert report.first_broken_seq == 3 and report.checked == 2
    assert "altered" in report.reason


def test_deleted_row_is_named(database, system):
    _append(database, system, 4)
    with tampering(database) as s:
        s.execute(sa.delete(AuditEvent).where(AuditEvent.seq == 2))
    with database.session() as s:
        report = audit.verify_chain(s)
    assert (report.ok, report.first_broken_seq) == (False, 2)


def test_cli_verify_exit_codes(cli, database, system):
    _append(database, system, 2)
    ok = cli("audit", "verify")
    assert ok.exit_code == 0 and "2 events verified" in ok.output
    with tampering(database) as s:
        s.execute(sa.update(AuditEvent).where(AuditEvent.seq == 1).values(actor="someone else"))
    broken = cli("audit", "verify")
    assert broken.exit_code == 1 and "event 1" in broken.output


def test_audit_api_filters_and_requires_auditor(client, tokens, database, system, problem):
    _append(database, system, 3)
    problem(client.get("/audit"), 401)
    problem(client.get("/audit", headers=tokens.registrar()), 403)
    body = client.get("/audit?entity_type=thing&entity_id=1", headers=tokens.auditor).get_json()
    # the token creation for the auditor is itself audited; filter on the test entity
    assert [e["entity_id"] for e in body["items"]] == ["1"]
    page = client.get("/audit?action=test.&page_size=2", headers=tokens.admin).get_json()
    assert page["total"] == 3 and page["pages"] == 2 and len(page["items"]) == 2
    assert client.get("/audit/verify", headers=tokens.auditor).get_json()["ok"] is True


def test_appends_queued_in_a_pipeline_chain_in_order(database, system):
    """PostgreSQL queues the writes inside `pipelined`; the next head read goes with them."""
    with database.unit_of_work() as s, pipelined(s):
        for i in range(3):
            audit.record(s, system, "test.change", "thing", i, after={"v": i})
    with database.session() as s:
        assert [e.seq for e in s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq))] \
            == [1, 2, 3]
        assert s.scalar(sa.select(sa.func.count()).where(AuditEvent.before.is_(None))) == 3
        assert audit.verify_chain(s).ok


def test_a_queued_write_that_fails_is_sqlalchemys_error_and_leaves_nothing(database, system):
    _append(database, system, 1)
    with database.session() as s:
        first = s.execute(sa.select(AuditEvent.__table__)).mappings().one()
    with pytest.raises(sa.exc.IntegrityError), database.unit_of_work() as s, pipelined(s):
        audit.record(s, system, "test.change", "thing", 2)
        s.connection().execute(sa.insert(AuditEvent.__table__), dict(first))  # seq 1 again
    with database.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 1
