"""Audit chain: lock and read the head in one round trip (PostgreSQL).

`audit_chain_head(lock_key)` takes the chain's transaction-scoped advisory lock, then reads
the last event. Being VOLATILE, its SELECT runs on a snapshot taken after the lock is granted,
so it sees an append that committed while this transaction waited; a single statement doing
both would read the snapshot taken before the wait. SQLite needs nothing: its writers hold the
database lock from BEGIN IMMEDIATE.

Revision ID: e0002_audit_chain_head
Revises: e0001_foundation
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e0002_audit_chain_head"
down_revision: str | Sequence[str] | None = "e0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION audit_chain_head(lock_key integer)
            RETURNS TABLE (seq bigint, hash varchar)
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock(lock_key);
                RETURN QUERY SELECT e.seq, e.hash::varchar FROM audit_events AS e
                             ORDER BY e.seq DESC LIMIT 1;
            END
            $$
        """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_chain_head(integer)")
