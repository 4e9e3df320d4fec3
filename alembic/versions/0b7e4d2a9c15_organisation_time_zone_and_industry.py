"""organisation time zone and industry

Revision ID: 0b7e4d2a9c15
Revises: c5d9e3b71a24
Create Date: 2026-12-04 20:45:00.000000

Each organisation gets the IANA time zone its pages show times in (existing ones: UTC, as before) and its
industry, which decides the specialists a new organisation starts with (existing ones: "other").
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0b7e4d2a9c15'
down_revision: Union[str, Sequence[str], None] = 'c5d9e3b71a24'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('tenants', sa.Column('time_zone', sa.String(length=64), server_default='UTC', nullable=False))
    op.add_column('tenants', sa.Column('industry', sa.String(length=40), server_default='other', nullable=False))


def downgrade() -> None:
    op.drop_column('tenants', 'industry')
    op.drop_column('tenants', 'time_zone')
