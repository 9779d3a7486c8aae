"""Catalog: ecological products, their version history, monitoring records, import batches;
regions get a source, parties an active flag.

Revision ID: c0002_products
Revises: c0001_catalog
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecovalue.db

revision: str = 'c0002_products'
down_revision: str | Sequence[str] | None = 'c0001_catalog'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('import_batches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('encoding', sa.String(length=12), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=True),
    sa.Column('actor', sa.String(length=250), nullable=False),
    sa.Column('created_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind in ('products','monitoring')", name=op.f('ck_import_batches_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_batches'))
    )
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_batches_sha256'), ['sha256'], unique=False)

    op.create_table('products',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_code', sa.String(length=60), nullable=True),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('type_code', sa.String(length=40), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('holder_party_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rights_type', sa.String(length=24), nullable=False),
    sa.Column('area_ha', sa.Float(), nullable=True),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('grid_cell_id', sa.String(length=40), nullable=True),
    sa.Column('quantity', sa.Float(), nullable=True),
    sa.Column('quantity_unit', sa.String(length=20), nullable=True),
    sa.Column('quality_grade', sa.String(length=40), nullable=True),
    sa.Column('development_status', sa.String(length=16), nullable=False),
    sa.Column('brand', sa.String(length=100), nullable=True),
    sa.Column('certifications', sa.JSON(), nullable=False),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('verified_at', ecovalue.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('verified_by', sa.String(length=250), nullable=True),
    sa.Column('created_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=250), nullable=False),
    sa.Column('updated_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=250), nullable=False),
    sa.CheckConstraint("category in ('provisioning','regulating','cultural')", name=op.f('ck_products_category')),
    sa.CheckConstraint("development_status in ('not_developed','developing','developed','traded')", name=op.f('ck_products_development_status')),
    sa.CheckConstraint("rights_type in ('ownership','contract_management','use')", name=op.f('ck_products_rights_type')),
    sa.CheckConstraint("status in ('draft','registered','verified','suspended','retired')", name=op.f('ck_products_status')),
    sa.CheckConstraint('(latitude IS NULL) = (longitude IS NULL)', name=op.f('ck_products_point')),
    sa.CheckConstraint('(quantity IS NULL) = (quantity_unit IS NULL)', name=op.f('ck_products_quantity_unit')),
    sa.CheckConstraint('area_ha IS NULL OR area_ha > 0', name=op.f('ck_products_area_positive')),
    sa.CheckConstraint('latitude IS NULL OR latitude BETWEEN -90 AND 90', name=op.f('ck_products_latitude')),
    sa.CheckConstraint('longitude IS NULL OR longitude BETWEEN -180 AND 180', name=op.f('ck_products_longitude')),
    sa.CheckConstraint('quantity IS NULL OR quantity >= 0', name=op.f('ck_products_quantity_not_negative')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_products_version')),
    sa.ForeignKeyConstraint(['holder_party_id'], ['parties.id'], name=op.f('fk_products_holder_party_id_parties')),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_products_region_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('county_code', 'external_code', name=op.f('uq_products_county_code_external_code')),
    sa.UniqueConstraint('region_code', 'type_code', 'name_zh', name=op.f('uq_products_region_code_type_code_name_zh'))
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_products_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_products_county_code'), ['county_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_products_holder_party_id'), ['holder_party_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_products_region_code'), ['region_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_products_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_products_type_code'), ['type_code'], unique=False)

    op.create_table('monitoring_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('period_year', sa.Integer(), nullable=False),
    sa.Column('period_month', sa.Integer(), nullable=True),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('method', sa.String(length=24), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('recorded_by', sa.String(length=250), nullable=False),
    sa.Column('recorded_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('import_batch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("method in ('field_survey','remote_sensing','grid_monitoring','statistical_yearbook','model_estimate')", name=op.f('ck_monitoring_records_method')),
    sa.CheckConstraint('period_end >= period_start', name=op.f('ck_monitoring_records_period_order')),
    sa.CheckConstraint('period_month IS NULL OR period_month BETWEEN 1 AND 12', name=op.f('ck_monitoring_records_period_month')),
    sa.ForeignKeyConstraint(['import_batch_id'], ['import_batches.id'], name=op.f('fk_monitoring_records_import_batch_id_import_batches')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_monitoring_records_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitoring_records')),
    sa.UniqueConstraint('product_id', 'metric', 'period_start', 'period_end', 'method', name=op.f('uq_monitoring_records_product_id_metric_period_start_period_end_method'))
    )
    with op.batch_alter_table('monitoring_records', schema=None) as batch_op:
        batch_op.create_index('ix_monitoring_records_county_period', ['county_code', 'period_start'], unique=False)
        batch_op.create_index(batch_op.f('ix_monitoring_records_import_batch_id'), ['import_batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_monitoring_records_metric'), ['metric'], unique=False)
        batch_op.create_index(batch_op.f('ix_monitoring_records_product_id'), ['product_id'], unique=False)

    op.create_table('product_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('change', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('changed_fields', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('actor', sa.String(length=250), nullable=False),
    sa.Column('changed_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('import_batch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['import_batch_id'], ['import_batches.id'], name=op.f('fk_product_versions_import_batch_id_import_batches')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_product_versions_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_versions')),
    sa.UniqueConstraint('product_id', 'version', name=op.f('uq_product_versions_product_id_version'))
    )
    with op.batch_alter_table('product_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_versions_import_batch_id'), ['import_batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_product_versions_product_id'), ['product_id'], unique=False)

    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))

    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=12), server_default='registered', nullable=False))
        batch_op.create_check_constraint(
            'source', "source in ('reference','registered','demo')")
    # prefecture and counties loaded before this revision came from the reference list
    op.execute("UPDATE regions SET source = 'reference' WHERE level IN ('prefecture', 'county')")


def downgrade() -> None:
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_regions_source'), type_='check')
        batch_op.drop_column('source')

    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.drop_column('active')

    with op.batch_alter_table('product_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_versions_product_id'))
        batch_op.drop_index(batch_op.f('ix_product_versions_import_batch_id'))

    op.drop_table('product_versions')
    with op.batch_alter_table('monitoring_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitoring_records_product_id'))
        batch_op.drop_index(batch_op.f('ix_monitoring_records_metric'))
        batch_op.drop_index(batch_op.f('ix_monitoring_records_import_batch_id'))
        batch_op.drop_index('ix_monitoring_records_county_period')

    op.drop_table('monitoring_records')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_type_code'))
        batch_op.drop_index(batch_op.f('ix_products_status'))
        batch_op.drop_index(batch_op.f('ix_products_region_code'))
        batch_op.drop_index(batch_op.f('ix_products_holder_party_id'))
        batch_op.drop_index(batch_op.f('ix_products_county_code'))
        batch_op.drop_index(batch_op.f('ix_products_category'))

    op.drop_table('products')
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_batches_sha256'))

    op.drop_table('import_batches')

