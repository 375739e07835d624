"""The read-only page of the ServiceNow sandbox (``GET /`` and ``GET /_sandbox/servicenow``).

One HTML page, every value escaped, for a demo in a browser: the change requests and the
incidents with number, short description, state and priority (labels), assignee, when
they last changed, and their work notes (newest first).
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from sandbox.servicenow_render import Renderer

_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}"
    "th{background:#eee}td.notes{white-space:pre-wrap;font-size:.9em}"
)
_COLUMNS = ("number", "short_description", "state", "priority", "assigned_to", "sys_updated_on")


def _section(renderer: Renderer, table: str, title: str) -> str:
    """Return the heading and table of one task table."""
    head = "".join(f"<th>{escape(c)}</th>" for c in (*_COLUMNS, "work_notes"))
    rows = []
    for record in renderer.store.all(table):
        cells = "".join(f"<td>{escape(renderer.display(table, c, record))}</td>" for c in _COLUMNS)
        notes = escape(renderer.journal_text(record["sys_id"], "work_notes"))
        rows.append(f"<tr>{cells}<td class='notes'>{notes}</td></tr>")
    return f"<h2>{escape(title)}</h2><table><tr>{head}</tr>{''.join(rows)}</table>"


def render_page(renderer: Renderer) -> str:
    """Return the whole page."""
    sections = _section(renderer, "change_request", "Change requests") + _section(
        renderer, "incident", "Incidents"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ServiceNow sandbox</title>"
        f"<style>{_STYLE}</style></head><body><h1>ServiceNow sandbox</h1>{sections}</body></html>"
    )


def add_page_routes(app: web.Application, renderer: Renderer) -> None:
    """Serve the page at ``/`` and ``/_sandbox/servicenow``."""

    async def page(_: web.Request) -> web.Response:
        """Answer the HTML page."""
        return web.Response(text=render_page(renderer), content_type="text/html")

    app.router.add_get("/", page)
    app.router.add_get("/_sandbox/servicenow", page)
