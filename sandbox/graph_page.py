"""The read-only SharePoint page of the Graph sandbox (``GET /_sandbox/sharepoint``).

One HTML page, every value escaped, that shows what an auditor would browse: each site,
its document libraries (folders and files with size and version) and lists (columns,
then every item with its field values and eTag).
"""

from __future__ import annotations

from html import escape

from sandbox.graph_store import SharePointStore, SpList
from sandbox.graph_tree import children

_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left}th{background:#eee}"
)


def _table(headers: list[str], rows: list[list[object]]) -> str:
    """Return an HTML table with escaped cells."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _files(library: SpList) -> str:
    """Return the folder tree of a library as a table of paths."""
    rows: list[list[object]] = []

    def walk(parent_id: str, prefix: str) -> None:
        """Add the rows of one folder, depth first."""
        for item in children(library, parent_id):
            path = f"{prefix}/{item.name}"
            kind = "folder" if item.folder else "file"
            rows.append(
                [path, kind, item.size, item.version, item.modified, item.list_item_id or ""]
            )
            if item.folder:
                walk(item.id, path)

    walk(library.root_id, "")
    headers = ["Path", "Kind", "Size (bytes)", "Version", "Modified", "List item"]
    return _table(headers, rows) if rows else "<p>No files.</p>"


def _list(target: SpList) -> str:
    """Return a list's columns and items."""
    columns = [[c.name, c.display_name, c.kind, c.required, c.read_only] for c in target.columns]
    out = _table(["Column", "Display name", "Type", "Required", "Read-only"], columns)
    names = [c.name for c in target.columns if c.name not in ("Created", "Modified")]
    rows: list[list[object]] = [
        [item.id, item.etag, item.modified, *(item.fields.get(n, "") for n in names)]
        for item in target.items.values()
    ]
    out += _table(["ID", "eTag", "Modified", *names], rows) if rows else "<p>No items.</p>"
    return out


def sharepoint_page(store: SharePointStore) -> str:
    """Return the whole page."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><style>{_STYLE}</style>"]
    parts.append("<title>SharePoint (sandbox)</title></head><body><h1>SharePoint (sandbox)</h1>")
    if not store.sites:
        parts.append("<p>No sites.</p>")
    for site in store.sites.values():
        parts.append(f"<h2>{escape(site.display_name)} <small>{escape(site.web_url)}</small></h2>")
        parts.append(f"<p>Site id: <code>{escape(site.id)}</code></p>")
        for target in site.lists.values():
            kind = "Library" if target.drive_id else "List"
            parts.append(f"<h3>{kind}: {escape(target.display_name)}</h3>")
            if target.drive_id:
                parts.append(f"<p>Drive id: <code>{escape(target.drive_id)}</code></p>")
                parts.append(_files(target))
            parts.append(_list(target))
    parts.append("</body></html>")
    return "".join(parts)
