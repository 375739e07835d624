"""Streamed evidence file filing: a byte stream into a SharePoint drive, hashed on the way.

``EvidenceFiler.file(source, path)`` reads ``source`` (an ``EvidenceSource``: a factory of
async byte streams, e.g. ``url_source`` over the SSRF guard, or ``iter_source``) once, in
pieces, computing SHA-256 as the bytes pass, and never holds more than one fragment:

* a file of at most ``UploadLimits.simple_limit`` bytes goes by one simple
  ``PUT /drives/{id}/items/root:/{path}:/content`` (msgraph-sdk);
* a larger one goes through an upload session: ``createUploadSession`` (msgraph-sdk), then
  ``PUT`` of fragments (a multiple of 320 KiB, ``Content-Range``) to the pre-authenticated
  ``uploadUrl`` with Warden's resilient httpx client and **no** bearer token. Each fragment
  is sent once per try (a streamed body, so the transport does not replay it blindly); a
  failed try is followed by ``GET uploadUrl`` and the upload resumes from the first
  ``nextExpectedRanges`` byte; a session that is gone (404, expired) restarts from byte 0
  with a fresh stream, at most ``UploadLimits.restarts`` times.

Refusals come before bytes go out: an executable name or content (magic bytes of the
first piece), a declared size over ``max_bytes``, a large file of unknown size. A stream
longer or shorter than it declared is refused before its last fragment, so nothing is
committed, and its session is cancelled.

``download(item_id)`` asks Graph for the content (a 302 to a pre-authenticated URL, which
Warden's httpx never follows) and fetches that one ``Location`` through the SSRF guard,
without the bearer token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_option import RequestOption
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph.generated.drives.item.items.item.create_upload_session.create_upload_session_post_request_body import (  # noqa: E501
    CreateUploadSessionPostRequestBody,
)
from msgraph.generated.models.drive_item_uploadable_properties import (
    DriveItemUploadableProperties,
)
from msgraph.graph_service_client import GraphServiceClient

from connectors.http import server_delay
from connectors.ssrf import StreamedBody
from core.errors import DeliveryError, WardenError

# Re-exported: the filer's interface (the rules themselves live in core, for the chat too).
from core.evidence_files import EXECUTABLE_MAGIC as EXECUTABLE_MAGIC
from core.evidence_files import EXECUTABLE_SUFFIXES as EXECUTABLE_SUFFIXES
from core.evidence_files import FRAGMENT_UNIT as FRAGMENT_UNIT
from core.evidence_files import MAX_FRAGMENT as MAX_FRAGMENT
from core.evidence_files import UploadLimits as UploadLimits
from core.evidence_files import is_executable as is_executable

log = logging.getLogger(__name__)

_SEND_SLICE = 1024 * 1024
_THREAD_HASH = 1024 * 1024  # pieces this large are hashed on a thread
_EXECUTABLE = "executable files are not accepted as evidence"
_NOT_AS_DECLARED = "the file is not as long as declared"
_BAD_SEGMENT = re.compile(r'["*:<>?/\\|#%\x00-\x1f]')

GuardedFetch = Callable[[str], contextlib.AbstractAsyncContextManager[StreamedBody]]
"""``url -> stream``: a fetch through the SSRF guard (``functools.partial(ssrf.stream, ...)``)."""


class EvidenceRefused(WardenError):
    """An evidence file Warden will not file; ``user_message`` says why, nothing was kept."""

    def __init__(self, reason: str, detail: str) -> None:
        """Keep the person's ``reason`` apart from the operator's ``detail``."""
        super().__init__(f"{reason} ({detail})")
        self.user_message = reason
        self.detail = detail


class EvidenceUploadFailed(WardenError):
    """Graph did not take the file after the tries allowed; the operator's text says why."""

    user_message = "Warden could not file the evidence in SharePoint; please try again later."


class _Restart(Exception):
    """The upload session is gone or cannot be resumed: start again from byte 0."""


@dataclass(frozen=True)
class EvidencePath:
    """Where a file goes in the drive: ``<requirement>/<period>/<request>/<filename>``."""

    requirement: str
    period: str
    request: str
    filename: str

    def __post_init__(self) -> None:
        """Refuse segments SharePoint refuses (or that would escape their folder)."""
        for segment in (self.requirement, self.period, self.request, self.filename):
            bad = _BAD_SEGMENT.search(segment) or segment.strip(" .") != segment
            if not segment or segment in (".", "..") or bad:
                raise EvidenceRefused("that file or folder name is not allowed", repr(segment))

    def __str__(self) -> str:
        """The path relative to the drive root."""
        return f"{self.requirement}/{self.period}/{self.request}/{self.filename}"


