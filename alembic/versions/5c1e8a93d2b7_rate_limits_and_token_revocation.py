"""rate limits and token revocation

Revision ID: 5c1e8a93d2b7
Revises: 3c1e8a52d7b4
Create Date: 2026-12-02 10:00:00.000000

- rate_limits: one row per limit (sign-in back-off per email and client, failures per client and per account,
  consultations per organisation), changed by single INSERT ... ON CONFLICT DO UPDATE statements.
- users.tokens_valid_after: API tokens issued before it are refused (password reset, (re)activation).
- jobs.last_error is shown to admins now: tracebacks stored there before are replaced by the runner's message
  (the runner logs tracebacks instead).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel

# revision identifiers, used by Alembic.
revision: str = '5c1e8a93d2b7'
down_revision: Union[str, Sequence[str], None] = '3c1e8a52d7b4'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'rate_limits',
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column('hits', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index(op.f('ix_rate_limits_expires_at'), 'rate_limits', ['expires_at'], unique=False)
    op.add_column('users', sa.Column('tokens_valid_after', sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE jobs SET last_error = 'The job failed because of an unexpected error on our side. It has been logged.' "
        "WHERE last_error LIKE 'Traceback (most recent call last)%'"
    )


def downgrade() -> None:
    op.drop_column('users', 'tokens_valid_after')
    op.drop_index(op.f('ix_rate_limits_expires_at'), table_name='rate_limits')
    op.drop_table('rate_limits')
