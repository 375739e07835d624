"""Servers the benchmarks measure: a bare aiohttp handler, and Warden itself.

``python -m bench.servers bare --port P`` answers 200 after reading the JSON body, the
least any webhook receiver can do; ``warden`` serves Warden from the environment's settings.
"""

from __future__ import annotations

import argparse
import logging

from aiohttp import web


async def _bare(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"ok": True}, status=202)


def main() -> None:
    """Serve the named server until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["bare", "warden"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.kind == "bare":
        app = web.Application()
        app.router.add_post("/api/webhooks/sentinel", _bare)
    else:
        from app import create_app
        from core.settings import load_settings

        app = create_app(load_settings(port=args.port))
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
