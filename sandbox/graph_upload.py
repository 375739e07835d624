"""Upload sessions of the Graph sandbox (supplement ``uploadSession_PutBytes``).

``createUploadSession`` answers 200 ``{"uploadUrl", "expirationDateTime",
"nextExpectedRanges": ["0-"]}``. The ``uploadUrl`` (``/_upload/{token}``) is
pre-authenticated and refuses an Authorization header. Each ``PUT`` carries
``Content-Range: bytes a-b/total`` and exactly ``b-a+1`` bytes; fragments come in order,
are a multiple of 320 KiB (327,680 bytes) except the last, and at most 60 MiB. A
fragment that does not start at the next expected byte (a gap or an overlap), ends past
the total, or changes the total gets 416 ``invalidRange``; a malformed range, a wrong
length or a bad fragment size gets 400 ``invalidRequest``. Intermediate fragments get
202 with the session; the last one 201 (new file) or 200 (replaced) with the driveItem.
``GET`` tells the session's state, ``DELETE`` cancels it (204). Bytes go to a temporary
file on disk as they arrive.
"""

from __future__ import annotations

import datetime
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from sandbox.arm_http import request_json
from sandbox.arm_records import GraphError
from sandbox.graph_store import Site, SpList, invalid, not_found
from sandbox.graph_tree import (
    drive_item,
    ensure_folders,
    render_drive_item,
    store_file,
    target_file,
)

if TYPE_CHECKING:
    from sandbox.graph import GraphSandbox
    from sandbox.graph_files import DriveItem

FRAGMENT_UNIT = 320 * 1024
"""Fragments other than the last must be a multiple of this many bytes."""

MAX_FRAGMENT = 60 * 1024 * 1024
"""The largest fragment one PUT may carry."""

SESSION_LIFETIME = datetime.timedelta(hours=1)
"""How long a session stays valid after its last successful fragment (sandbox choice)."""

_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


async def receive_body(request: web.Request, path: Path, offset: int, limit: int) -> int:
    """Append the request body to ``path`` (which must be ``offset`` bytes long); 413/400."""
    received = 0
    with path.open("r+b" if offset else "wb") as sink:
        sink.seek(offset)
        async for chunk in request.content.iter_chunked(1024 * 1024):
            received += len(chunk)
            if received > limit:
                sink.truncate(offset)
                raise GraphError(413, "requestTooLarge", "The request body is too large.")
            sink.write(chunk)
    return received


@dataclass
class Session:
    """One upload in progress: where the file goes and how much has arrived."""

    token: str
    site: Site
    library: SpList
    parent: DriveItem
    name: str
    existing: DriveItem | None
    temporary: Path
    expires: datetime.datetime
    total: int | None = None
    received: int = 0

    def render(self, url: str) -> dict[str, object]:
        """Return the uploadSession JSON."""
        return {
            "uploadUrl": url,
            "expirationDateTime": self.expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "nextExpectedRanges": [f"{self.received}-"],
        }


def _parse_range(header: str | None) -> tuple[int, int, int]:
    """Return (start, end, total) of a Content-Range; 400 if it is absent or malformed."""
    found = _RANGE.match((header or "").strip())
    if found is None:
        raise invalid("The Content-Range header is missing or malformed.")
    start, end, total = (int(part) for part in found.groups())
    if end < start:
        raise invalid("The Content-Range header is missing or malformed.")
    return start, end, total


