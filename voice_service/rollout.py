"""Which calls get what, by a stable bucket of the CallSid (0-99): a call never flips between its webhooks and
every replica decides the same. The same bucket serves both rollouts, so the calls in a small consultation
rollout are always among those on the voice agent.
"""

from __future__ import annotations

import hashlib

from app.services.calls.call_records import CallContext
from app.settings import get_settings


def bucket(call_sid: str) -> int:
    return int.from_bytes(hashlib.sha256(call_sid.encode()).digest()[:4], "big") % 100


def choose_pipeline(call_sid: str) -> str:
    """USE_VOICE_AGENT, then VOICE_AGENT_ROLLOUT_PERCENTAGE. Without Deepgram (no key, no agent URL of our own)
    every call takes the classic pipeline rather than failing."""
    settings = get_settings()
    if not (settings.use_voice_agent and settings.voice_agent_configured):
        return "classic"
    return "voice_agent" if bucket(call_sid) < settings.voice_agent_rollout_percentage else "classic"


def consults(context: CallContext) -> bool:
    """The call may consult the specialist team: the organisation's switch, USE_VOICE_CONSULT, and the call's
    bucket under VOICE_CONSULT_ROLLOUT_PERCENTAGE. Otherwise the agent has no consult function and nothing is
    detected or offered."""
    settings = get_settings()
    return (
        context.consult_enabled
        and settings.use_voice_consult
        and bucket(context.call_sid) < settings.voice_consult_rollout_percentage
    )