@dataclass(frozen=True)
class EvidenceSource:
    """Bytes to file: ``open()`` starts a fresh stream from byte 0 (called again on restart).

    ``size`` is the declared length; it is required above the simple upload limit.
    """

    open: Callable[[], AsyncIterable[bytes]]
    size: int | None = None


@dataclass(frozen=True)
class FiledEvidence:
    """A filed evidence file: its drive item, where people see it, its size and SHA-256."""

    item_id: str
    web_url: str
    size: int
    sha256: str


def iter_source(
    factory: Callable[[], AsyncIterable[bytes]], size: int | None = None
) -> EvidenceSource:
    """A source over a local stream factory (e.g. an async generator function)."""
    return EvidenceSource(factory, size)


def url_source(fetch: GuardedFetch, url: str, size: int | None = None) -> EvidenceSource:
    """A source that fetches ``url`` through the SSRF guard each time it is opened."""

    async def chunks() -> AsyncIterator[bytes]:
        """Stream the body's raw chunks (the guard enforces size and time)."""
        async with fetch(url) as body:
            async for chunk in body:
                yield chunk

    return EvidenceSource(chunks, size)


def _refuse_content(path: EvidencePath, head: bytes | bytearray) -> None:
    """Refuse an executable by its name or its first bytes."""
    if is_executable(path.filename, head):
        raise EvidenceRefused(_EXECUTABLE, "name or content")


class _Reader:
    """Reads exact-size pieces from a chunk stream, hashing and counting what it hands out."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        """Read ``chunks`` from the start."""
        self._chunks = aiter(chunks)
        self._rest = b""
        self.sha256 = hashlib.sha256()
        self.count = 0

    async def read(self, size: int) -> bytearray:
        """Up to ``size`` bytes (fewer only at the end of the stream), in one buffer."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        filled = 0
        while filled < size:
            if not self._rest:
                chunk = await anext(self._chunks, None)
                if chunk is None:
                    break
                self._rest = chunk
            taken = min(size - filled, len(self._rest))
            view[filled : filled + taken] = self._rest[:taken]
            self._rest = self._rest[taken:]
            filled += taken
        view.release()
        del buffer[filled:]
        if filled >= _THREAD_HASH:  # hashlib lets the GIL go: the loop goes on meanwhile
            await asyncio.to_thread(self.sha256.update, buffer)
        else:
            self.sha256.update(buffer)
        self.count += filled
        return buffer

    async def at_end(self) -> bool:
        """Tell whether the stream has no byte left (reads ahead at most one chunk)."""
        while not self._rest:
            chunk = await anext(self._chunks, None)
            if chunk is None:
                return True
            self._rest = chunk
        return False


