"""HTTP routes mounted into the Reflex backend: REST /api/v1 (later: tracking /t, unsubscribe /u, webhooks)."""
