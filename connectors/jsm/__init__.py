"""Jira Service Management: incidents linked to requests, outcomes written back, changes read."""

__version__ = "0.1.0"
