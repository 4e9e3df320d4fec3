"""call follow-ups: what the caller asked to be done after the call, kept on the call

Revision ID: b7e4d2a96c15
Revises: 0b7e4d2a9c15
Create Date: 2026-12-04 21:00:00.000000

`call_sessions.follow_ups` holds the follow-ups the post-call job found (a JSON list), so a caller who is not
a contact yet keeps them until they are added, and the call page can show them.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "b7e4d2a96c15"
down_revision: Union[str, Sequence[str], None] = "0b7e4d2a9c15"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column(
        "call_sessions",
        sa.Column(
            "follow_ups", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("call_sessions", "follow_ups")
