"""CRM: contact search, orderings and constant-time contact statistics

Revision ID: 002249770a75
Revises: 93ba78065a8e
Create Date: 2026-12-01 14:41:56.178483

- contacts.search_vector: a generated tsvector (models.crm.SEARCH_DOCUMENT) with a GIN index;
- email_normalized / phone_normalized in the "C" collation, so prefix LIKE uses their btree indexes;
- indexes for the name and last-interaction orderings;
- contact_stats, kept by statement-level triggers with transition tables: each INSERT/UPDATE/DELETE
  statement on contacts aggregates its rows once and upserts one row per (tenant, day, status).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision: str = '002249770a75'
down_revision: Union[str, Sequence[str], None] = '93ba78065a8e'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SEARCH_DOCUMENT = (
    "to_tsvector('simple'::regconfig, coalesce(business_name, '') || ' ' || coalesce(contact_name, '') || ' ' || "
    "right(translate(coalesce(phone_normalized, ''), '+', ''), 10) || ' ' || "
    "right(translate(coalesce(phone_normalized, ''), '+', ''), 4))"
)

STATS_FUNCTION = """
CREATE FUNCTION contact_stats_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO contact_stats AS s (tenant_id, day, status, n)
    SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, status, count(*)
    FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (tenant_id, day, status) DO UPDATE SET n = s.n + EXCLUDED.n;
  ELSIF TG_OP = 'DELETE' THEN
    -- No insert here: when a whole organisation is deleted its stats rows may already be gone.
    UPDATE contact_stats AS s SET n = s.n - d.n
    FROM (SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date AS day, status, count(*) AS n
          FROM old_rows GROUP BY 1, 2, 3) AS d
    WHERE s.tenant_id = d.tenant_id AND s.day = d.day AND s.status = d.status;
  ELSE
    INSERT INTO contact_stats AS s (tenant_id, day, status, n)
    SELECT tenant_id, day, status, sum(n) FROM (
        SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date AS day, status, -1 AS n FROM old_rows
        UNION ALL
        SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, status, 1 FROM new_rows
    ) AS delta
    GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (tenant_id, day, status) DO UPDATE SET n = s.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        'contact_stats',
        sa.Column('tenant_id', sa.UUID(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', 'day', 'status'),
    )
    op.alter_column('contacts', 'email_normalized', type_=sa.String(320, collation='C'), existing_nullable=True)
    op.alter_column('contacts', 'phone_normalized', type_=sa.String(32, collation='C'), existing_nullable=True)
    op.add_column(
        'contacts',
        sa.Column('search_vector', postgresql.TSVECTOR(), sa.Computed(SEARCH_DOCUMENT, persisted=True), nullable=True),
    )
    op.create_index('ix_contacts_search', 'contacts', ['search_vector'], postgresql_using='gin')
    op.create_index('ix_contacts_tenant_business', 'contacts', ['tenant_id', 'business_name'])
    op.create_index(
        'ix_contacts_tenant_last_interaction', 'contacts',
        ['tenant_id', sa.literal_column('last_interaction_at DESC NULLS LAST')],
    )
    op.execute(STATS_FUNCTION)
    op.execute(
        "CREATE TRIGGER contact_stats_insert AFTER INSERT ON contacts REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION contact_stats_apply()"
    )
    op.execute(
        "CREATE TRIGGER contact_stats_update AFTER UPDATE ON contacts "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION contact_stats_apply()"
    )
    op.execute(
        "CREATE TRIGGER contact_stats_delete AFTER DELETE ON contacts REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION contact_stats_apply()"
    )
    # Contacts that existed before this migration.
    op.execute(
        "INSERT INTO contact_stats (tenant_id, day, status, n) "
        "SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, status, count(*) FROM contacts GROUP BY 1, 2, 3"
    )


def downgrade() -> None:
    for name in ('contact_stats_insert', 'contact_stats_update', 'contact_stats_delete'):
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON contacts")
    op.execute("DROP FUNCTION IF EXISTS contact_stats_apply()")
    op.drop_index('ix_contacts_tenant_last_interaction', table_name='contacts')
    op.drop_index('ix_contacts_tenant_business', table_name='contacts')
    op.drop_index('ix_contacts_search', table_name='contacts', postgresql_using='gin')
    op.drop_column('contacts', 'search_vector')
    op.alter_column('contacts', 'phone_normalized', type_=sa.String(32), existing_nullable=True)
    op.alter_column('contacts', 'email_normalized', type_=sa.String(320), existing_nullable=True)
    op.drop_table('contact_stats')
