"""`ecovalue demo tokens`: a second `make run` shows the tokens the first printed, while they
work; otherwise it says plainly that it replaced them."""

from __future__ import annotations

import datetime as dt
import re
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecovalue.auth.models import ApiToken
from ecovalue.clock import utcnow

ROLES = ["admin", "registrar", "verifier", "finance", "auditor"]  # no trader without demo data


@pytest.fixture()
def saved_file(app) -> Path:
    path = Path(app.config["INSTANCE_DIR"]) / "demo-tokens.txt"
    path.unlink(missing_ok=True)
    return path


def printed(output: str) -> dict[str, str]:
    return dict(re.findall(r"^  (\w+) +(evk_\S+)$", output, re.MULTILINE))


def works(client, secret: str) -> bool:
    return client.get("/auth/whoami",
                      headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_the_second_run_shows_the_same_tokens(cli, client, saved_file):
    first = cli("demo", "tokens")
    assert first.exit_code == 0, first.output
    issued = printed(first.output)
    assert list(issued) == ROLES and "new, valid 30 days" in first.output
    assert stat.S_IMODE(saved_file.stat().st_mode) == 0o600
    assert all(secret in saved_file.read_text() for secret in issued.values())
    second = cli("demo", "tokens")
    assert second.exit_code == 0 and "the same as last time" in second.output
    assert printed(second.output) == issued
    assert "REPLACED" not in second.output
    assert all(works(client, secret) for secret in issued.values())


def test_a_revoked_token_makes_it_say_it_replaced_them(cli, client, database, saved_file):
    issued = printed(cli("demo", "tokens").output)
    with database.session(write=False) as s:
        finance = s.scalars(sa.select(ApiToken.id).where(ApiToken.role == "finance")).one()
    assert cli("token", "revoke", str(finance)).exit_code == 0
    again = cli("demo", "tokens")
    assert again.exit_code == 0
    assert "REPLACED (the finance token was revoked)" in again.output
    fresh = printed(again.output)
    assert list(fresh) == ROLES and not set(fresh.values()) & set(issued.values())
    assert not any(works(client, secret) for secret in issued.values())  # all revoked
    assert all(works(client, secret) for secret in fresh.values())
    lines = saved_file.read_text(encoding="utf-8").splitlines()
    assert dict(line.split(" ", 1) for line in lines if not line.startswith("#")) == fresh


def test_expired_tokens_are_replaced(cli, database, saved_file):
    cli("demo", "tokens", "--days", "1")
    with database.engine.begin() as conn:
        conn.execute(sa.update(ApiToken).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert "REPLACED (the admin token expired)" in cli("demo", "tokens").output


def test_tokens_of_another_database_are_replaced(cli, database, saved_file):
    saved_file.write_text("admin evk_" + "x" * 43 + "\n", encoding="utf-8")
    result = cli("demo", "tokens")
    assert "REPLACED (they do not cover the demo roles" in result.output
    issued = printed(result.output)
    with database.engine.begin() as conn:  # the database is recreated; the file stays
        conn.execute(sa.delete(ApiToken))
    again = cli("demo", "tokens")
    assert "REPLACED (the admin token is not a demo token of this database)" in again.output
    assert printed(again.output) != issued


def test_new_replaces_them_on_request(cli, saved_file):
    issued = printed(cli("demo", "tokens").output)
    result = cli("demo", "tokens", "--new")
    assert "REPLACED (--new was given)" in result.output
    assert set(printed(result.output).values()).isdisjoint(issued.values())
