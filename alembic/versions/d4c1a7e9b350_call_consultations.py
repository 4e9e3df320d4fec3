"""call consultations: each offer to consult the specialist team during a call, and what became of it

Revision ID: d4c1a7e9b350
Revises: b7e4d2a9c318
Create Date: 2026-12-05 00:00:00.000000

Also: the organisation's own wording of the offer (voice_settings.consult_offer), and the usage kind
consult_tokens (the specialists' tokens on calls: shown, not billed).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision: str = 'd4c1a7e9b350'
down_revision: Union[str, Sequence[str], None] = 'b7e4d2a9c318'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CONSENTS = "('pending', 'yes', 'no', 'unclear')"
OUTCOMES = (
    "('pending', 'declined', 'answered', 'partial', 'timed_out', 'failed', 'busy', 'cancelled', "
    "'caller_stopped', 'caller_hung_up')"
)


def upgrade() -> None:
    op.create_table(
        'call_consultations',
        sa.Column('id', postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column('tenant_id', postgresql.UUID(as_uuid=True), sa.ForeignKey('tenants.id', ondelete='CASCADE'), nullable=False),
        sa.Column('call_id', postgresql.UUID(as_uuid=True), sa.ForeignKey('call_sessions.id', ondelete='CASCADE'), nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False, server_default=''),
        sa.Column('topic', sa.String(length=200), nullable=False, server_default=''),
        sa.Column('source', sa.String(length=20), nullable=False, server_default='detected'),
        sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text('now()')),
        sa.Column('consent', sa.String(length=10), nullable=False, server_default='pending'),
        sa.Column('consent_source', sa.String(length=10), nullable=True),
        sa.Column('consent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.String(length=20), nullable=False, server_default='pending'),
        sa.Column('partial', sa.Boolean(), nullable=False, server_default=sa.text('false')),
        sa.Column('specialists', postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column('tokens', sa.Integer(), nullable=False, server_default=sa.text('0')),
        sa.Column('answer', sa.Text(), nullable=True),
        sa.CheckConstraint(f"consent IN {CONSENTS}", name='ck_call_consultations_consent'),
        sa.CheckConstraint(f"outcome IN {OUTCOMES}", name='ck_call_consultations_outcome'),
    )
    op.create_index('ix_call_consultations_call', 'call_consultations', ['call_id', 'offered_at'])
    op.create_index('ix_call_consultations_tenant_time', 'call_consultations', ['tenant_id', 'offered_at'])
    op.add_column('voice_settings', sa.Column('consult_offer', sa.String(length=600), nullable=True))
    op.drop_constraint('ck_usage_records_kind', 'usage_records', type_='check')
    op.create_check_constraint(
        'ck_usage_records_kind',
        'usage_records',
        "kind IN ('stt_words', 'tts_words', 'call', 'call_seconds', 'consult_tokens')",
    )


def downgrade() -> None:
    op.execute("DELETE FROM usage_records WHERE kind = 'consult_tokens'")
    op.drop_constraint('ck_usage_records_kind', 'usage_records', type_='check')
    op.create_check_constraint(
        'ck_usage_records_kind', 'usage_records', "kind IN ('stt_words', 'tts_words', 'call', 'call_seconds')"
    )
    op.drop_column('voice_settings', 'consult_offer')
    op.drop_index('ix_call_consultations_tenant_time', table_name='call_consultations')
    op.drop_index('ix_call_consultations_call', table_name='call_consultations')
    op.drop_table('call_consultations')
