"""email sending: sender identities, suppressions, the local outbox, send batches, campaign and recipient state

Revision ID: c4e7a1d9f2b3
Revises: b7d2c41e9a10
Create Date: 2026-12-05 09:00:00.000000

Campaigns gain a paused state and what sending needs (the job that owns them, the send rate, consecutive
failures and the pause reason, counts, when the audience was materialised). Recipients gain their send order
(`seq`) and their batch; `unknown` is the state of a recipient whose request's answer never came back.
`email_batches` records each Mail Send request before it is made. Suppressions are kept per address.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = 'c4e7a1d9f2b3'
down_revision: Union[str, Sequence[str], None] = 'b7d2c41e9a10'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CAMPAIGN_STATUSES = "('draft', 'scheduled', 'sending', 'paused', 'sent', 'partial', 'failed', 'cancelled')"
OLD_CAMPAIGN_STATUSES = "('draft', 'scheduled', 'sending', 'sent', 'partial', 'failed', 'cancelled')"
RECIPIENT_STATUSES = "('pending', 'sent', 'delivered', 'bounced', 'dropped', 'failed', 'skipped', 'unknown')"
OLD_RECIPIENT_STATUSES = "('pending', 'sent', 'delivered', 'bounced', 'dropped', 'failed', 'skipped')"

# email_recipients.campaign_id without a per-row foreign key (see models/email.py): the same guarantees, once per
# statement, as migration fa7a59730ff3 does for contacts.
RECIPIENT_REFERENCES = """
CREATE FUNCTION email_recipients_check_campaigns() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  campaign_ids uuid[];
BEGIN
  SELECT array_agg(DISTINCT campaign_id) INTO campaign_ids FROM new_rows;
  -- Locked like a foreign key check locks them, so a concurrent delete waits for this transaction.
  IF (SELECT count(*) FROM (SELECT 1 FROM email_campaigns WHERE id = ANY(campaign_ids) FOR KEY SHARE) c)
     <> coalesce(cardinality(campaign_ids), 0) THEN
    RAISE EXCEPTION 'insert on table "email_recipients" names a campaign that does not exist'
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION email_recipients_campaign_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a recipient belongs to its campaign for good' USING ERRCODE = 'foreign_key_violation';
END $$;

CREATE FUNCTION email_campaigns_delete_recipients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM email_recipients WHERE campaign_id IN (SELECT id FROM old_rows);
  RETURN NULL;
