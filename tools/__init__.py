"""Developer tools that run Warden as a user would: ``python -m tools.screenshots``."""
