"""The composition root's parts: ``app.create_app`` wires Warden from them."""