END $$;
"""
RECIPIENT_TRIGGERS = (
    "CREATE TRIGGER email_recipients_references_insert AFTER INSERT ON email_recipients "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION email_recipients_check_campaigns()",
    "CREATE TRIGGER email_recipients_campaign_fixed BEFORE UPDATE OF campaign_id ON email_recipients "
    "FOR EACH ROW WHEN (NEW.campaign_id IS DISTINCT FROM OLD.campaign_id) "
    "EXECUTE FUNCTION email_recipients_campaign_fixed()",
    "CREATE TRIGGER email_campaigns_delete_recipients AFTER DELETE ON email_campaigns "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION email_campaigns_delete_recipients()",
)


def upgrade() -> None:
    # --- campaigns ---
    op.add_column('email_campaigns', sa.Column('failed_count', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('email_campaigns', sa.Column('unknown_count', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('email_campaigns', sa.Column('skipped_count', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.alter_column('email_campaigns', 'job_id', type_=sa.BigInteger(), existing_nullable=True)
    op.add_column('email_campaigns', sa.Column('send_rate_per_second', sa.Integer(), nullable=True))
    op.add_column('email_campaigns', sa.Column('consecutive_failures', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('email_campaigns', sa.Column('pause_reason', sa.Text(), nullable=True))
    op.add_column('email_campaigns', sa.Column('materialized_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('email_campaigns', sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('email_campaigns', sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint('ck_email_campaigns_status', 'email_campaigns', type_='check')
    op.create_check_constraint('ck_email_campaigns_status', 'email_campaigns', f"status IN {CAMPAIGN_STATUSES}")

    # --- recipients ---
    op.add_column('email_recipients', sa.Column('seq', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE email_recipients r SET seq = n.seq FROM (SELECT id, row_number() OVER "
        "(PARTITION BY campaign_id ORDER BY id) AS seq FROM email_recipients) n WHERE n.id = r.id"
    )
    op.alter_column('email_recipients', 'seq', nullable=False)
    op.add_column('email_recipients', sa.Column('batch_id', sa.BigInteger(), nullable=True))
    op.alter_column('email_recipients', 'status', server_default=sa.text("'pending'"), existing_nullable=False)
    op.create_unique_constraint('uq_email_recipients_campaign_seq', 'email_recipients', ['campaign_id', 'seq'])
    # Materialising 100,000 recipients in one INSERT ... SELECT: per-row foreign-key checks on the organisation and
    # the contact, and two indexes nothing reads, were most of its cost (see models/email.py).
    op.drop_constraint('uq_email_recipients_campaign_email', 'email_recipients', type_='unique')
    op.drop_index('ix_email_recipients_tenant_id', table_name='email_recipients')
    op.drop_constraint('email_recipients_tenant_id_fkey', 'email_recipients', type_='foreignkey')
    op.drop_constraint('email_recipients_contact_id_fkey', 'email_recipients', type_='foreignkey')
    op.drop_constraint('email_recipients_campaign_id_fkey', 'email_recipients', type_='foreignkey')
    op.execute(RECIPIENT_REFERENCES)
    for statement in RECIPIENT_TRIGGERS:
        op.execute(statement)
    # Rows are updated after they are written: room on each page keeps those updates HOT.
    op.execute("ALTER TABLE email_recipients SET (fillfactor = 50)")
    op.drop_constraint('ck_email_recipients_status', 'email_recipients', type_='check')
    op.create_check_constraint('ck_email_recipients_status', 'email_recipients', f"status IN {RECIPIENT_STATUSES}")

    # --- batches ---
    op.create_table('email_batches',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('campaign_id', sa.UUID(), nullable=False),
    sa.Column('job_id', sa.BigInteger(), nullable=True),
    sa.Column('seq_from', sa.Integer(), nullable=False),
    sa.Column('seq_to', sa.Integer(), nullable=False),
    sa.Column('members', postgresql.ARRAY(sa.Integer()), nullable=True),
    sa.Column('recipients', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('sending', 'sent', 'failed', 'unknown', 'unsent')", name='ck_email_batches_status'),
    sa.ForeignKeyConstraint(['campaign_id'], ['email_campaigns.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_email_batches_campaign_status', 'email_batches', ['campaign_id', 'status'], unique=False)

    # --- sender identities ---
    op.create_table('email_senders',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('from_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('from_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('reply_to', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('postal_address', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('updated_by_user_id', sa.UUID(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('tenant_id')
    )

    # --- suppressions ---
    op.create_table('email_suppressions',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('email_normalized', sa.String(length=320, collation='C'), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('contact_id', sa.UUID(), nullable=True),
    sa.Column('campaign_id', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("reason IN ('unsubscribed', 'bounced', 'spam')", name='ck_email_suppressions_reason'),
    sa.ForeignKeyConstraint(['campaign_id'], ['email_campaigns.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'email_normalized')
    )
    # Contacts already flagged before this table existed stay suppressed.
    op.execute(
        "INSERT INTO email_suppressions (tenant_id, email_normalized, reason, contact_id) "
        "SELECT tenant_id, email_normalized, CASE WHEN unsubscribed THEN 'unsubscribed' ELSE 'bounced' END, id "
        "FROM contacts WHERE (unsubscribed OR bounced) AND email_normalized IS NOT NULL "
        "ON CONFLICT DO NOTHING"
    )

    # --- the local outbox ---
    op.create_table('email_outbox',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('campaign_id', sa.UUID(), nullable=True),
    sa.Column('recipient_id', sa.UUID(), nullable=True),
    sa.Column('contact_id', sa.UUID(), nullable=True),
    sa.Column('to_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('to_name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('from_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('from_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('reply_to', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('headers', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['email_campaigns.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['recipient_id'], ['email_recipients.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_email_outbox_tenant_created', 'email_outbox', ['tenant_id', 'created_at'], unique=False)
    op.create_index('ix_email_outbox_recipient', 'email_outbox', ['recipient_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_email_outbox_recipient', table_name='email_outbox')
    op.drop_index('ix_email_outbox_tenant_created', table_name='email_outbox')
    op.drop_table('email_outbox')
    op.drop_table('email_suppressions')
    op.drop_table('email_senders')
    op.drop_index('ix_email_batches_campaign_status', table_name='email_batches')
    op.drop_table('email_batches')
    op.drop_constraint('ck_email_recipients_status', 'email_recipients', type_='check')
    op.execute("UPDATE email_recipients SET status = 'failed' WHERE status = 'unknown'")
    op.create_check_constraint('ck_email_recipients_status', 'email_recipients', f"status IN {OLD_RECIPIENT_STATUSES}")
    op.execute("ALTER TABLE email_recipients RESET (fillfactor)")
    op.execute("DROP TRIGGER email_campaigns_delete_recipients ON email_campaigns")
    op.execute("DROP TRIGGER email_recipients_campaign_fixed ON email_recipients")
    op.execute("DROP TRIGGER email_recipients_references_insert ON email_recipients")
    op.execute("DROP FUNCTION email_campaigns_delete_recipients(), email_recipients_campaign_fixed(), "
               "email_recipients_check_campaigns()")
    op.create_foreign_key('email_recipients_campaign_id_fkey', 'email_recipients', 'email_campaigns', ['campaign_id'],
                          ['id'], ondelete='CASCADE')
    op.create_foreign_key('email_recipients_contact_id_fkey', 'email_recipients', 'contacts', ['contact_id'], ['id'],
                          ondelete='SET NULL')
    op.create_foreign_key('email_recipients_tenant_id_fkey', 'email_recipients', 'tenants', ['tenant_id'], ['id'],
                          ondelete='CASCADE')
    op.create_index('ix_email_recipients_tenant_id', 'email_recipients', ['tenant_id'], unique=False)
    op.create_unique_constraint('uq_email_recipients_campaign_email', 'email_recipients', ['campaign_id', 'email_address'])
    op.drop_constraint('uq_email_recipients_campaign_seq', 'email_recipients', type_='unique')
    op.alter_column('email_recipients', 'status', server_default=None, existing_nullable=False)
    op.drop_column('email_recipients', 'batch_id')
    op.drop_column('email_recipients', 'seq')
    op.drop_constraint('ck_email_campaigns_status', 'email_campaigns', type_='check')
    op.execute("UPDATE email_campaigns SET status = 'cancelled' WHERE status = 'paused'")
    op.create_check_constraint('ck_email_campaigns_status', 'email_campaigns', f"status IN {OLD_CAMPAIGN_STATUSES}")
    for column in ('finished_at', 'started_at', 'materialized_at', 'pause_reason', 'consecutive_failures',
                   'send_rate_per_second', 'skipped_count', 'unknown_count', 'failed_count'):
        op.drop_column('email_campaigns', column)
    op.alter_column('email_campaigns', 'job_id', type_=sa.Integer(), existing_nullable=True)
