"""Durable jobs: a PostgreSQL queue, handlers, a scheduler, and a runner (in the app backend or alone)."""
