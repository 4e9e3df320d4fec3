"""The process edge: what every HTTP request meets before any route sees it (body limits, proxy headers).

Plain ASGI and the standard library only, no FastAPI and no Reflex, so the app's API and voice_service share it.
"""
