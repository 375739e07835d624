"""Microsoft Graph: SharePoint filing and audit log, responder groups, managers."""

__version__ = "1.0.0"
