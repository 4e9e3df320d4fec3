"""jobs: a fair claim order between organisations

Revision ID: 3c1d9b7e2a40
Revises: 5c1e8a93d2b7
Create Date: 2026-12-02 00:00:00

`fair_at` places each job in a per-priority round robin between organisations (app/services/job_queue.py); the
claim index follows the claim's order (priority, fair_at, id), and `ix_jobs_lane` finds where an
organisation's line ends when it queues a job. Existing jobs keep their order: fair_at starts as run_after.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '3c1d9b7e2a40'
down_revision: Union[str, Sequence[str], None] = '5c1e8a93d2b7'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_CLAIMABLE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    op.add_column('jobs', sa.Column('fair_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                                    nullable=False))
    op.execute("UPDATE jobs SET fair_at = run_after")
    op.drop_index('ix_jobs_claimable', table_name='jobs', postgresql_where=_CLAIMABLE)
    op.create_index('ix_jobs_claimable', 'jobs', ['priority', 'fair_at', 'id'], postgresql_where=_CLAIMABLE)
    op.create_index('ix_jobs_lane', 'jobs', ['tenant_id', 'priority', 'fair_at'], postgresql_where=_CLAIMABLE)


def downgrade() -> None:
    op.drop_index('ix_jobs_lane', table_name='jobs', postgresql_where=_CLAIMABLE)
    op.drop_index('ix_jobs_claimable', table_name='jobs', postgresql_where=_CLAIMABLE)
    op.create_index('ix_jobs_claimable', 'jobs', ['priority', 'run_after'], postgresql_where=_CLAIMABLE)
    op.drop_column('jobs', 'fair_at')
