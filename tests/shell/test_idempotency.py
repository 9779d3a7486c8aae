"""The shared Idempotency-Key mechanism, on a probe endpoint that makes one audited change."""

from __future__ import annotations

import marshmallow as ma
import pytest
import sqlalchemy as sa

from ecovalue import audit
from ecovalue.api import Blueprint, current_principal
from ecovalue.app import create_app
from ecovalue.audit.models import AuditEvent
from ecovalue.db import current_session
from ecovalue.errors import Conflict

probe = Blueprint("probe", __name__, url_prefix="/probe")


class ProbeSchema(ma.Schema):
    n = ma.fields.Integer(required=True)


@probe.route("/changes", methods=["POST"])
@probe.authenticated
@probe.idempotent
@probe.arguments(ProbeSchema)
@probe.response(201, ProbeSchema)
def make_change(body):  # type: ignore[no-untyped-def]
    if body["n"] < 0:
        raise Conflict("negative n is refused")
    seq = audit.record(current_session(), current_principal(), "probe.change", "probe",
                       body["n"], after=body)
    return {"n": seq}


@pytest.fixture()
def probe_client(app, database_url):
    probe_app = create_app({**{k: app.config[k] for k in ("DATA_KEY", "INSTANCE_DIR")},
                            "DATABASE_URL": database_url, "TESTING": True})
    probe_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(probe)
    yield probe_app.test_client()
    probe_app.extensions["ecovalue.db"].dispose()


def _events(database) -> int:
    with database.session() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                        .where(AuditEvent.action == "probe.change"))


def test_replay_returns_first_response_and_changes_nothing(probe_client, tokens, database):
    headers = {**tokens.admin, "Idempotency-Key": "k-1"}
    first = probe_client.post("/probe/changes", json={"n": 5}, headers=headers)
    assert first.status_code == 201
    again = probe_client.post("/probe/changes", json={"n": 5}, headers=headers)
    assert again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _events(database) == 1


def test_same_key_different_body_is_409(probe_client, tokens, database, problem):
    headers = {**tokens.admin, "Idempotency-Key": "k-2"}
    assert probe_client.post("/probe/changes", json={"n": 1}, headers=headers).status_code == 201
    problem(probe_client.post("/probe/changes", json={"n": 2}, headers=headers), 409,
            "idempotency-key-reused")
    assert _events(database) == 1


def test_keys_are_per_caller(probe_client, tokens, database):
    key = {"Idempotency-Key": "shared"}
    assert probe_client.post("/probe/changes", json={"n": 1},
                             headers={**tokens.admin, **key}).status_code == 201
    assert probe_client.post("/probe/changes", json={"n": 1},
                             headers={**tokens.finance, **key}).status_code == 201
    assert _events(database) == 2


def test_failures_are_not_stored_so_a_corrected_retry_works(probe_client, tokens, database,
                                                             problem):
    headers = {**tokens.admin, "Idempotency-Key": "k-3"}
    problem(probe_client.post("/probe/changes", json={"n": -1}, headers=headers), 409, "conflict")
    problem(probe_client.post("/probe/changes", json={"n": "x"}, headers=headers), 422)
    assert probe_client.post("/probe/changes", json={"n": 3}, headers=headers).status_code == 201
    assert _events(database) == 1


def test_without_key_each_request_counts(probe_client, tokens, database):
    for _ in range(2):
        assert probe_client.post("/probe/changes", json={"n": 1},
                                 headers=tokens.admin).status_code == 201
    assert _events(database) == 2


@pytest.mark.parametrize("key", ["", "x" * 201, "clé", "a b"])
def test_malformed_key_is_400(probe_client, tokens, problem, key):
    problem(probe_client.post("/probe/changes", json={"n": 1},
                              headers={**tokens.admin, "Idempotency-Key": key}), 400)


def test_header_is_documented(probe_client):
    spec = probe_client.get("/openapi.json").get_json()
    operation = spec["paths"]["/probe/changes"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
    assert "409" in operation["responses"]