class EvidenceFiler:
    """Files evidence in one drive: msgraph-sdk for Graph, plain httpx for byte ranges."""

    def __init__(
        self,
        graph: GraphServiceClient,
        http: httpx.AsyncClient,
        drive_id: str,
        *,
        fetch: GuardedFetch,
        limits: UploadLimits | None = None,
    ) -> None:
        """``http`` sends to upload URLs and must carry no Authorization header itself;
        ``fetch`` follows download redirects through the SSRF guard."""
        if "authorization" in http.headers:
            raise ValueError("the upload client must not carry a bearer token")
        self.graph = graph
        self.fetch = fetch
        self._http = http
        self._drive_id = drive_id
        self.limits = limits or UploadLimits()

    @property
    def _items(self) -> Any:
        """The SDK's ``drives/{id}/items`` request builder."""
        return self.graph.drives.by_drive_id(self._drive_id).items

    async def file(self, source: EvidenceSource, path: EvidencePath) -> FiledEvidence:
        """Stream ``source`` to ``path`` (replacing a file there) and describe what was filed.

        Raises ``EvidenceRefused`` before uploading what must not be kept,
        ``EvidenceUploadFailed`` when Graph refuses or the tries run out, and
        ``DeliveryError`` when Graph's API does not answer (the resilient client gave up).
        """
        self._refuse_declared(source, path)
        for restart in range(self.limits.restarts + 1):
            try:
                return await self._file_once(source, path)
            except _Restart as exc:
                log.info("evidence upload restarts (%d): %s", restart + 1, exc)
        raise EvidenceUploadFailed(f"upload session of {path.filename} lost too many times")

    def _refuse_declared(self, source: EvidenceSource, path: EvidencePath) -> None:
        """Refuse by name and declared size, before reading anything."""
        if is_executable(path.filename):
            raise EvidenceRefused(_EXECUTABLE, "name")
        if source.size is not None and source.size > self.limits.max_bytes:
            detail = f"declared {source.size} > {self.limits.max_bytes} bytes"
            raise EvidenceRefused("that file is larger than Warden accepts", detail)

    async def _file_once(self, source: EvidenceSource, path: EvidencePath) -> FiledEvidence:
        """One attempt from byte 0 with a fresh stream."""
        stream = source.open()
        try:
            reader = _Reader(stream)
            size, limit = source.size, self.limits.simple_limit
            if size is None or size <= limit:
                head = await reader.read(limit + 1 if size is None else size)
                _refuse_content(path, head)
                ended = await reader.at_end()
                if size is None and (len(head) > limit or not ended):
                    detail = f"over {limit} bytes without a declared size"
                    reason = "Warden needs the size of a large file before filing it"
                    raise EvidenceRefused(reason, detail)
                if size is not None and (len(head) != size or not ended):
                    raise EvidenceRefused(_NOT_AS_DECLARED, f"declared {size}")
                return await self._put_small(path, head, reader)
            return await self._put_session(path, size, reader)
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    async def _put_small(
        self, path: EvidencePath, data: bytes | bytearray, reader: _Reader
    ) -> FiledEvidence:
        """Simple upload: one PUT of the whole (small) content through msgraph-sdk."""
        try:
            item = await self._items.by_drive_item_id(f"root:/{path}:").content.put(bytes(data))
        except APIError as exc:
            raise EvidenceUploadFailed(
                f"simple upload: Graph answered {exc.response_status_code}"
            ) from exc
        if item is None or not item.id or item.size != len(data):
            raise EvidenceUploadFailed("simple upload: Graph returned no matching driveItem")
        return FiledEvidence(item.id, item.web_url or "", len(data), reader.sha256.hexdigest())

    async def _create_session(self, path: EvidencePath) -> str:
        """``createUploadSession`` through msgraph-sdk; the https ``uploadUrl``."""
        body = CreateUploadSessionPostRequestBody(
            item=DriveItemUploadableProperties(
                additional_data={"@microsoft.graph.conflictBehavior": "replace"}
            )
        )
        builder = self._items.by_drive_item_id(f"root:/{path}:").create_upload_session
        try:
            session = await builder.post(body)
        except APIError as exc:
            status = exc.response_status_code
            raise EvidenceUploadFailed(f"createUploadSession: Graph answered {status}") from exc
        url = session.upload_url if session is not None else None
        if not url or httpx.URL(url).scheme != "https":
            raise EvidenceUploadFailed("createUploadSession returned no https uploadUrl")
        return str(url)

    async def _put_session(self, path: EvidencePath, size: int, reader: _Reader) -> FiledEvidence:
        """Upload session: fragments in order, each resumed from ``nextExpectedRanges``.

        The first fragment is read and checked before the session is created.
        """
        fragment, offset = await reader.read(min(self.limits.fragment, size)), 0
        _refuse_content(path, fragment)
        if len(fragment) < min(self.limits.fragment, size):
            raise EvidenceRefused(_NOT_AS_DECLARED, f"declared {size}")
        url = await self._create_session(path)
        try:
            while True:
                end = offset + len(fragment)
                if end == size and not await reader.at_end():
                    raise EvidenceRefused(_NOT_AS_DECLARED, f"over {size}")
                if end == size:
                    answer = await self._send_fragment(url, fragment, offset, size)
                    return self._filed(answer, size, reader)
                # the next fragment is read and hashed while this one travels
                ahead = asyncio.create_task(reader.read(min(self.limits.fragment, size - end)))
                try:
                    await self._send_fragment(url, fragment, offset, size)
                except BaseException:
                    ahead.cancel()
                    raise
                offset, fragment = end, await ahead
                if offset + len(fragment) < size and len(fragment) < self.limits.fragment:
                    raise EvidenceRefused(_NOT_AS_DECLARED, f"{offset} read")
        except (EvidenceRefused, _Restart):
            await self._cancel(url)
            raise

    def _filed(self, answer: dict[str, Any], size: int, reader: _Reader) -> FiledEvidence:
        """The result of the last fragment's driveItem answer."""
        if answer.get("size") != size or not answer.get("id"):
            raise EvidenceUploadFailed("the upload session ended without the whole file")
        return FiledEvidence(
            str(answer["id"]), str(answer.get("webUrl", "")), size, reader.sha256.hexdigest()
        )

    async def _send_fragment(
        self, url: str, data: bytearray, start: int, total: int
    ) -> dict[str, Any]:
        """Send ``data`` at ``start``; on failure resume from what the session expects."""
        position, end = start, start + len(data)
        for attempt in range(1, self.limits.fragment_tries + 1):
            wait = self.limits.retry_wait * 2 ** (attempt - 1)
            try:
                response = await self._put_range(
                    url, memoryview(data)[position - start :], position, total
                )
            except DeliveryError as exc:
                log.info("upload fragment at %d got no answer: %s", position, exc.outcome)
            else:
                if response.status_code in (200, 201, 202):
                    return cast(dict[str, Any], response.json())
                if response.status_code == 404:
                    raise _Restart("the upload session is gone")
                if response.status_code < 500 and response.status_code not in (408, 416, 429):
                    raise EvidenceUploadFailed(f"upload fragment refused: {response.status_code}")
                wait = server_delay(response.headers) or wait
                log.info("upload fragment at %d answered %d", position, response.status_code)
            await asyncio.sleep(min(wait, self.limits.max_wait))
            position = await self._next_expected(url)
            if not start <= position <= end:
                raise _Restart(f"the session expects byte {position}, outside the fragment")
            if position == end:
                return {"nextExpectedRanges": [f"{end}-"]}
        raise EvidenceUploadFailed(f"upload fragment at {start} failed {attempt} times")

    async def _put_range(
        self, url: str, data: memoryview, start: int, total: int
    ) -> httpx.Response:
        """One PUT of a byte range, without a token; a streamed body is never replayed."""

        async def body() -> AsyncIterator[bytes]:
            """The fragment in small slices: a stream is sent once, and TLS buffers little."""
            for offset in range(0, len(data), _SEND_SLICE):
                yield bytes(data[offset : offset + _SEND_SLICE])

        headers = {
            "Content-Range": f"bytes {start}-{start + len(data) - 1}/{total}",
            "Content-Length": str(len(data)),
        }
        return await self._http.put(url, content=body(), headers=headers)

    async def _next_expected(self, url: str) -> int:
        """The first byte the session still expects (``GET uploadUrl``); restart if gone."""
        try:
            response = await self._http.get(url)
        except DeliveryError as exc:
            raise _Restart(f"the upload session did not answer: {exc.outcome}") from exc
        if response.status_code != 200:
            raise _Restart(f"the upload session answered {response.status_code}")
        ranges = response.json().get("nextExpectedRanges") or []
        first = str(ranges[0]) if ranges else ""
        found = re.match(r"^(\d+)-", first)
        if found is None:
            raise _Restart("the upload session expects no range")
        return int(found.group(1))

    async def _cancel(self, url: str) -> None:
        """Cancel an upload session (best effort)."""
        with contextlib.suppress(DeliveryError, httpx.HTTPError):
            await self._http.delete(url)

    @contextlib.asynccontextmanager
    async def download(self, item_id: str) -> AsyncIterator[StreamedBody]:
        """Stream a file's bytes: Graph's 302, then its ``Location`` through the SSRF guard
        without the bearer token."""
        location = await self._content_location(item_id)
        async with self.fetch(location) as body:
            yield body

    async def _content_location(self, item_id: str) -> str:
        """``GET .../items/{id}/content`` through msgraph-sdk; the redirect's Location."""
        options: list[RequestOption] = [ResponseHandlerOption(NativeResponseHandler())]
        config: RequestConfiguration[Any] = RequestConfiguration(options=options)
        answer = await self._items.by_drive_item_id(item_id).content.get(
            request_configuration=config
        )
        response = cast(httpx.Response, answer)
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303, 307) or not location:
            raise EvidenceUploadFailed(
                f"content of {item_id}: Graph answered {response.status_code}"
            )
        return str(response.url.join(location))


async def sha256_of(body: AsyncIterable[bytes]) -> tuple[int, str]:
    """The length and SHA-256 (hex) of a byte stream, read piece by piece."""
    digest, size = hashlib.sha256(), 0
    async for chunk in body:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()
