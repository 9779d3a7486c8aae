"""Sharing: a paid distribution can be reversed (红字冲销): the run's status `reversed`, who
reversed it, when, on which local date, why, and the ledger reversal of each transaction of
its paying batch.

Revision ID: s0003_sharing_reversal
Revises: s0002_sharing_attributions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecovalue.db

revision: str = 's0003_sharing_reversal'
down_revision: str | Sequence[str] | None = 's0002_sharing_attributions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status in ('prepared','paid','cancelled')"
NEW_STATUSES = "status in ('prepared','paid','cancelled','reversed')"


def upgrade() -> None:
    with op.batch_alter_table('sharing_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reversed_by', sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column('reversed_at', ecovalue.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('reversed_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('reversal_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('reversal_transaction_ids', sa.JSON(none_as_null=True),
                                      nullable=True))
        batch_op.drop_constraint(batch_op.f('ck_sharing_runs_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_sharing_runs_status'), NEW_STATUSES)


def downgrade() -> None:
    with op.batch_alter_table('sharing_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_sharing_runs_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_sharing_runs_status'), OLD_STATUSES)
        batch_op.drop_column('reversal_transaction_ids')
        batch_op.drop_column('reversal_reason')
        batch_op.drop_column('reversed_on')
        batch_op.drop_column('reversed_at')
        batch_op.drop_column('reversed_by')
