"""Tokens: digest-only storage, shown once, expiry, revocation, role and county scopes."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa

from ecovalue.auth import POLICY, Principal, Role, authorize, county_of
from ecovalue.auth import services as tokens_service
from ecovalue.auth.models import ApiToken
from ecovalue.clock import utcnow
from ecovalue.errors import Forbidden, NotFound, Unauthorized, ValidationFailed


def test_token_is_stored_only_as_digest(session, system):
    issued = tokens_service.create_token(session, system, name="a", role="auditor")
    session.commit()
    row = session.get(ApiToken, issued.token.id)
    assert row.digest == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in {v for v in vars(row).values() if isinstance(v, str)}
    assert row.display_prefix == issued.secret[:12]


def test_whoami_reports_role_and_scope(client, tokens):
    body = client.get("/auth/whoami", headers=tokens.registrar("522326")).get_json()
    assert body == {"role": "registrar", "county_code": "522326", "party_id": None,
                    "token_id": body["token_id"]}


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer evk_" + "x" * 40,
                                    "Bearer not-a-token"])
def test_missing_or_bad_token_is_401(client, problem, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/auth/whoami", headers=headers)
    problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_and_expired_tokens_are_refused(client, database, system, problem):
    with database.unit_of_work() as s:
        revoked = tokens_service.create_token(s, system, name="r", role="auditor")
        expired = tokens_service.create_token(s, system, name="e", role="auditor",
                                              expires_at=utcnow()
                                              + dt.timedelta(seconds=30))
        tokens_service.revoke_token(s, system, revoked.token.id)
        s.execute(sa.update(ApiToken).where(ApiToken.id == expired.token.id)
                  .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    for issued in (revoked, expired):
        problem(client.get("/auth/whoami",
                           headers={"Authorization": f"Bearer {issued.secret}"}), 401)


@pytest.mark.parametrize("kwargs,field", [
    ({"role": "root"}, "role"),
    ({"role": "registrar"}, "county"),
    ({"role": "registrar", "county_code": "52232"}, "county"),
    ({"role": "auditor", "county_code": "522326"}, "county"),
    ({"role": "trader"}, "party"),
    ({"role": "admin", "party_id": 1}, "party"),
])
def test_token_scope_must_fit_role(session, system, kwargs, field):
    with pytest.raises(ValidationFailed) as info:
        tokens_service.create_token(session, system, name="x", **kwargs)
    assert info.value.errors[0]["field"] == field


def test_scope_validator_rejects_unknown_county(app, session, system):
    validator = app.extensions["ecovalue.token_scope_validator"]
    with pytest.raises(ValidationFailed, match="invalid token request"):
        tokens_service.create_token(session, system, name="x", role="registrar",
                                    county_code="522399", validate_scope=validator)
    issued = tokens_service.create_token(session, system, name="x", role="registrar",
                                         county_code="522326", validate_scope=validator)
    assert issued.token.county_code == "522326"


def test_only_admin_manages_tokens(session):
    auditor = Principal(role=Role.AUDITOR, label="t", token_id=9)
    with pytest.raises(Forbidden):
        tokens_service.create_token(session, auditor, name="x", role="admin")
    with pytest.raises(Unauthorized):
        tokens_service.list_tokens(session, None)  # type: ignore[arg-type]


def test_revoke_unknown_token_is_not_found(session, system):
    with pytest.raises(NotFound):
        tokens_service.revoke_token(session, system, 424242)


def test_county_of_region_codes():
    assert county_of("522326") == "522326"
    assert county_of("522326101") == "522326"
    assert county_of("522326101201") == "522326"


REGISTRAR = Principal(role=Role.REGISTRAR, label="r", token_id=1, county_code="522326")
TRADER = Principal(role=Role.TRADER, label="t", token_id=2, party_id=7)


def test_registrar_scope_is_its_county_only():
    authorize(REGISTRAR, "catalog.product.write", county="522326101201")
    for county in ("522301", "522301001001", None, ["522326", "522327"]):
        with pytest.raises(Forbidden):
            authorize(REGISTRAR, "catalog.product.write", county=county)


def test_trader_scope_is_its_party_only():
    authorize(TRADER, "ledger.transaction.create", party=7)
    for party in (8, None, [7, 8]):
        with pytest.raises(Forbidden):
            authorize(TRADER, "ledger.transaction.create", party=party)


def test_unknown_action_fails_loudly():
    with pytest.raises(LookupError):
        authorize(REGISTRAR, "catalog.product.wrtie", county="522326")


def test_auditor_never_writes():
    writes = [a for a in POLICY if not a.endswith((".read",))]
    for action in writes:
        assert Role.AUDITOR not in POLICY[action] or action == "audit.read", action


def test_token_cli_create_list_revoke(cli, client):
    created = cli("token", "create", "--role", "registrar", "--county", "522326",
                  "--name", "Wangmo registrar")
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/auth/whoami", headers=headers).status_code == 200
    listing = cli("token", "list")
    assert "registrar" in listing.output and "522326" in listing.output
    assert secret not in listing.output
    token_id = created.output.split()[1]
    assert cli("token", "revoke", token_id).exit_code == 0
    assert client.get("/auth/whoami", headers=headers).status_code == 401


def test_token_cli_refuses_unknown_county(cli):
    result = cli("token", "create", "--role", "registrar", "--county", "999999", "--name", "x")
    assert result.exit_code == 1
    assert "not a known county" in result.output
