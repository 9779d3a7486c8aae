"""Sharing: the attribution matrix of each paid distribution, stored when it is paid, so that
the traceability queries (where a payment went, where a household's receipt came from) read
it instead of recomputing it over every line of the run.

Runs paid before this revision have no stored matrix; the queries compute theirs as before
(the same rule, the same numbers).

Revision ID: s0002_sharing_attributions
Revises: m0001_market
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 's0002_sharing_attributions'
down_revision: str | Sequence[str] | None = 'm0001_market'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sharing_run_attributions',
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_ids', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.Column('matrix', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['sharing_runs.id'], name=op.f('fk_sharing_run_attributions_run_id_sharing_runs')),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_sharing_run_attributions'))
    )


def downgrade() -> None:
    op.drop_table('sharing_run_attributions')
