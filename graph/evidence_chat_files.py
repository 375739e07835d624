"""Files attached in a Teams chat, fetched from their download URL and filed as evidence.

Teams' download URL is pre-authenticated and short-lived (about an hour): it is fetched
without a token, through the SSRF guard, only from ``WARDEN_EVIDENCE_FILE_HOSTS``. The body
is streamed into ``EvidenceFiler`` (hashed on the way, never held whole); its length comes
from the answer's ``Content-Length`` (an upload session needs it up front), learnt on the
same request, so the file is downloaded once per try.

What a failure means (``classify``): the download host answering 401, 403, 404 or 410 means
the URL expired or the file is gone, so the owner is asked to attach it again; 408, 429,
5xx, a timeout or a broken connection is retried by the outbox; any other refusal (too
large, executable content, a host not allowed) is final and the owner is told why.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum

import httpx

from connectors.ssrf import SsrfError, SsrfPolicy, StreamedBody, default_client, stream
from connectors.ssrf_rules import TOO_SLOW
from graph.evidence_files import EvidenceRefused, EvidenceSource, UploadLimits

ChatFetch = Callable[..., AbstractAsyncContextManager[StreamedBody]]
"""``(url, client_factory=...) -> stream``: ``connectors.ssrf.stream`` with its policy bound."""

DOWNLOAD_TIMEOUT = 600.0
"""Seconds one download may take from the request to its last byte."""

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

EXPIRED = (
    "Warden could not fetch the file you attached in Teams: its download link expired "
    "before it was filed. Attach the file again in your chat with Warden."
)


class Outcome(StrEnum):
    """What a failed download or filing means for the submission."""

    RETRY = "retry"
    EXPIRED = "expired"
    REFUSED = "refused"


def file_hosts(setting: str) -> tuple[str, ...]:
    """``WARDEN_EVIDENCE_FILE_HOSTS`` as SSRF allowed hosts (exact names, ``*.`` wildcards)."""
    return tuple(part.strip().lower() for part in setting.split(",") if part.strip())


def chat_file_fetch(
    setting: str, graph_endpoint: str, verify: ssl.SSLContext | bool = True
) -> ChatFetch:
    """The SSRF-guarded fetch of chat file downloads: the hosts of ``setting`` over https:443,
    or, when Graph itself is local (the sandbox), those hosts on this machine, any port."""
    local = httpx.URL(graph_endpoint).host in LOCAL_HOSTS
    policy = SsrfPolicy(
        allowed_hosts=file_hosts(setting),
        allow_private=local,
        allowed_ports=None if local else (443,),
        max_bytes=UploadLimits().max_bytes,
        timeout=DOWNLOAD_TIMEOUT,
    )
    context = verify if isinstance(verify, ssl.SSLContext) else None
    return functools.partial(stream, policy=policy, ssl_context=context)


@dataclass
class _Length:
    """The ``Content-Length`` of the last 2xx answer a client received."""

    value: int | None = None
    seen: list[int] = field(default_factory=list)

    async def hear(self, response: httpx.Response) -> None:
        """Response hook: keep the declared length of a successful answer."""
        declared = response.headers.get("content-length", "")
        if 200 <= response.status_code < 300 and declared.isdigit():
            self.value = int(declared)

    def factory(self, transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
        """The guard's plain client, listening to its answers."""
        client = default_client(transport)
        client.event_hooks = {"request": [], "response": [self.hear]}
        return client


@contextlib.asynccontextmanager
async def download(fetch: ChatFetch, url: str) -> AsyncIterator[EvidenceSource]:
    """Open ``url`` and yield a source of its bytes with their declared length.

    The first ``open()`` streams this answer; a later one (an upload session restarted)
    fetches the URL again.
    """
    length = _Length()
    async with fetch(url, client_factory=length.factory) as body:
        first = [body]

        async def chunks() -> AsyncIterator[bytes]:
            """This answer's bytes the first time, a fresh fetch after."""
            if first:
                async for chunk in first.pop():
                    yield chunk
                return
            async with fetch(url) as again:
                async for chunk in again:
                    yield chunk

        yield EvidenceSource(chunks, length.value)


def classify(exc: BaseException) -> tuple[Outcome, str]:
    """What a failed download or filing means, and the owner's words for it."""
    if isinstance(exc, SsrfError):
        status = exc.status
        if status in (401, 403, 404, 410):
            return Outcome.EXPIRED, EXPIRED
        if status is not None and (status >= 500 or status in (408, 429)):
            return Outcome.RETRY, exc.reason
        if exc.reason == TOO_SLOW:
            return Outcome.RETRY, exc.reason
        return Outcome.REFUSED, _refused(exc.reason)
    if isinstance(exc, EvidenceRefused):
        return Outcome.REFUSED, _refused(exc.user_message)
    return Outcome.RETRY, str(exc)


def _refused(reason: str) -> str:
    return f"Warden did not file the file you attached: {reason}. Attach another file."
