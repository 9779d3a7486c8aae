"""Catalog: regions and parties.

Revision ID: c0001_catalog
Revises: e0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecovalue.db

revision: str = "c0001_catalog"
down_revision: str | Sequence[str] | None = "e0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('regions',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('level', sa.String(length=12), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=True),
    sa.Column('parent_code', sa.String(length=12), nullable=True),
    sa.Column('pilot', sa.String(length=100), nullable=True),
    sa.Column('created_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("level in ('prefecture','county','township','village')", name=op.f('ck_regions_level')),
    sa.ForeignKeyConstraint(['parent_code'], ['regions.code'], name=op.f('fk_regions_parent_code_regions')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_regions'))
    )
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_regions_parent_code'), ['parent_code'], unique=False)

    op.create_table('parties',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=True),
    sa.Column('sector', sa.String(length=40), nullable=True),
    sa.Column('id_number_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('id_number_index', sa.String(length=64), nullable=True),
    sa.Column('id_number_masked', sa.String(length=18), nullable=True),
    sa.Column('bank_account_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('bank_account_masked', sa.String(length=40), nullable=True),
    sa.Column('bank_name', sa.String(length=100), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind <> 'enterprise' OR credit_code IS NOT NULL", name=op.f('ck_parties_enterprise_credit_code')),
    sa.CheckConstraint("kind = 'household' OR id_number_index IS NULL", name=op.f('ck_parties_id_number_only_households')),
    sa.CheckConstraint("kind in ('government','village_collective','cooperative','household','enterprise')", name=op.f('ck_parties_kind')),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_parties_region_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parties')),
    sa.UniqueConstraint('credit_code', name=op.f('uq_parties_credit_code')),
    sa.UniqueConstraint('id_number_index', name=op.f('uq_parties_id_number_index'))
    )
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_parties_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_parties_region_code'), ['region_code'], unique=False)


def downgrade() -> None:
    op.drop_table("parties")
    op.drop_table("regions")
