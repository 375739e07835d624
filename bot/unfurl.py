"""Link unfurling: a pasted ITSM record URL becomes a compact card of the record.

Only URLs of the configured ServiceNow instance (same scheme, host and port) are understood;
Warden never follows or fetches a pasted URL. It reads the record the URL names through the
connector, with a short timeout, and anything else (another host, a page that is not a
record, a record Warden cannot read, a slow instance) leaves the link plain. The shapes:

- ``/<table>.do?sys_id=<sys_id>`` (or ``?sysparm_query=number=<number>``), the classic form;
- ``/nav_to.do?uri=<classic form>``, the framed classic form (encoded or not);
- ``/now/nav/ui/classic/params/target/<classic form, percent-encoded>``, Next Experience;
- ``/now/<workspace…>/record/<table>/<sys_id>``, the workspaces.

With Jira Service Management connected, an issue URL of the configured Jira site,
``/browse/<KEY>`` (the key only: a query or fragment is ignored), unfurls the same way.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from bot.types import LinkPreview, LinkQuery
from cards.extensions import record_card
from core.errors import DeliveryError
from core.itsm import ItsmRecord, RecordType, is_issue_key

log = logging.getLogger(__name__)

UNFURL_SECONDS = 3.0
"""How long an unfurl waits for the record (Teams gives a link query a few seconds)."""

_SYS_ID = re.compile(r"[0-9a-f]{32}")
_NUMBER_QUERY = re.compile(r"number=([A-Za-z]{2,4}[0-9]{7,12})")
_WORKSPACE = re.compile(r"now/(?:[\w.-]+/)+record/(?P<table>\w+)/(?P<key>[0-9a-f]{32})(?:/.*)?")
_CLASSIC_TARGET = "now/nav/ui/classic/params/target/"
_BROWSE = re.compile(r"browse/(?P<key>[A-Za-z][A-Za-z0-9_]{0,9}-[1-9][0-9]{0,9})/?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class RecordRef:
    """The record a URL names: its table, and its sys_id or its number."""

    type: RecordType
    key: str | None = None
    number: str | None = None


class RecordReader(Protocol):
    """What unfurling reads records with (the ServiceNow connector offers both)."""

    async def get(self, number: str) -> ItsmRecord | None:
        """The record with this number, or None when none can be read."""
        ...

    async def get_by_key(self, table: RecordType, key: str) -> ItsmRecord | None:
        """The record of ``table`` with this sys_id, or None when none can be read."""
        ...


def _origin(parts: SplitResult) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of a URL; None when it is not an http(s) URL with a host."""
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return scheme, parts.hostname.lower(), port


def _same_origin(url: str, base_url: str) -> tuple[SplitResult, SplitResult] | None:
    """``url`` and ``base_url`` split, when ``url`` is an http(s) URL of the same scheme,
    host and port as ``base_url``, without credentials; else None."""
    try:
        parts, base = urlsplit(url.strip()), urlsplit(base_url.strip())
    except ValueError:
        return None
    origin = _origin(parts)
    if origin is None or origin != _origin(base) or parts.username or parts.password:
        return None
    return parts, base


def parse_record_url(url: str, instance_url: str) -> RecordRef | None:
    """The record ``url`` names, when it is a record URL of the instance at ``instance_url``."""
    split = _same_origin(url, instance_url)
    if split is None:
        return None
    return _record_of(split[0].path, split[0].query, depth=0)


def parse_issue_url(url: str, site_url: str) -> str | None:
    """The issue key ``url`` names (upper-cased), when it is a ``/browse/KEY`` URL of the
    Jira site at ``site_url``."""
    split = _same_origin(url, site_url)
    if split is None:
        return None
    parts, site = split
    found = _BROWSE.fullmatch(parts.path.removeprefix(site.path.rstrip("/")).lstrip("/"))
    if found is None or not is_issue_key(found["key"]):
        return None
    return found["key"].upper()


def _record_of(path: str, query: str, *, depth: int) -> RecordRef | None:
    """The record a path and query name (nested targets followed twice at most)."""
    name = path.strip("/")
    if depth > 2:
        return None
    if name == "nav_to.do":
        uri = parse_qs(query).get("uri", [""])[0]
        return _target(uri, depth)
    if name.startswith(_CLASSIC_TARGET):
        return _target(unquote(name[len(_CLASSIC_TARGET) :]), depth)
    workspace = _WORKSPACE.fullmatch(name)
    if workspace is not None:
        return _ref(workspace["table"], key=workspace["key"])
    if name.endswith(".do") and "/" not in name:
        params = parse_qs(query)
        key = params.get("sys_id", [""])[0].lower()
        if _SYS_ID.fullmatch(key):
            return _ref(name.removesuffix(".do"), key=key)
        found = _NUMBER_QUERY.fullmatch(params.get("sysparm_query", [""])[0])
        if found is not None:
            return _ref(name.removesuffix(".do"), number=found[1].upper())
    return None


def _target(uri: str, depth: int) -> RecordRef | None:
    """The record a nested ``path?query`` target names."""
    path, _, query = (uri if "?" in uri else unquote(uri)).partition("?")
    return _record_of(path, query, depth=depth + 1)


def _ref(table: str, *, key: str | None = None, number: str | None = None) -> RecordRef | None:
    """A ``RecordRef`` when ``table`` is one Warden links (and the number is of its kind)."""
    try:
        kind = RecordType(table)
    except ValueError:
        return None
    if number is not None:
        try:
            if RecordType.of_number(number) is not kind:
                return None
        except ValueError:
            return None
    return RecordRef(kind, key=key, number=number)


class IssueReader(Protocol):
    """What unfurling reads Jira issues with (the JSM connector)."""

    async def get(self, number: str) -> ItsmRecord | None:
        """The issue with this key, or None when none can be read."""
        ...


class Unfurler:
    """Turns a pasted record URL of the configured instance (or Jira site) into a compact
    card of it."""

    def __init__(
        self,
        instance_url: str | None,
        reader: RecordReader | None,
        *,
        jira: tuple[str, IssueReader] | None = None,
        timeout: float = UNFURL_SECONDS,
    ) -> None:
        """Understand URLs of ``instance_url`` (read with ``reader``) and, with ``jira``
        (the site people browse, and the issue reader), issue URLs of that site."""
        self._instance_url = instance_url
        self._reader = reader
        self._jira = jira
        self._timeout = timeout

    async def unfurl(self, query: LinkQuery) -> LinkPreview | None:
        """The record's card and preview; None for another URL or an unreadable record."""
        ref, key = None, None
        if self._instance_url is not None and self._reader is not None:
            ref = parse_record_url(query.url, self._instance_url)
        if ref is None and self._jira is not None:
            key = parse_issue_url(query.url, self._jira[0])
        if ref is None and key is None:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                if key is not None:
                    assert self._jira is not None
                    record = await self._jira[1].get(key)
                elif ref is not None and ref.key is not None:
                    assert self._reader is not None
                    record = await self._reader.get_by_key(ref.type, ref.key)
                else:
                    assert self._reader is not None and ref is not None and ref.number
                    record = await self._reader.get(ref.number)
        except (DeliveryError, TimeoutError):  # ItsmAmbiguous is a DeliveryError
            log.warning("unfurl: the record could not be read")
            return None
        if record is None:
            log.info("unfurl: no readable record at the pasted URL")
            return None
        title = f"{record.number} \u00b7 {record.state_label or record.state}"
        return LinkPreview(record_card(record), title, record.short_description[:200])
