"""Catalog: regions of all China -- a region may be a province (GB/T 2260 `xx0000`), so the
national province/prefecture/county table can be loaded as reference data.

Revision ID: c0003_national_regions
Revises: c0002_products
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'c0003_national_regions'
down_revision: str | Sequence[str] | None = 'c0002_products'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_regions_level'), type_='check')
        batch_op.create_check_constraint(
            'level', "level in ('province','prefecture','county','township','village')")


def downgrade() -> None:
    op.execute("UPDATE regions SET parent_code = NULL WHERE parent_code IN "
               "(SELECT code FROM regions WHERE level = 'province')")
    op.execute("DELETE FROM regions WHERE level = 'province'")
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_regions_level'), type_='check')
        batch_op.create_check_constraint(
            'level', "level in ('prefecture','county','township','village')")
