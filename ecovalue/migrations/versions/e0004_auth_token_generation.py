"""Auth: the token generation that invalidates every worker's token cache.

`auth_state` holds one row whose `token_generation` a trigger on `api_tokens` replaces with
a new random value on every INSERT, UPDATE or DELETE of a token, in the same transaction: a
request reads it (one primary-key read, sent with the transaction's BEGIN on PostgreSQL) and
trusts its worker's cached principal only if the generation is the one the entry was cached
under (`ecovalue.auth.services.TokenCache`). TRUNCATE fires no row trigger, but truncating
`auth_state` too (as the test fixtures do) leaves no row, and without a row no cache is used.

Revision ID: e0004_auth_token_generation
Revises: e0003_audit_append_only
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e0004_auth_token_generation"
down_revision: str | Sequence[str] | None = "e0003_audit_append_only"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token_generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_state")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION auth_token_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO auth_state (id, token_generation)
                VALUES (1, floor(random() * 9.2e18)::bigint)
                ON CONFLICT (id) DO UPDATE SET token_generation = EXCLUDED.token_generation;
                RETURN NULL;
            END
            $$""")
        op.execute("CREATE TRIGGER api_tokens_generation AFTER INSERT OR UPDATE OR DELETE ON "
                   "api_tokens FOR EACH STATEMENT EXECUTE FUNCTION auth_token_changed()")
        op.execute("INSERT INTO auth_state (id, token_generation) "
                   "VALUES (1, floor(random() * 9.2e18)::bigint)")
        return
    for event in ("INSERT", "UPDATE", "DELETE"):
        op.execute(f"""
            CREATE TRIGGER api_tokens_generation_{event.lower()} AFTER {event} ON api_tokens
            BEGIN
                INSERT OR REPLACE INTO auth_state (id, token_generation) VALUES (1, random());
            END""")
    op.execute("INSERT INTO auth_state (id, token_generation) VALUES (1, random())")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER api_tokens_generation ON api_tokens")
        op.execute("DROP FUNCTION auth_token_changed()")
    else:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER api_tokens_generation_{event}")
    op.drop_table("auth_state")
