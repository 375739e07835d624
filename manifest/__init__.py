"""The Teams app package: its manifest template, icons and the builder (``manifest.build``)."""

from pathlib import Path

DEFAULT_OUT = Path("manifest/build/warden.zip")
"""Where ``python app.py manifest build`` writes the package unless told otherwise."""
