"""The voice sidecar: Twilio Media Streams bridged to the Deepgram Voice Agent. Imports no Reflex."""
