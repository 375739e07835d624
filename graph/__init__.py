"""Microsoft Graph: SharePoint filing and audit log, responder groups, managers."""

__version__ = "1.0.0"

DEFENDER_VERSION = "0.1.0"
"""The Defender XDR connector's version (``graph.security``), readable without loading the
Graph SDK: the connector registry shows it whether or not Defender is wired (ADR 9)."""
