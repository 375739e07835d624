"""Microsoft Sentinel over ARM: incidents in (webhook, poll, reconcile), triage out."""

__version__ = "1.0.0"
