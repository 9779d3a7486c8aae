"""Audit chain: append in one statement (PostgreSQL).

`audit_append(lock_key, occurred_at, actor, request_id, events)` takes the chain's
transaction-scoped advisory lock, reads the head, and appends `events` (a JSON array of
{action, entity_type, entity_id, before, after, content}, `content` being the SHA-256 that
Python computed over the event's canonical JSON), linking each as
`hash = sha256("<seq>|<prev_hash>|<content>")`, the formula `ecovalue.audit.services.link`
computes on SQLite and when verifying. Being VOLATILE, the function's head read runs on a
snapshot taken after the lock is granted, so it sees an append that committed while this
transaction waited. The lock is held from this statement to the commit, not across round
trips. SQLite needs nothing: its writers hold the database lock from BEGIN IMMEDIATE.

Revision ID: e0002_audit_append
Revises: e0001_foundation
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e0002_audit_append"
down_revision: str | Sequence[str] | None = "e0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION audit_append(lock_key integer, p_occurred_at timestamptz,
                                         p_actor text, p_request_id text, events json)
            RETURNS bigint
            LANGUAGE plpgsql VOLATILE AS $$
            DECLARE
                head_seq bigint;
                head_hash text;
                e json;
            BEGIN
                PERFORM pg_advisory_xact_lock(lock_key);
                SELECT a.seq, a.hash INTO head_seq, head_hash FROM audit_events AS a
                    ORDER BY a.seq DESC LIMIT 1;
                IF NOT FOUND THEN
                    head_seq := 0;
                    head_hash := repeat('0', 64);
                END IF;
                FOR e IN SELECT value FROM json_array_elements(events) LOOP
                    head_seq := head_seq + 1;
                    INSERT INTO audit_events (seq, occurred_at, actor, action, entity_type,
                                              entity_id, before, after, request_id,
                                              prev_hash, hash)
                    VALUES (head_seq, p_occurred_at, p_actor, e->>'action', e->>'entity_type',
                            e->>'entity_id',
                            CASE WHEN json_typeof(e->'before') = 'null' THEN NULL
                                 ELSE e->'before' END,
                            CASE WHEN json_typeof(e->'after') = 'null' THEN NULL
                                 ELSE e->'after' END,
                            p_request_id, head_hash,
                            encode(sha256(convert_to(
                                head_seq || '|' || head_hash || '|' || (e->>'content'),
                                'UTF8')), 'hex'))
                    RETURNING hash INTO head_hash;
                END LOOP;
                RETURN head_seq;
            END
            $$
        """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_append(integer, timestamptz, text, text, json)")
