"""Audit events are append-only on PostgreSQL: a row trigger refuses UPDATE and DELETE, as
for ledger transactions and postings. TRUNCATE (test fixtures) and a superuser who disables
triggers are not stopped here: signed checkpoints detect what they do (ecovalue.audit).

Revision ID: e0003_audit_append_only
Revises: e0002_audit_append
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e0003_audit_append_only"
down_revision: str | Sequence[str] | None = "e0002_audit_append"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
                    USING ERRCODE = 'restrict_violation';
            END
            $$""")
        op.execute("CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON "
                   "audit_events FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
