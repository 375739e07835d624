"""Warden's command line, one module per area; ``app.py`` registers them."""
