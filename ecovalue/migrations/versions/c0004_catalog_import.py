"""Catalog import as a county bureau uses it: synonyms an admin adds to the vocabularies; an
enterprise may be registered (by an import) without its credit code, as unidentified; party
registers are imported too.

Revision ID: c0004_catalog_import
Revises: c0003_national_regions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecovalue.db

revision: str = 'c0004_catalog_import'
down_revision: str | Sequence[str] | None = 'c0003_national_regions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('vocabulary_synonyms',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('vocabulary', sa.String(length=24), nullable=False),
    sa.Column('term', sa.String(length=100), nullable=False),
    sa.Column('term_key', sa.String(length=100), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('created_by', sa.String(length=250), nullable=False),
    sa.Column('created_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vocabulary_synonyms')),
    sa.UniqueConstraint('vocabulary', 'term_key',
                        name=op.f('uq_vocabulary_synonyms_vocabulary_term_key'))
    )
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_parties_enterprise_credit_code'), type_='check')
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_import_batches_kind'), type_='check')
        batch_op.create_check_constraint('kind', "kind in ('products','monitoring','parties')")


def downgrade() -> None:
    op.execute("DELETE FROM import_batches WHERE kind = 'parties'")
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_import_batches_kind'), type_='check')
        batch_op.create_check_constraint('kind', "kind in ('products','monitoring')")
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.create_check_constraint('enterprise_credit_code',
                                         "kind <> 'enterprise' OR credit_code IS NOT NULL")
    op.drop_table('vocabulary_synonyms')
