"""Domain logic. Never imports Reflex: every function takes a Scope and returns plain data."""
