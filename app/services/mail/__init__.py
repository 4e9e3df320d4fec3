"""Email: templates rendered in a sandbox, sender identity, the mailer and the local outbox."""
