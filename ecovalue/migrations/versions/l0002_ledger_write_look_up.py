"""Ledger: the look-up and locks of a write in one round trip (PostgreSQL).

`ledger_write_look_up(...)` is the first statement of a posting (`ledger.core.store`, which
owns it and calls it; the same module's Core statements do the same on SQLite). In order:

1. the period lock, shared (closing a month takes it exclusively);
2. with an idempotency key: its claim in the shared idempotency records (`ON CONFLICT DO
   NOTHING`, so a racing duplicate waits here for the first, holding nothing but the shared
   period lock); a key already taken returns at once what holds it: the transaction (its id
   and request hash, for a replay or a 409) or nothing (another route's request: a 409);
3. the accounts named (by id and by code) with their asset code;
4. the expired holds (at most `p_max_expired`, oldest first) of pendings that debit a guarded
   account the write debits, and the legs of those pendings;
5. the balance rows of those accounts, locked FOR UPDATE in ascending account id (the order
   every writer locks in, so writers never deadlock);
6. which of `p_months` are closed (read after the period lock);
7. the id of the new transaction, from its sequence, so that the write and its audit event
   (which names the id) go in one statement.

It returns one JSON document. Being VOLATILE, each statement inside runs on a snapshot taken
when it starts, so what follows a lock sees every commit that the lock waited for. The rules
that use what it returns (validation, the guard, closed periods) stay in Python
(`ledger.core.rules`); tests/ledger/test_write_look_up.py checks the function against the
Core statements of the store on the same cases.

Revision ID: l0002_ledger_write_look_up
Revises: r0001_reconcile
"""

from collections.abc import Sequence

from alembic import op

revision: str = "l0002_ledger_write_look_up"
down_revision: str | Sequence[str] | None = "r0001_reconcile"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = ("ledger_write_look_up(integer, bigint[], text[], bigint[], text[], date[], "
             "timestamptz, text, text, text, integer, text, integer)")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION ledger_write_look_up(
            p_lock_key integer, p_ids bigint[], p_codes text[], p_debit_ids bigint[],
            p_debit_codes text[], p_months date[], p_now timestamptz, p_scope text,
            p_key text, p_request_hash text, p_claim_status integer, p_claim_type text,
            p_max_expired integer)
        RETURNS json
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            v_claim bigint;
            v_found json;
            v_accounts json;
            v_ids bigint[];
            v_expired bigint[];
            v_legs json;
            v_balances json;
            v_closed json;
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(p_lock_key);
            IF p_key IS NOT NULL THEN
                INSERT INTO idempotency_records (scope, key, request_hash, status_code,
                                                 content_type, location, body, created_at)
                VALUES (p_scope, p_key, p_request_hash, p_claim_status, p_claim_type, NULL,
                        ''::bytea, p_now)
                ON CONFLICT DO NOTHING RETURNING id INTO v_claim;
                IF v_claim IS NULL THEN
                    SELECT json_build_array(t.id, t.request_hash) INTO v_found
                      FROM ledger_transactions AS t
                     WHERE t.idempotency_scope = p_scope AND t.idempotency_key = p_key;
                    RETURN json_build_object(
                        'found', coalesce(v_found, json_build_array(NULL, NULL)));
                END IF;
            END IF;
            SELECT coalesce(json_agg(json_build_array(a.id, a.code, a.party_id, a.kind,
                                                      a.no_overdraft, a.asset_id, s.code)
                                     ORDER BY a.id), '[]'::json),
                   coalesce(array_agg(a.id), '{}'::bigint[])
              INTO v_accounts, v_ids
              FROM ledger_accounts AS a JOIN ledger_assets AS s ON s.id = a.asset_id
             WHERE a.id = ANY(p_ids) OR a.code = ANY(p_codes);
            SELECT coalesce(array_agg(e.transaction_id ORDER BY e.transaction_id),
                            '{}'::bigint[])
              INTO v_expired
              FROM (SELECT h.transaction_id FROM ledger_pending_holds AS h
                     WHERE h.expires_at <= p_now AND EXISTS (
                           SELECT 1 FROM ledger_postings AS p
                             JOIN ledger_accounts AS a ON a.id = p.account_id
                            WHERE p.transaction_id = h.transaction_id
                              AND p.direction = 'debit' AND a.no_overdraft
                              AND (a.id = ANY(p_debit_ids) OR a.code = ANY(p_debit_codes)))
                     ORDER BY h.transaction_id LIMIT p_max_expired) AS e;
            SELECT coalesce(json_agg(json_build_array(p.transaction_id, p.account_id,
                                                      p.direction, p.amount)
                                     ORDER BY p.id), '[]'::json),
                   v_ids || coalesce(array_agg(p.account_id), '{}'::bigint[])
              INTO v_legs, v_ids
              FROM ledger_postings AS p WHERE p.transaction_id = ANY(v_expired);
            SELECT coalesce(json_agg(json_build_array(b.account_id, b.posted_debits,
                                                      b.posted_credits, b.pending_debits,
                                                      b.pending_credits, b.last_effective_date,
                                                      b.version)
                                     ORDER BY b.account_id), '[]'::json)
              INTO v_balances
              FROM (SELECT * FROM ledger_balances WHERE account_id = ANY(v_ids)
                     ORDER BY account_id FOR UPDATE) AS b;
            SELECT coalesce(json_agg(m.month ORDER BY m.month), '[]'::json) INTO v_closed
              FROM ledger_periods AS m WHERE m.status = 'closed' AND m.month = ANY(p_months);
            RETURN json_build_object(
                'found', NULL, 'accounts', v_accounts, 'expired', to_json(v_expired),
                'legs', v_legs, 'balances', v_balances, 'closed', v_closed,
                'id', nextval(pg_get_serial_sequence('ledger_transactions', 'id')));
        END
        $$
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {SIGNATURE}")
