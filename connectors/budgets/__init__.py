"""Azure budget notifications sent through an action group's webhook (mapping only)."""
