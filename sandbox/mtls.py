"""An HTTPS server that requires a client certificate (mutual TLS), for connector tests.

It serves TLS with a sandbox CA's server certificate (``sandbox.arm_tls``: the ARM
sandbox's own, so one CA bundle trusts both) and refuses the handshake unless the client
presents a certificate that CA issued (``issue_client_cert``). Every request it accepts is
answered ``200 {"value": [], "nextLink": null}`` (an empty ARM list: a Sentinel poll
succeeds against it), and it records who connected: the common name of each accepted
client certificate, and the reason of each refused handshake.

Why not aiohttp, as the other sandboxes: asyncio's TLS closes a connection whose
handshake failed without sending the alert, so the client sees only an EOF or a reset,
as in a network fault. A real TLS server sends the alert (``certificate required``,
``unknown ca``), from which the client can tell a configuration problem from a fault.
This server does the handshake on a blocking socket, where OpenSSL writes the alert
itself, then reads what the client had already sent before closing, so that the alert is
not lost to a reset. One thread per connection, loopback only, for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sandbox.arm_tls import TlsFiles

_BODY = json.dumps({"value": [], "nextLink": None}).encode()
_MAX_HEAD = 64 * 1024
_LINGER_SECONDS = 1.0


@dataclass
class MtlsServer:
    """A running mutual-TLS server: its URL and what it saw (appended from its threads).

    ``clients``: the common name of each accepted client certificate; ``refused``: the
    reason of each refused handshake; ``requests``: each answered request line.
    """

    url: str = ""
    clients: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    answered: threading.Event = field(default_factory=threading.Event)

    async def wait_for_request(self, timeout: float = 10.0) -> str:  # noqa: ASYNC109
        """Wait (without polling) until a request was answered; return the first one."""
        if not await asyncio.to_thread(self.answered.wait, timeout):
            raise TimeoutError(f"mtls sandbox: no request answered within {timeout}s")
        return self.requests[0]


class _Server(socketserver.ThreadingTCPServer):
    """The listening socket and the TLS context every connection is served with."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, context: ssl.SSLContext, state: MtlsServer) -> None:
        """Bind a free loopback port."""
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.state = state


class _Handler(socketserver.BaseRequestHandler):
    """One connection: the handshake, then one request answered, then close."""

    server: _Server

    def handle(self) -> None:
        """Serve the connection; a refused handshake is recorded with its reason."""
        raw: socket.socket = self.request
        raw.settimeout(5.0)
        tls = self.server.context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.server.state.refused.append(str(getattr(exc, "reason", None) or exc))
            _linger(tls)
            return
        try:
            self._answer(tls)
        except OSError:
            return
        finally:
            tls.close()

    def _answer(self, tls: ssl.SSLSocket) -> None:
        """Read one request (head and declared body) and answer it."""
        self.server.state.clients.append(_common_name(tls.getpeercert()))
        head = b""
        while b"\r\n\r\n" not in head and len(head) < _MAX_HEAD:
            chunk = tls.recv(4096)
            if not chunk:
                return
            head += chunk
        top, _, body = head.partition(b"\r\n\r\n")
        lines = top.decode("latin-1").split("\r\n")
        self.server.state.requests.append(lines[0])
        left = _content_length(lines) - len(body)
        while left > 0:
            chunk = tls.recv(min(65536, left))
            if not chunk:
                return
            left -= len(chunk)
        tls.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(_BODY)}\r\nConnection: close\r\n\r\n".encode()
            + _BODY
        )
        self.server.state.answered.set()


def _common_name(certificate: dict[str, Any] | None) -> str:
    """The subject's common name of a certificate as ``getpeercert()`` gives it."""
    for attribute in (certificate or {}).get("subject", ()):
        for name, value in attribute:
            if name == "commonName":
                return str(value)
    return ""


def _content_length(lines: list[str]) -> int:
    """The ``Content-Length`` among a request's header lines (0 without one)."""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            return int(value.strip())
    return 0


def _linger(sock: ssl.SSLSocket) -> None:
    """Close after a failed handshake without a reset: stop writing, drain, close."""
    with contextlib.suppress(OSError, ValueError):
        sock.settimeout(_LINGER_SECONDS)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    sock.close()


@contextlib.asynccontextmanager
async def run_mtls_server(tls: TlsFiles) -> AsyncIterator[MtlsServer]:
    """Serve for the block on ``https://127.0.0.1:<port>``; yield the server's record."""
    state = MtlsServer()
    server = _Server(tls.server_context(require_client_cert=True), state)
    thread = threading.Thread(target=server.serve_forever, name="mtls-sandbox", daemon=True)
    thread.start()
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        thread.join(timeout=5)
