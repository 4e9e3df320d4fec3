"""call sessions by contact: a contact's calls, newest first, without reading the organisation's other calls

Revision ID: b7e4d2a9c318
Revises: b7e4d2a96c15
Create Date: 2026-12-04 21:20:00.000000

A contact's page lists their calls; before this index the query walked every call of the organisation, and
deleting a contact (which unlinks its calls) read the whole table. Partial: most calls of an unknown caller
have no contact.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'b7e4d2a9c318'
down_revision: Union[str, Sequence[str], None] = "b7e4d2a96c15"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index(
        'ix_call_sessions_contact_started',
        'call_sessions',
        ['contact_id', 'started_at'],
        unique=False,
        postgresql_where=sa.text('contact_id IS NOT NULL'),
    )


def downgrade() -> None:
    op.drop_index(
        'ix_call_sessions_contact_started',
        table_name='call_sessions',
        postgresql_where=sa.text('contact_id IS NOT NULL'),
    )
