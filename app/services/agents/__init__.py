"""Specialist agents: the catalogue, the MODERATOR router, parallel collaboration, voice adaptation, chat history.

No Reflex here: the chat page, the REST API and voice_service all call `consult` / `run_turn`.
"""

from app.services.agents.consult import ConsultResult, consult, run_turn

__all__ = ["ConsultResult", "consult", "run_turn"]
