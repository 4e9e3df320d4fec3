"""The TwiML the sidecar answers with, built with the twilio SDK's VoiceResponse."""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, Gather, VoiceResponse

STREAM_FALLBACK = (
    "I'm sorry, our assistant is having trouble right now. Please call back in a few minutes. Goodbye."
)
UNKNOWN_NUMBER = (
    "Sorry, the number you called is not connected to an assistant on this service. Please check the number "
    "and try again. Goodbye."
)
NO_SPEECH = "I didn't catch anything. Please call back any time. Goodbye."


def stream(stream_url: str, token: str, fallback: str = STREAM_FALLBACK) -> str:
    """`<Connect><Stream>` with the per-call token. Twilio runs the verbs after `<Connect>` only when the
    stream ends without our hanging up first: that is the spoken fallback for an abnormal end."""
    response = VoiceResponse()
    connect = Connect()
    media = connect.stream(url=stream_url)
    media.parameter(name="token", value=token)
    response.append(connect)
    response.say(fallback)
    response.hangup()
    return str(response)


def say_and_hang_up(message: str) -> str:
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)


def gather(action_url: str, prompt: str | None) -> str:
    """One turn of the classic pipeline: say `prompt`, listen with Twilio's speech recognition, and post the
    result to `action_url`. Silence falls through to a goodbye."""
    response = VoiceResponse()
    turn = Gather(input="speech", action=action_url, method="POST", speech_timeout="auto", action_on_empty_result=False)
    if prompt:
        turn.say(prompt)
    response.append(turn)
    response.say(NO_SPEECH)
    response.hangup()
    return str(response)
