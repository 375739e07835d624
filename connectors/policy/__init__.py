"""Azure Policy: non-compliance opens evidence requests; decisions become attestations."""

__version__ = "1.0.0"
