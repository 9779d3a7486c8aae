"""The shell's commands of `ecovalue` (the command itself, `ecovalue.app.main`, gathers them
with each package's), and the helpers the packages' commands share: `unit_of_work`,
`operator`, `fail`, `database`.

    ecovalue db upgrade | check
    ecovalue token create --role registrar --county 522326 --name "Wangmo registrar"
    ecovalue token list | revoke ID
    ecovalue audit verify
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from ecovalue import migrate
from ecovalue.audit import Checkpoint, checkpoint, verify_chain
from ecovalue.auth import ROLES, Principal, system_principal
from ecovalue.auth import services as tokens
from ecovalue.auth.models import ApiToken
from ecovalue.clock import utcnow
from ecovalue.db import Database
from ecovalue.errors import EcovalueError


def database() -> Database:
    return current_app.extensions["ecovalue.db"]


def operator() -> Principal:
    """The console operator, recorded in the audit trail as system:<login>."""
    try:
        login = getpass.getuser()
    except Exception:  # any failure: no login name in some containers
        login = "operator"
    return system_principal(f"cli:{login}")


def fail(exc: EcovalueError) -> None:
    click.echo(f"error: {exc.detail}", err=True)
    for item in exc.errors:
        where = ", ".join(f"{k}={item[k]}" for k in ("row", "column", "field") if item.get(k))
        click.echo(f"  - {where}: {item.get('message')}", err=True)
    sys.exit(1)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """A command's unit of work: committed on success; a domain error is printed with its
    details and the command exits with status 1, nothing written."""
    try:
        with database().unit_of_work() as session:
            yield session
    except EcovalueError as exc:
        fail(exc)


# --- db ------------------------------------------------------------------------------------

@click.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Apply all migrations."""
    migrate.upgrade(database().url)
    click.echo("database is at the latest schema")


@db_group.command("check")
@with_appcontext
def db_check() -> None:
    """Fail if models and migrations differ."""
    migrate.check(database().url)
    click.echo("models and migrations agree")


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--head", default="head", show_default=True,
              help="revision to build on, e.g. c0001_catalog")
@click.option("--rev-id", help="revision id, e.g. c0002_products")
@with_appcontext
def db_revision(message: str, head: str, rev_id: str | None) -> None:
    """Autogenerate a migration from the models (developers): review it before committing."""
    migrate.revision(database().url, message, head=head, rev_id=rev_id)


# --- tokens --------------------------------------------------------------------------------

@click.group("token")
def token_group() -> None:
    """API tokens: create (shown once), list, revoke."""


@token_group.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True, help="who holds the token")
@click.option("--county", "county_code", help="registrar: 6-digit county code, e.g. 522326")
@click.option("--party", "party_id", type=int, help="trader: party id")
@click.option("--expires-in-days", type=click.IntRange(min=1), help="default: no expiry")
@with_appcontext
def token_create(role: str, name: str, county_code: str | None, party_id: int | None,
                 expires_in_days: int | None) -> None:
    """Create a token and print it once."""
    expires_at = (utcnow() + dt.timedelta(days=expires_in_days)
                  if expires_in_days else None)
    with unit_of_work() as session:
        issued = tokens.create_token(
            session, operator(), name=name, role=role, county_code=county_code,
            party_id=party_id, expires_at=expires_at,
            validate_scope=current_app.extensions["ecovalue.token_scope_validator"],
        )
    click.echo(f"token {issued.token.id} ({role}) for {name}; shown once, keep it safe:")
    click.echo(issued.secret)


@token_group.command("list")
@with_appcontext
def token_list() -> None:
    """List tokens (prefix, role, scope, state), never the secrets."""
    with database().unit_of_work() as session:
        now = utcnow()
        for t in tokens.list_tokens(session, operator()):
            state = "revoked" if t.revoked_at else ("expired" if not t.is_active(now) else "active")
            scope = t.county_code or (f"party {t.party_id}" if t.party_id else "-")
            click.echo(f"{t.id:>5}  {t.display_prefix}…  {t.role:<9}  {scope:<10}  {state:<7}  "
                       f"{t.name}")


@token_group.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def token_revoke(token_id: int) -> None:
    """Revoke a token for good."""
    with unit_of_work() as session:
        tokens.revoke_token(session, operator(), token_id)
    click.echo(f"token {token_id} revoked")


# --- audit ---------------------------------------------------------------------------------

@click.group("audit")
def audit_group() -> None:
    """Audit trail."""


@audit_group.command("verify")
@click.option("--against", "against", type=click.Path(exists=True, dir_okay=False),
              help="a file of checkpoints kept from `ecovalue audit checkpoint` (one JSON "
                   "object per line): also detect truncation and rewriting up to each")
@with_appcontext
def audit_verify(against: str | None) -> None:
    """Recompute the hash chain; exit 1 and name the first broken link if it is broken."""
    pins = []
    if against:
        with open(against, encoding="utf-8") as lines:
            pins = [_checkpoint(line) for line in lines if line.strip()]
    with database().session(write=False) as session:
        report = verify_chain(session, against=pins, key=current_app.config["AUDIT_KEY"])
    if report.ok:
        against_text = f", consistent with {len(pins)} checkpoint(s)" if pins else ""
        click.echo(f"audit chain intact: {report.checked} events verified{against_text}")
        return
    click.echo(f"audit chain BROKEN at event {report.first_broken_seq}: {report.reason} "
               f"({report.checked} events verified before it)", err=True)
    sys.exit(1)