class UploadSessions:
    """The upload sessions of one sandbox and their handlers."""

    def __init__(self, sandbox: GraphSandbox) -> None:
        """Start with no session."""
        self.sandbox = sandbox
        self.sessions: dict[str, Session] = {}

    def _url(self, token: str) -> str:
        """Return the uploadUrl of a session."""
        return f"{self.sandbox.url}/_upload/{token}"

    async def create(
        self,
        request: web.Request,
        site: Site,
        library: SpList,
        base: str,
        path: str,
        found: DriveItem | None,
    ) -> web.Response:
        """POST createUploadSession (by path, by parent and name, or on an existing file)."""
        if request.method != "POST":
            raise GraphError(405, "invalidRequest", "createUploadSession is a POST action.")
        files = self.sandbox.files
        if files is None:
            raise RuntimeError("the Graph sandbox has no file store")
        body = request_json(request)
        item = body.get("item", {}) if isinstance(body, dict) else {}
        behaviour = str(item.get("@microsoft.graph.conflictBehavior", "replace"))
        if found is not None and path == "":
            if found.folder:
                raise invalid("An upload session needs a file, not a folder.")
            existing: DriveItem | None = found
            parent, name = drive_item(library, found.parent_id or ""), found.name
        else:
            folder, _, name = path.rstrip("/").rpartition("/")
            parent = ensure_folders(self.sandbox.sharepoint, library, base, folder)
            existing, name = target_file(library, parent, name, behaviour)
        if_match = request.headers.get("If-Match")
        if (
            existing is not None
            and if_match
            and if_match not in ("*", existing.etag, existing.ctag)
        ):
            raise GraphError(412, "resourceModified", "ETag does not match current item's value")
        token = secrets.token_urlsafe(32)
        expires = self.sandbox.arm.now() + SESSION_LIFETIME
        session = Session(
            token, site, library, parent, name, existing, files.upload_path(token), expires
        )
        session.temporary.touch()
        self.sessions[token] = session
        return web.json_response(session.render(self._url(token)))

    def _session(self, request: web.Request) -> Session:
        """Return the addressed live session; 404 ``itemNotFound`` otherwise."""
        session = self.sessions.get(request.match_info["token"])
        if session is None or session.expires <= self.sandbox.arm.now():
            raise not_found("upload session")
        return session

    async def put(self, request: web.Request) -> web.Response:
        """PUT one fragment: 202 with the session, or 201/200 with the driveItem at the end."""
        session = self._session(request)
        start, end, total = _parse_range(request.headers.get("Content-Range"))
        length = end - start + 1
        if request.content_length != length:
            raise invalid("The Content-Length does not match the Content-Range.")
        if session.total is not None and total != session.total:
            raise GraphError(416, "invalidRange", "The total size of the file changed.")
        if start != session.received or end >= total:
            message = (
                f"The uploaded fragment does not start at the expected byte {session.received}."
            )
            raise GraphError(416, "invalidRange", message)
        if length > MAX_FRAGMENT or (end + 1 < total and length % FRAGMENT_UNIT):
            raise invalid("Fragments must be a multiple of 320 KiB and at most 60 MiB.")
        await receive_body(request, session.temporary, start, length)
        session.total, session.received = total, end + 1
        session.expires = self.sandbox.arm.now() + SESSION_LIFETIME
        if session.received < total:
            return web.json_response(session.render(self._url(session.token)), status=202)
        del self.sessions[session.token]
        files = self.sandbox.files
        if files is None:
            raise RuntimeError("the Graph sandbox has no file store")
        item, created = store_file(
            self.sandbox.sharepoint,
            files,
            session.library,
            session.parent,
            session.name,
            session.existing,
            session.temporary,
        )
        rendered = render_drive_item(session.site, session.library, item)
        return web.json_response(rendered, status=201 if created else 200)

    async def get(self, request: web.Request) -> web.Response:
        """GET the session's state (which ranges are still expected)."""
        session = self._session(request)
        return web.json_response(session.render(self._url(session.token)))

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE: cancel the session and discard its bytes."""
        session = self._session(request)
        del self.sessions[session.token]
        session.temporary.unlink(missing_ok=True)
        return web.Response(status=204)

    def add_routes(self, app: web.Application) -> None:
        """Register the uploadUrl routes."""
        app.router.add_put("/_upload/{token}", self.put, name="uploadSession_PutBytes")
        app.router.add_get("/_upload/{token}", self.get, name="uploadSession_GetStatus")
        app.router.add_delete("/_upload/{token}", self.delete, name="uploadSession_Cancel")
