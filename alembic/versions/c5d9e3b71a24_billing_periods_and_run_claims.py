"""billing periods and run claims: one monthly run per period, and what each organisation's row needs to resume

Revision ID: c5d9e3b71a24
Revises: a8c4e2f19d37
Create Date: 2026-12-04 18:00:00.000000

`billing_periods` holds one row per monthly run (status, counts, started/finished, error), however many runners
work on it. `billing_runs` gains why an organisation was skipped (demo, no Stripe customer, nothing used), the
call seconds its invoice shows as minutes (stored so a resumed run sends Stripe the very same lines), how many
times a runner took it (a second take looks for an invoice the first may have created), and an index for the
runners' look-ups by period.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'c5d9e3b71a24'
down_revision: Union[str, Sequence[str], None] = 'a8c4e2f19d37'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'billing_periods',
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('organisations', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('invoiced', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('skipped', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('failed', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('invoiced_cents', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('runs', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('running', 'done', 'failed')", name='ck_billing_periods_status'),
        sa.PrimaryKeyConstraint('period'),
    )
    op.add_column('billing_runs', sa.Column('skip_reason', sa.String(length=20), nullable=True))
    op.add_column(
        'billing_runs', sa.Column('call_seconds', sa.BigInteger(), server_default=sa.text('0'), nullable=False)
    )
    op.add_column('billing_runs', sa.Column('attempts', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
    op.create_check_constraint(
        'ck_billing_runs_skip_reason',
        'billing_runs',
        "skip_reason IS NULL OR skip_reason IN ('demo', 'no_customer', 'no_usage')",
    )
    op.create_index('ix_billing_runs_period_status', 'billing_runs', ['period', 'status'])


def downgrade() -> None:
    op.drop_index('ix_billing_runs_period_status', table_name='billing_runs')
    op.drop_constraint('ck_billing_runs_skip_reason', 'billing_runs', type_='check')
    op.drop_column('billing_runs', 'attempts')
    op.drop_column('billing_runs', 'call_seconds')
    op.drop_column('billing_runs', 'skip_reason')
    op.drop_table('billing_periods')
