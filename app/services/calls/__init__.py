"""Phone calls: call records and usage, summaries, voice settings, the platform's numbers."""
