"""valuation: price books, indices, quantities, runs

On PostgreSQL, triggers refuse changes to what must not change: a published price book and its
entries, quantity sets and their rows, finished runs (except their publication) and results.

Revision ID: v0001_valuation
Revises: c0001_catalog
Create Date: 2026-11-29 05:49:32.652353
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecovalue.db


revision: str = 'v0001_valuation'
down_revision: str | Sequence[str] | None = 'c0001_catalog'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


IMMUTABLE_TABLES = ("valuation_quantity_sets", "valuation_quantities", "valuation_results",
                    "valuation_run_quantity_sets")

POSTGRES_UP = [
    """
    CREATE FUNCTION valuation_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '% rows never change once written', TG_TABLE_NAME
            USING ERRCODE = 'check_violation';
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE FUNCTION valuation_guard_price_book() RETURNS trigger AS $$
    BEGIN
        IF OLD.status = 'published' THEN
            RAISE EXCEPTION 'price book % is published and never changes', OLD.version
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE FUNCTION valuation_guard_price_entry() RETURNS trigger AS $$
    DECLARE
        book_status text;
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            SELECT status INTO book_status FROM valuation_price_books WHERE id = OLD.book_id;
            IF book_status = 'published' THEN
                RAISE EXCEPTION 'entries of a published price book never change'
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            SELECT status INTO book_status FROM valuation_price_books WHERE id = NEW.book_id;
            IF book_status = 'published' THEN
                RAISE EXCEPTION 'entries of a published price book never change'
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE FUNCTION valuation_guard_run() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' OR OLD.status = 'published'
           OR NEW.status <> 'published'
           OR (NEW.id, NEW.region_code, NEW.year, NEW.base_year, NEW.price_book_id, NEW.title,
               NEW.input_hash, NEW.engine_version, NEW.gep_current, NEW.gep_constant,
               NEW.created_at, NEW.created_by)
              IS DISTINCT FROM
              (OLD.id, OLD.region_code, OLD.year, OLD.base_year, OLD.price_book_id, OLD.title,
               OLD.input_hash, OLD.engine_version, OLD.gep_current, OLD.gep_constant,
               OLD.created_at, OLD.created_by)
           OR (NEW.options::text, NEW.context::text, NEW.summary::text, NEW.ratios::text,
               NEW.unvalued::text, NEW.warnings::text, NEW.prices::text,
               NEW.registry_snapshot::text, NEW.indices::text)
              IS DISTINCT FROM
              (OLD.options::text, OLD.context::text, OLD.summary::text, OLD.ratios::text,
               OLD.unvalued::text, OLD.warnings::text, OLD.prices::text,
               OLD.registry_snapshot::text, OLD.indices::text)
        THEN
            RAISE EXCEPTION 'a finished valuation run never changes (only its publication)'
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql
    """,
    *[f"""
    CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION valuation_refuse_change()
    """ for table in IMMUTABLE_TABLES],
    """
    CREATE TRIGGER valuation_price_books_guard BEFORE UPDATE OR DELETE ON valuation_price_books
        FOR EACH ROW EXECUTE FUNCTION valuation_guard_price_book()
    """,
    """
    CREATE TRIGGER valuation_price_book_entries_guard
        BEFORE INSERT OR UPDATE OR DELETE ON valuation_price_book_entries
        FOR EACH ROW EXECUTE FUNCTION valuation_guard_price_entry()
    """,
    """
    CREATE TRIGGER valuation_runs_guard BEFORE UPDATE OR DELETE ON valuation_runs
        FOR EACH ROW EXECUTE FUNCTION valuation_guard_run()
    """,
]

POSTGRES_DOWN = [
    *[f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}" for table in IMMUTABLE_TABLES],
    "DROP TRIGGER IF EXISTS valuation_price_books_guard ON valuation_price_books",
    "DROP TRIGGER IF EXISTS valuation_price_book_entries_guard ON valuation_price_book_entries",
    "DROP TRIGGER IF EXISTS valuation_runs_guard ON valuation_runs",
    "DROP FUNCTION IF EXISTS valuation_guard_run()",
    "DROP FUNCTION IF EXISTS valuation_guard_price_entry()",
    "DROP FUNCTION IF EXISTS valuation_guard_price_book()",
    "DROP FUNCTION IF EXISTS valuation_refuse_change()",
]


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('valuation_custom_indicators',
    sa.Column('code', sa.String(length=30), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('definition', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=250), nullable=False),
    sa.Column('updated_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=250), nullable=False),
    sa.CheckConstraint("category in ('provisioning', 'regulating', 'cultural')", name=op.f('ck_valuation_custom_indicators_category')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_valuation_custom_indicators'))
    )
    op.create_table('valuation_price_books',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('based_on_version', sa.String(length=40), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=250), nullable=False),
    sa.Column('published_at', ecovalue.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('published_by', sa.String(length=250), nullable=True),
    sa.CheckConstraint("status in ('draft', 'published')", name=op.f('ck_valuation_price_books_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_valuation_price_books')),
    sa.UniqueConstraint('version', name=op.f('uq_valuation_price_books_version'))
    )
    op.create_table('valuation_price_index_series',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('base', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=True),
    sa.Column('confirmation', sa.String(length=12), nullable=False),
    sa.Column('created_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("confirmation in ('to-confirm', 'confirmed')", name=op.f('ck_valuation_price_index_series_confirmation')),
    sa.CheckConstraint("kind = 'fixed-base'", name=op.f('ck_valuation_price_index_series_kind')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_valuation_price_index_series'))
    )
    op.create_table('valuation_price_book_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('book_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('parameter', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Double(), nullable=False),
    sa.Column('unit', sa.String(length=40), nullable=False),
    sa.Column('price_year', sa.Integer(), nullable=True),
    sa.Column('index_series', sa.String(length=40), nullable=True),
    sa.Column('confirmation', sa.String(length=12), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=True),
    sa.CheckConstraint("confirmation in ('to-confirm', 'confirmed')", name=op.f('ck_valuation_price_book_entries_confirmation')),
    sa.ForeignKeyConstraint(['book_id'], ['valuation_price_books.id'], name=op.f('fk_valuation_price_book_entries_book_id_valuation_price_books')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_valuation_price_book_entries')),
    sa.UniqueConstraint('book_id', 'parameter', name=op.f('uq_valuation_price_book_entries_book_id_parameter'))
    )
    with op.batch_alter_table('valuation_price_book_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_valuation_price_book_entries_book_id'), ['book_id'], unique=False)

    op.create_table('valuation_price_indices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('series_code', sa.String(length=40), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('value', sa.Double(), nullable=False),
    sa.Column('confirmation', sa.String(length=12), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('updated_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=250), nullable=False),
    sa.CheckConstraint("confirmation in ('to-confirm', 'confirmed')", name=op.f('ck_valuation_price_indices_confirmation')),
    sa.CheckConstraint('value > 0', name=op.f('ck_valuation_price_indices_positive')),
    sa.ForeignKeyConstraint(['series_code'], ['valuation_price_index_series.code'], name=op.f('fk_valuation_price_indices_series_code_valuation_price_index_series')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_valuation_price_indices')),
    sa.UniqueConstraint('series_code', 'year', name=op.f('uq_valuation_price_indices_series_code_year'))
    )
    op.create_table('valuation_quantity_sets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('file_sha256', sa.String(length=64), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('warnings', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('grid', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('created_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=250), nullable=False),
    sa.CheckConstraint("source in ('csv', 'xlsx', 'api', 'grid', 'catalog')", name=op.f('ck_valuation_quantity_sets_source')),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_valuation_quantity_sets_region_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_valuation_quantity_sets'))
    )
    with op.batch_alter_table('valuation_quantity_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_valuation_quantity_sets_region_code'), ['region_code'], unique=False)

    op.create_table('valuation_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('base_year', sa.Integer(), nullable=False),
    sa.Column('price_book_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('options', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('context', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('input_hash', sa.String(length=64), nullable=False),
    sa.Column('engine_version', sa.String(length=20), nullable=False),
    sa.Column('gep_current', sa.Double(), nullable=False),
    sa.Column('gep_constant', sa.Double(), nullable=False),
    sa.Column('summary', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('ratios', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('unvalued', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('warnings', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('prices', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('registry_snapshot', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('indices', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('created_at', ecovalue.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=250), nullable=False),
    sa.Column('published_at', ecovalue.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('published_by', sa.String(length=250), nullable=True),
    sa.CheckConstraint("status in ('finished', 'published')", name=op.f('ck_valuation_runs_status')),
    sa.ForeignKeyConstraint(['price_book_id'], ['valuation_price_books.id'], name=op.f('fk_valuation_runs_price_book_id_valuation_price_books')),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_valuation_runs_region_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_valuation_runs'))
    )
    with op.batch_alter_table('valuation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_valuation_runs_input_hash'), ['input_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_valuation_runs_price_book_id'), ['price_book_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_valuation_runs_region_code'), ['region_code'], unique=False)

    op.create_table('valuation_quantities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('set_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('indicator_code', sa.String(length=30), nullable=False),
    sa.Column('item', sa.String(length=40), nullable=False),
    sa.Column('ecosystem_type', sa.String(length=16), nullable=False),
    sa.Column('origin', sa.String(length=8), nullable=False),
    sa.Column('quantity', sa.Double(), nullable=True),
    sa.Column('quantity_unit', sa.String(length=20), nullable=True),
    sa.Column('money', sa.Boolean(), nullable=False),
    sa.Column('reported_quantity', sa.Double(), nullable=True),
    sa.Column('reported_unit', sa.String(length=40), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.CheckConstraint("origin in ('local', 'outside')", name=op.f('ck_valuation_quantities_origin')),
    sa.ForeignKeyConstraint(['set_id'], ['valuation_quantity_sets.id'], name=op.f('fk_valuation_quantities_set_id_valuation_quantity_sets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_valuation_quantities'))
    )
    with op.batch_alter_table('valuation_quantities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_valuation_quantities_set_id'), ['set_id'], unique=False)

    op.create_table('valuation_results',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('indicator_code', sa.String(length=30), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('item', sa.String(length=40), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('ecosystem_type', sa.String(length=16), nullable=False),
    sa.Column('quantity', sa.Double(), nullable=False),
    sa.Column('quantity_unit', sa.String(length=20), nullable=False),
    sa.Column('quantity_gross', sa.Double(), nullable=False),
    sa.Column('quantity_outside', sa.Double(), nullable=False),
    sa.Column('unit_price', sa.Double(), nullable=True),
    sa.Column('unit_price_constant', sa.Double(), nullable=True),
    sa.Column('adjustment_factor', sa.Double(), nullable=True),
    sa.Column('value_reference', sa.Double(), nullable=False),
    sa.Column('value_current', sa.Double(), nullable=False),
    sa.Column('value_constant', sa.Double(), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('terms', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('parameters', sa.JSON(none_as_null=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['valuation_runs.id'], name=op.f('fk_valuation_results_run_id_valuation_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_valuation_results')),
    sa.UniqueConstraint('run_id', 'indicator_code', 'item', 'region_code', 'ecosystem_type', 'quantity_unit', name=op.f('uq_valuation_results_run_id_indicator_code_item_region_code_ecosystem_type_quantity_unit'))
    )
    with op.batch_alter_table('valuation_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_valuation_results_run_id'), ['run_id'], unique=False)

    op.create_table('valuation_run_quantity_sets',
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('set_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['valuation_runs.id'], name=op.f('fk_valuation_run_quantity_sets_run_id_valuation_runs')),
    sa.ForeignKeyConstraint(['set_id'], ['valuation_quantity_sets.id'], name=op.f('fk_valuation_run_quantity_sets_set_id_valuation_quantity_sets')),
    sa.PrimaryKeyConstraint('run_id', 'set_id', name=op.f('pk_valuation_run_quantity_sets'))
    )
    with op.batch_alter_table('valuation_run_quantity_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_valuation_run_quantity_sets_set_id'), ['set_id'], unique=False)

    # ### end Alembic commands ###
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(statement)
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('valuation_run_quantity_sets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_valuation_run_quantity_sets_set_id'))

    op.drop_table('valuation_run_quantity_sets')
    with op.batch_alter_table('valuation_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_valuation_results_run_id'))

    op.drop_table('valuation_results')
    with op.batch_alter_table('valuation_quantities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_valuation_quantities_set_id'))

    op.drop_table('valuation_quantities')
    with op.batch_alter_table('valuation_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_valuation_runs_region_code'))
        batch_op.drop_index(batch_op.f('ix_valuation_runs_price_book_id'))
        batch_op.drop_index(batch_op.f('ix_valuation_runs_input_hash'))

    op.drop_table('valuation_runs')
    with op.batch_alter_table('valuation_quantity_sets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_valuation_quantity_sets_region_code'))

    op.drop_table('valuation_quantity_sets')
    op.drop_table('valuation_price_indices')
    with op.batch_alter_table('valuation_price_book_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_valuation_price_book_entries_book_id'))

    op.drop_table('valuation_price_book_entries')
    op.drop_table('valuation_price_index_series')
    op.drop_table('valuation_price_books')
    op.drop_table('valuation_custom_indicators')
    # ### end Alembic commands ###
