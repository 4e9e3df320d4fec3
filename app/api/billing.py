"""REST API for billing: an organisation's month to date (its admins) and the demo flag (platform super admins).

The same services as the Billing and Platform admin pages do the work (app/services/billing/usage.py,
app/services/accounts/tenants.py), so the roles, tenant scope and pricing are identical.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.api.bodies import json_body
from app.api.deps import ScopeDep
from app.api.errors import AUTHENTICATED, NOT_FOUND
from app.services.accounts import tenants
from app.services.billing import usage

router = APIRouter(prefix="/api/v1/billing", tags=["billing"], responses=AUTHENTICATED)


class UsageOut(BaseModel):
    stt_words: int = Field(description="words callers said (heard by the agent)")
    tts_words: int = Field(description="words the agent spoke")
    voice_words: int = Field(description="stt_words + tts_words: the billed quantity")
    calls: int
    call_seconds: int
    call_minutes: int = Field(description="shown, not billed: call seconds rounded up to the minute")


class ChargesOut(BaseModel):
    voice_cents: int = Field(description="$1.00 per 1,000 voice words, rounded half up to the cent on the total")
    call_cents: int = Field(description="$1.00 per call")
    usage_cents: int = Field(description="voice_cents + call_cents")
    subscription_cents: int = Field(description="the plan: $299.00 a month")
    total_cents: int = Field(description="usage_cents + subscription_cents")


class BillingSummaryOut(BaseModel):
    period: str = Field(description="the current month, YYYY-MM (UTC)")
    period_label: str = Field(description='e.g. "December 2026"')
    as_of: datetime = Field(description="usage up to this moment (UTC)")
    usage: UsageOut
    charges: ChargesOut
    estimated_charge_cents: int = Field(description="what the month is invoiced so far; 0 for a demo organisation")
    is_demo: bool = Field(description="demo organisations are never invoiced")
    stripe_configured: bool = Field(description="false: usage is recorded and estimated, but no invoices are sent")


class DemoStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_demo: bool = Field(description="true exempts the organisation from billing")


class DemoStatusOut(BaseModel):
    tenant_id: str
    is_demo: bool


@router.get("/summary", response_model=BillingSummaryOut)
def billing_summary(scope: ScopeDep):
    """The organisation's usage this month (UTC) to date and the estimated charge. Organisation admins."""
    found = usage.summary(scope)
    month = found.usage
    return json_body(
        BillingSummaryOut(
            period=found.period,
            period_label=found.period_label,
            as_of=found.as_of,
            usage=UsageOut(
                stt_words=month.stt_words,
                tts_words=month.tts_words,
                voice_words=month.voice_words,
                calls=month.calls,
                call_seconds=month.call_seconds,
                call_minutes=month.call_minutes,
            ),
            charges=ChargesOut(
                voice_cents=month.voice_cents,
                call_cents=month.call_cents,
                usage_cents=month.usage_cents,
                subscription_cents=month.subscription_cents,
                total_cents=month.total_cents,
            ),
            estimated_charge_cents=found.estimated_cents,
            is_demo=found.is_demo,
            stripe_configured=found.stripe_configured,
        )
    )


@router.post("/set-demo-status/{tenant_id}", response_model=DemoStatusOut, responses=NOT_FOUND)
def set_demo_status(tenant_id: str, body: DemoStatusIn, scope: ScopeDep):
    """Flag an organisation as a demo (exempt from billing) or not. Platform super admins only."""
    tenants.set_demo_status(scope, tenant_id, body.is_demo)
    return json_body(DemoStatusOut(tenant_id=str(uuid.UUID(tenant_id)), is_demo=body.is_demo))