def _checkpoint(line: str) -> Checkpoint:
    try:
        data = json.loads(line)
        return Checkpoint(seq=int(data["seq"]), hash=str(data["hash"]),
                          signed_at=dt.datetime.fromisoformat(data["signed_at"]),
                          signature=str(data["signature"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise click.BadParameter(f"not a checkpoint: {line.strip()[:80]!r}") from exc


@audit_group.command("checkpoint")
@with_appcontext
def audit_checkpoint() -> None:
    """Print the chain's head, signed, as one JSON line: append it to a file kept outside
    this server, and verify with `--against` that file later."""
    with database().session(write=False) as session:
        pin = checkpoint(session, operator(), current_app.config["AUDIT_KEY"])
    click.echo(json.dumps({"seq": pin.seq, "hash": pin.hash, "signed_at":
                           pin.signed_at.isoformat(), "signature": pin.signature}))


# --- demo ----------------------------------------------------------------------------------

DEMO_TOKEN_PREFIX = "demo "


@click.group("demo")
def demo_group() -> None:
    """Demo dataset of the pilot counties (all numbers labelled DEMO)."""


@demo_group.command("load")
@click.option("--if-empty", is_flag=True, help="do nothing if the database has any data")
@with_appcontext
def demo_load(if_empty: bool) -> None:
    """Load the demo dataset (regions, parties, products, monitoring ...)."""
    from ecovalue.audit.models import AuditEvent

    with database().unit_of_work() as session:
        if if_empty and session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)):
            click.echo("database already has data: demo dataset not loaded")
            return
        for loader in current_app.extensions["ecovalue.demo"]["loaders"]:
            for line in loader(session, system_principal("demo")):
                click.echo(line)
    click.echo("demo dataset loaded")


#: where `demo tokens` keeps the secrets it printed, so that the next `make run` shows the same
DEMO_TOKENS_FILE = "demo-tokens.txt"


def _demo_tokens_path() -> Path:
    return Path(current_app.config["INSTANCE_DIR"]) / DEMO_TOKENS_FILE


def _read_demo_tokens(path: Path) -> dict[str, str]:
    """role -> secret, as saved by the previous `demo tokens` (empty if there is no file)."""
    if not path.exists():
        return {}
    saved = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        role, _, secret = line.partition(" ")
        if line and not line.startswith("#") and secret.strip():
            saved[role] = secret.strip()
    return saved


def _write_demo_tokens(path: Path, issued: dict[str, str]) -> None:
    """Owner-only file (0600): these are working credentials, if only for demo data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# ecovalue demo tokens (DEMO data only), printed by `ecovalue demo tokens`\n")
        handle.writelines(f"{role} {secret}\n" for role, secret in issued.items())
    path.chmod(0o600)


def _stale_reason(saved: dict[str, ApiToken | None], roles: list[str]) -> str | None:
    """Why the saved demo tokens (role -> its row, None if unknown) cannot serve again, or None
    if every one still works."""
    if set(saved) != set(roles):
        return "they do not cover the demo roles " + ", ".join(roles)
    now = utcnow()
    for role, token in saved.items():
        if token is None or not token.name.startswith(DEMO_TOKEN_PREFIX) or token.role != role:
            return f"the {role} token is not a demo token of this database"
        if token.revoked_at is not None:
            return f"the {role} token was revoked"
        if not token.is_active(now):
            return f"the {role} token expired"
    return None


@demo_group.command("tokens")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True,
              help="validity of new tokens")
@click.option("--new", "replace", is_flag=True,
              help="revoke the saved demo tokens and print new ones")
@with_appcontext
def demo_tokens(days: int, replace: bool) -> None:
    """Print one demo token per role: the ones saved in instance/demo-tokens.txt (mode 0600)
    while they are valid and not revoked, otherwise new ones (revoking the previous demo
    tokens), saved there for the next run."""
    actor = operator()
    path = _demo_tokens_path()
    saved = _read_demo_tokens(path)
    with database().unit_of_work() as session:
        trader_party = current_app.extensions["ecovalue.demo"]["trader_party_id"](session)
        scopes = {
            "admin": {}, "registrar": {"county_code": "522326"}, "verifier": {},
            "trader": {"party_id": trader_party}, "finance": {}, "auditor": {},
        }
        if trader_party is None:
            del scopes["trader"]
        by_digest = {t.digest: t for t in tokens.list_tokens(session, actor)}
        rows = {role: by_digest.get(tokens.digest_of(secret)) for role, secret in saved.items()}
        stale = "--new was given" if replace else _stale_reason(rows, list(scopes))
        if saved and stale is None:
            expiry = min((t.expires_at for t in rows.values() if t and t.expires_at),
                         default=None)
            until = f"valid until {expiry:%Y-%m-%d %H:%M} UTC" if expiry else "no expiry"
            click.echo(f"demo tokens (the same as last time, {until}; `ecovalue demo tokens "
                       "--new` replaces them; use as 'Authorization: Bearer <token>'):")
            for role, secret in saved.items():
                click.echo(f"  {role:<9} {secret}")
            return
        for old in tokens.list_tokens(session, actor):
            if old.name.startswith(DEMO_TOKEN_PREFIX) and old.revoked_at is None:
                tokens.revoke_token(session, actor, old.id)
        expires_at = utcnow() + dt.timedelta(days=days)
        issued = {}
        for role, scope in scopes.items():
            label = f"{DEMO_TOKEN_PREFIX}{role}" + (" (Wangmo 522326)" if role == "registrar"
                                                    else "")
            issued[role] = tokens.create_token(session, actor, name=label, role=role,
                                               expires_at=expires_at, **scope).secret
    _write_demo_tokens(path, issued)
    if saved:
        click.echo(f"the demo tokens saved in {path} were REPLACED ({stale}); the old ones "
                   "no longer work")
    click.echo(f"demo tokens (new, valid {days} days, saved in {path} for the next run; "
               "use as 'Authorization: Bearer <token>'):")
    for role, secret in issued.items():
        click.echo(f"  {role:<9} {secret}")
