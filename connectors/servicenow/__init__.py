"""ServiceNow: incidents linked to change requests, outcomes written back, changes read."""

__version__ = "1.0.0"
