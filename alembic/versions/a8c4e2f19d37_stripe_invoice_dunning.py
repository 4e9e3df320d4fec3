"""stripe invoice dunning: failed collection attempts and when the latest failed

Revision ID: a8c4e2f19d37
Revises: f3a9c2d71e58
Create Date: 2026-12-04 17:40:00.000000

An open invoice whose automatic collection failed is what puts an organisation in the "payment problem" state
(the banner on every admin page, the mail to its admins). The mirror kept only the invoice's status, which is
`open` both for an invoice not yet charged and for one whose charge failed; Stripe's `attempt_count` tells them
apart, and `payment_failed_at` dates the banner.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'a8c4e2f19d37'
down_revision: Union[str, Sequence[str], None] = 'f3a9c2d71e58'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column(
        'stripe_invoices', sa.Column('attempt_count', sa.BigInteger(), server_default=sa.text('0'), nullable=False)
    )
    op.add_column('stripe_invoices', sa.Column('payment_failed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('stripe_invoices', 'payment_failed_at')
    op.drop_column('stripe_invoices', 'attempt_count')
