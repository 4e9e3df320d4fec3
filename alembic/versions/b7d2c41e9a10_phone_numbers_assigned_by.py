"""phone numbers: who assigned them (numbers are assigned by super admins)

Revision ID: b7d2c41e9a10
Revises: 3c1d9b7e2a40
Create Date: 2026-12-02 09:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'b7d2c41e9a10'
down_revision: Union[str, Sequence[str], None] = '3c1d9b7e2a40'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('phone_numbers', sa.Column('assigned_by_user_id', sa.UUID(), nullable=True))
    op.create_foreign_key('phone_numbers_assigned_by_user_id_fkey', 'phone_numbers', 'users',
                          ['assigned_by_user_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    op.drop_constraint('phone_numbers_assigned_by_user_id_fkey', 'phone_numbers', type_='foreignkey')
    op.drop_column('phone_numbers', 'assigned_by_user_id')
