"""The admin platform. This package's __init__ stays empty so services and the CLI import without Reflex."""
