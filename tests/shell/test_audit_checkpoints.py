"""The audit trail cannot be rewritten unnoticed (issue: deleting the newest events, or
changing one and recomputing every later hash, left `audit verify` "intact"; on PostgreSQL an
UPDATE of an event succeeded)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
import sqlalchemy as sa

from ecovalue import audit
from ecovalue.audit.models import AuditEvent
from ecovalue.audit.services import content_hash, link
from tests.conftest import tampering

KEY = "a" * 64


def _append(database, system, n):
    with database.unit_of_work() as s:
        for i in range(n):
            audit.record(s, system, "test.change", "thing", i, after={"v": i})


def _checkpoint(database, system):
    with database.session() as s:
        return audit.checkpoint(s, system, KEY)


def _verify(database, **kwargs):
    with database.session() as s:
        return audit.verify_chain(s, **kwargs)


def _recompute_from(s, seq: int) -> None:
    """Rewrite every hash from `seq` on, as an attacker who knows the formula would."""
    events = s.scalars(sa.select(AuditEvent).where(AuditEvent.seq >= seq)
                       .order_by(AuditEvent.seq)).all()
    prev = s.scalar(sa.select(AuditEvent.hash).where(AuditEvent.seq == seq - 1))
    for event in events:
        digest = link(event.seq, prev, content_hash(
            occurred_at=event.occurred_at, actor=event.actor, action=event.action,
            entity_type=event.entity_type, entity_id=event.entity_id, before=event.before,
            after=event.after, request_id=event.request_id))
        s.execute(sa.update(AuditEvent).where(AuditEvent.seq == event.seq)
                  .values(prev_hash=prev, hash=digest))
        prev = digest


def test_truncation_after_a_checkpoint_is_detected(database, system):
    _append(database, system, 10)
    pin = _checkpoint(database, system)
    assert pin.seq == 10 and _verify(database, against=[pin], key=KEY).ok
    with tampering(database) as s:
        s.execute(sa.delete(AuditEvent).where(AuditEvent.seq > 5))
    assert _verify(database).ok  # the chain alone cannot see a cut at its end
    report = _verify(database, against=[pin], key=KEY)
    assert (report.ok, report.first_broken_seq) == (False, 6) and "truncated" in report.reason


def test_a_rewrite_with_recomputed_hashes_is_detected(database, system):
    _append(database, system, 6)
    pin = _checkpoint(database, system)
    with tampering(database) as s:
        s.execute(sa.update(AuditEvent).where(AuditEvent.seq == 2).values(after={"v": 999}))
        _recompute_from(s, 2)
    assert _verify(database).ok  # consistent again without the key
    report = _verify(database, against=[pin], key=KEY)
    assert (report.ok, report.first_broken_seq) == (False, 6) and "rewritten" in report.reason


def test_events_after_the_checkpoint_are_not_covered_by_it(database, system):
    _append(database, system, 3)
    pin = _checkpoint(database, system)
    _append(database, system, 2)
    assert _verify(database, against=[pin], key=KEY).ok


def test_a_forged_or_foreign_checkpoint_is_refused(database, system):
    _append(database, system, 2)
    pin = _checkpoint(database, system)
    forged = dataclasses.replace(pin, seq=1)
    assert not _verify(database, against=[forged], key=KEY).ok
    assert "signature" in _verify(database, against=[pin], key="b" * 64).reason
    assert not _verify(database, against=[pin], key=None).ok


def test_stored_events_are_append_only_on_postgresql(database, system):
    if database.dialect != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's (SQLite: checkpoints)")
    _append(database, system, 2)
    for statement in (sa.update(AuditEvent).values(actor="x"), sa.delete(AuditEvent)):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), \
                database.unit_of_work() as s:
            s.execute(statement)
    assert _verify(database).checked == 2


def test_checkpoint_over_http_and_verify_against_it(client, tokens, database, system, problem,
                                                    app):
    _append(database, system, 3)
    problem(client.get("/audit/checkpoint", headers=tokens.registrar()), 403)
    pin = client.get("/audit/checkpoint", headers=tokens.auditor).get_json()
    assert pin["seq"] >= 3 and len(pin["signature"]) == 64
    ok = client.post("/audit/verify", json={"checkpoints": [pin]}, headers=tokens.auditor)
    assert ok.status_code == 200 and ok.get_json()["ok"] is True
    with tampering(database) as s:
        s.execute(sa.delete(AuditEvent).where(AuditEvent.seq == pin["seq"]))
    broken = client.post("/audit/verify", json={"checkpoints": [pin]},
                         headers=tokens.auditor).get_json()
    assert broken["ok"] is False and broken["first_broken_seq"] == pin["seq"]
    problem(client.post("/audit/verify", json={"checkpoints": [{**pin, "hash": "zz"}]},
                        headers=tokens.auditor), 422)


def test_cli_checkpoint_and_verify_against(cli, database, system, tmp_path):
    _append(database, system, 4)
    out = cli("audit", "checkpoint")
    assert out.exit_code == 0
    pin = json.loads(out.output)
    assert pin["seq"] == 4 and dt.datetime.fromisoformat(pin["signed_at"]).tzinfo is not None
    kept = tmp_path / "checkpoints.jsonl"
    kept.write_text(out.output, encoding="utf-8")
    ok = cli("audit", "verify", "--against", str(kept))
    assert ok.exit_code == 0 and "1 checkpoint" in ok.output
    with tampering(database) as s:
        s.execute(sa.delete(AuditEvent).where(AuditEvent.seq >= 3))
    assert cli("audit", "verify").exit_code == 0
    broken = cli("audit", "verify", "--against", str(kept))
    assert broken.exit_code == 1 and "truncated" in broken.output


@pytest.mark.parametrize("signed_at", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"])
def test_a_checkpoint_signed_at_an_instant_with_no_utc_form_is_a_422(client, tokens, problem,
                                                                      signed_at):
    """Found by schemathesis: year 1 at +00:01 is before year 1 in UTC; it was a 500."""
    checkpoint = {"seq": 0, "hash": "d0" * 32, "signature": "d0" * 32, "signed_at": signed_at}
    body = problem(client.post("/audit/verify", json={"checkpoints": [checkpoint]},
                               headers=tokens.auditor), 422)
    assert body["errors"][0]["field"].endswith("signed_at")
    problem(client.get(f"/audit?since={signed_at.replace('+', '%2B')}", headers=tokens.auditor),
            422)
