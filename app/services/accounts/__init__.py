"""Accounts: sign-in, users, organisations, API tokens, the caller's scope, rate limits and quotas."""
