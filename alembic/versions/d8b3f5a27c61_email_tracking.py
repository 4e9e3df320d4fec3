"""email tracking: opens, clicks and SendGrid events recorded once, with human and machine activity apart

Revision ID: d8b3f5a27c61
Revises: c4e7a1d9f2b3
Create Date: 2026-12-06 09:00:00.000000

`email_events` gains its campaign (for the campaign's timeline, index (campaign_id, occurred_at)), a verdict
(human / machine / scanner) with its reason, and a check on its type; `is_machine` gives way to the verdict.
Recipients gain what the Event Webhook says (delivered_at, bounced_at, bounce_type, unsubscribed_at,
spam_reported_at) and their open and click counts are named for what they count (human_open_count,
human_click_count, scanner_click_count beside machine_open_count). Campaigns and links gain totals and uniques,
all and human (models/email.py states the naming rule). `email_webhook_events` dedupes SendGrid events by
`sg_event_id`.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = 'd8b3f5a27c61'
down_revision: Union[str, Sequence[str], None] = 'c4e7a1d9f2b3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

EVENT_TYPES = (
    "('opened', 'clicked', 'processed', 'delivered', 'deferred', 'bounced', 'dropped', 'spam_reported', "
    "'unsubscribed')"
)
CAMPAIGN_COUNTERS = (
    'delivered_count', 'human_opened_count', 'open_count', 'human_open_count', 'human_clicked_count',
    'click_count', 'human_click_count', 'hard_bounced_count', 'soft_bounced_count', 'unsubscribed_count',
    'spam_reported_count',
)
LINK_COUNTERS = ('human_click_count', 'clicked_count', 'human_clicked_count')
RECIPIENT_TIMES = ('delivered_at', 'bounced_at', 'unsubscribed_at', 'spam_reported_at')


def _counter(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), server_default=sa.text('0'), nullable=False)


def upgrade() -> None:
    # --- events ---
    op.add_column('email_events', sa.Column('campaign_id', sa.UUID(), nullable=True))
    op.execute(
        "UPDATE email_events e SET campaign_id = r.campaign_id FROM email_recipients r WHERE r.id = e.recipient_id"
    )
    op.alter_column('email_events', 'campaign_id', nullable=False)
    op.add_column('email_events', sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
    op.add_column('email_events', sa.Column('verdict_reason', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
    op.execute(
        "UPDATE email_events SET verdict = CASE WHEN is_machine THEN 'machine' ELSE 'human' END "
        "WHERE event_type IN ('opened', 'clicked')"
    )
    op.drop_column('email_events', 'is_machine')
    op.execute(
        "UPDATE email_events SET event_type = CASE event_type WHEN 'spamreport' THEN 'spam_reported' "
        "WHEN 'open' THEN 'opened' WHEN 'click' THEN 'clicked' WHEN 'bounce' THEN 'bounced' "
        "WHEN 'unsubscribe' THEN 'unsubscribed' ELSE event_type END"
    )
    op.execute(f"DELETE FROM email_events WHERE event_type NOT IN {EVENT_TYPES}")
    op.create_check_constraint('ck_email_events_type', 'email_events', f"event_type IN {EVENT_TYPES}")
    op.create_check_constraint('ck_email_events_verdict', 'email_events', "verdict IN ('human', 'machine', 'scanner')")
    op.create_index('ix_email_events_campaign_time', 'email_events', ['campaign_id', 'occurred_at'], unique=False)

    # --- recipients ---
    for name in RECIPIENT_TIMES:
        op.add_column('email_recipients', sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column('email_recipients', sa.Column('bounce_type', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
    op.create_check_constraint('ck_email_recipients_bounce_type', 'email_recipients', "bounce_type IN ('hard', 'soft')")
    op.alter_column('email_recipients', 'open_count', new_column_name='human_open_count')
    op.alter_column('email_recipients', 'click_count', new_column_name='human_click_count')
    op.add_column('email_recipients', _counter('scanner_click_count'))

    # --- campaigns and links ---
    for name in CAMPAIGN_COUNTERS:
        op.add_column('email_campaigns', _counter(name))
    for name in LINK_COUNTERS:
        op.add_column('campaign_links', _counter(name))

    # --- webhook events seen ---
    op.create_table('email_webhook_events',
    sa.Column('sg_event_id', sa.String(length=128), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('recipient_id', sa.UUID(), nullable=True),
    sa.PrimaryKeyConstraint('sg_event_id'),
    sa.UniqueConstraint('id')
    )
    op.create_index('ix_email_webhook_events_received', 'email_webhook_events', ['received_at'], unique=False)
    op.create_index(
        'ix_email_webhook_events_unprocessed', 'email_webhook_events', ['id'], unique=False,
        postgresql_where=sa.text('processed_at IS NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_email_webhook_events_unprocessed', table_name='email_webhook_events')
    op.drop_index('ix_email_webhook_events_received', table_name='email_webhook_events')
    op.drop_table('email_webhook_events')
    for name in LINK_COUNTERS:
        op.drop_column('campaign_links', name)
    for name in CAMPAIGN_COUNTERS:
        op.drop_column('email_campaigns', name)
    op.drop_column('email_recipients', 'scanner_click_count')
    op.alter_column('email_recipients', 'human_click_count', new_column_name='click_count')
    op.alter_column('email_recipients', 'human_open_count', new_column_name='open_count')
    op.drop_constraint('ck_email_recipients_bounce_type', 'email_recipients', type_='check')
    op.drop_column('email_recipients', 'bounce_type')
    for name in RECIPIENT_TIMES:
        op.drop_column('email_recipients', name)
    op.drop_index('ix_email_events_campaign_time', table_name='email_events')
    op.drop_constraint('ck_email_events_verdict', 'email_events', type_='check')
    op.drop_constraint('ck_email_events_type', 'email_events', type_='check')
    op.add_column('email_events', sa.Column('is_machine', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.execute("UPDATE email_events SET is_machine = verdict IN ('machine', 'scanner')")
    op.drop_column('email_events', 'verdict_reason')
    op.drop_column('email_events', 'verdict')
    op.drop_column('email_events', 'campaign_id')
