"""call_sessions.last_activity_at: a lost call end is billed up to the call's last sign of life

Revision ID: 3c1e8a52d7b4
Revises: fa7a59730ff3
Create Date: 2026-12-03 23:50:00.000000

The sidecar records media activity about every 30 s (through its record writer, never per frame), transcript
lines and Twilio status callbacks here; the stale-call sweep ends a call at this time instead of at the time
it ran.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '3c1e8a52d7b4'
down_revision: Union[str, Sequence[str], None] = 'fa7a59730ff3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('call_sessions', sa.Column('last_activity_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('call_sessions', 'last_activity_at')
