"""The agent's set-up for one call: the Voice Agent v1 Settings message (audio formats, models, the prompt built
from the organisation's instructions, its greeting, the client-side functions it may call, billing tags), and
the bridge's timings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.services.calls.call_records import CallContext

PROMPT_RULES = (
    "\n\nYou are speaking on the phone: keep answers short and natural, with no lists or formatting. "
    "When the caller says goodbye or has nothing more, say a brief goodbye and call end_call."
)
TRANSFER_RULE = " If the caller asks for a person, or you cannot help, call transfer_to_human."
CONSULT_RULE = (
    " For questions that need expert knowledge, first offer to check with the specialist team (about 30 "
    "seconds on hold). Only if the caller agrees, call consult_specialists with their question."
)


@dataclass(frozen=True)
class BridgeTimings:
    settings_timeout: float = 5.0  # Welcome -> SettingsApplied
    silence_seconds: float = 12.0  # quiet on both sides before the monitor speaks
    silence_prompts: int = 2  # "are you still there?" prompts before ending
    stall_seconds: float = 8.0  # caller finished a turn, the agent has not reacted
    caller_idle_seconds: float = 15.0  # Twilio sends a frame every 20 ms; nothing at all means it is gone
    goodbye_seconds: float = 10.0  # at most this long from end_call to hang-up
    goodbye_grace: float = 3.0  # end_call with no goodbye spoken after it: hang up after this
    consult_timeout: float = 30.0  # the consultation's budget (settings.voice_consult_budget_seconds)
    reassure_seconds: float = 10.0  # on a long hold, a short "still checking" this often
    keepalive_interval: float = 8.0
    tick: float = 0.25  # watchdog resolution
    activity_seconds: float = 30.0  # while media flows, record the call as alive this often


@dataclass
class AgentConfig:
    prompt: str
    greeting: str
    tags: list[str] = field(default_factory=list)
    functions: list[dict[str, Any]] = field(default_factory=list)
    listen_model: str = "nova-3"
    think_provider: str = "open_ai"
    think_model: str = "gpt-4o-mini"
    speak_model: str = "aura-2-thalia-en"

    def think(self, prompt: str | None = None) -> dict[str, Any]:
        """The think configuration, with `prompt` instead of the call's base prompt (UpdateThink replaces the
        whole configuration, so it carries the provider and functions again)."""
        think: dict[str, Any] = {
            "provider": {"type": self.think_provider, "model": self.think_model},
            "prompt": self.prompt if prompt is None else prompt,
        }
        if self.functions:
            think["functions"] = self.functions
        return think

    def settings_message(self) -> dict[str, Any]:
        """Settings: mulaw 8 kHz both ways, so Twilio audio passes through untouched."""
        return {
            "type": "Settings",
            "tags": self.tags,
            "audio": {
                "input": {"encoding": "mulaw", "sample_rate": 8000},
                "output": {"encoding": "mulaw", "sample_rate": 8000, "container": "none"},
            },
            "agent": {
                "listen": {"provider": {"type": "deepgram", "model": self.listen_model}},
                "think": self.think(),
                "speak": {"provider": {"type": "deepgram", "model": self.speak_model}},
                "greeting": self.greeting,
            },
        }


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }


def agent_config(context: CallContext) -> AgentConfig:
    """The Settings of one call: the organisation's prompt and greeting, its functions and billing tags."""
    reason = {"reason": {"type": "string", "description": "Why, in a few words."}}
    functions = [_function("end_call", "End the phone call after you have said goodbye.", reason, [])]
    prompt = context.prompt.strip() + PROMPT_RULES
    if context.transfer_number:
        functions.append(_function("transfer_to_human", "Transfer the caller to a staff member.", reason, []))
        prompt += TRANSFER_RULE
    if context.consult_enabled:
        functions.append(
            _function(
                "consult_specialists",
                "Ask the organisation's specialist team a question. Only after the caller agreed to hold.",
                {"question": {"type": "string", "description": "The caller's question, complete and self-contained."}},
                ["question"],
            )
        )
        prompt += CONSULT_RULE
    if context.contact_name:
        prompt += f" The caller's number belongs to {context.contact_name}; confirm before relying on it."
    return AgentConfig(
        prompt=prompt,
        greeting=context.greeting,
        tags=[f"tenant-{context.tenant_id}", f"call-{context.call_sid}"],
        functions=functions,
    )
