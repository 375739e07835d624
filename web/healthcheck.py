"""The container's health probe: ``python -m web.healthcheck`` exits 0 when Warden answers.

It asks ``GET /healthz`` on the loopback address at ``WARDEN_PORT`` (3978 by default) and
exits 0 on a 200 whose body says ``{"status": "ok"}``, 1 on anything else (refused, timed
out, another status or body). It uses the standard library only and reads no other setting:
a probe must not load the settings (that may call Key Vault) nor need curl in the image.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = 3978
TIMEOUT_SECONDS = 3.0


def healthz_url(environ: dict[str, str] | None = None) -> str:
    """The liveness URL of the Warden in this container (``WARDEN_PORT`` on 127.0.0.1)."""
    env = os.environ if environ is None else environ
    port = env.get("WARDEN_PORT", "").strip() or str(DEFAULT_PORT)
    return f"http://127.0.0.1:{int(port)}/healthz"


def healthy(url: str, timeout: float = TIMEOUT_SECONDS) -> bool:
    """True when ``url`` answers 200 with ``{"status": "ok"}`` within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - http only
            body = json.loads(answer.read(4096) or b"null")
            return answer.status == 200 and isinstance(body, dict) and body.get("status") == "ok"
    except (OSError, ValueError):
        return False


def main() -> int:
    """Probe once; 0 when healthy, 1 otherwise (Docker's HEALTHCHECK convention)."""
    try:
        url = healthz_url()
    except ValueError:
        return 1  # a WARDEN_PORT that is not a number: Warden itself would not have started
    return 0 if healthy(url) else 1


if __name__ == "__main__":
    sys.exit(main())
