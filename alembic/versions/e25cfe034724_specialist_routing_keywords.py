"""specialist routing keywords

Revision ID: e25cfe034724
Revises: 002249770a75
Create Date: 2026-12-01 14:41:26.401837

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'e25cfe034724'
down_revision: Union[str, Sequence[str], None] = '002249770a75'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('specialists', sa.Column('keywords', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    op.drop_column('specialists', 'keywords')
