"""email activity per hour: opens and clicks per (campaign, UTC hour), kept by a statement trigger on email_events

Revision ID: f3a9c2d71e58
Revises: d8b3f5a27c61
Create Date: 2026-12-06 10:00:00.000000

The campaign page's chart (opens and clicks over time) read from `email_events` would group every event of the
campaign on each view: seconds for a campaign of a million recipients. The trigger aggregates each INSERT's
rows once per (campaign, hour) and upserts them in the same transaction, in a fixed order (no deadlock between
two writers); existing events are rolled up here.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'f3a9c2d71e58'
down_revision: Union[str, Sequence[str], None] = 'd8b3f5a27c61'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ROLLUP = """
INSERT INTO email_activity_hourly AS a (campaign_id, hour, tenant_id, opens, human_opens, clicks, human_clicks)
SELECT campaign_id, date_trunc('hour', occurred_at AT TIME ZONE 'UTC'), tenant_id,
       count(*) FILTER (WHERE event_type = 'opened'),
       count(*) FILTER (WHERE event_type = 'opened' AND verdict = 'human'),
       count(*) FILTER (WHERE event_type = 'clicked'),
       count(*) FILTER (WHERE event_type = 'clicked' AND verdict = 'human')
FROM {source} WHERE event_type IN ('opened', 'clicked')
GROUP BY 1, 2, 3 ORDER BY 1, 2
ON CONFLICT (campaign_id, hour) DO UPDATE SET
  opens = a.opens + EXCLUDED.opens, human_opens = a.human_opens + EXCLUDED.human_opens,
  clicks = a.clicks + EXCLUDED.clicks, human_clicks = a.human_clicks + EXCLUDED.human_clicks
"""

FUNCTION = f"""
CREATE FUNCTION email_events_roll_up_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {ROLLUP.format(source="new_events")};
  RETURN NULL;
END $$
"""
TRIGGER = (
    "CREATE TRIGGER email_events_activity_hourly AFTER INSERT ON email_events "
    "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION email_events_roll_up_activity()"
)


def upgrade() -> None:
    op.create_table(
        'email_activity_hourly',
        sa.Column('campaign_id', sa.UUID(), nullable=False),
        sa.Column('hour', sa.DateTime(), nullable=False),
        sa.Column('tenant_id', sa.UUID(), nullable=False),
        sa.Column('opens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('human_opens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('clicks', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('human_clicks', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['email_campaigns.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'hour'),
    )
    op.execute(FUNCTION)
    op.execute(TRIGGER)
    op.execute(ROLLUP.format(source="email_events"))


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS email_events_activity_hourly ON email_events")
    op.execute("DROP FUNCTION IF EXISTS email_events_roll_up_activity()")
    op.drop_table('email_activity_hourly')
