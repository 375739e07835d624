"""Async client of Jira Service Management: Warden's second ``ItsmConnector``.

Issues are read with ``GET /rest/api/3/issue/{key}`` and the enhanced JQL search
``POST /rest/api/3/search/jql`` (``nextPageToken`` paging; the retired offset search is never
used); requests are created with ``POST /rest/servicedeskapi/request``; outcomes are
comments in Atlassian Document Format (``…/comment``, internal to agents) and transitions
found by *name* in ``GET …/transitions`` (each workflow numbers them differently).

A JQL error is Jira's 400 with its message; it is raised as ``JsmRefused`` carrying that
message (``user_message`` shows it), never turned into an empty result. Creates are
idempotent through the label ``warden-<correlation id>``: the request is looked up by it
before a create is sent, and a create that got no answer is looked up again before it is
sent again, so a lost answer never makes a second request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from connectors.auth import Authenticator
from connectors.http import DEFAULT_TIMEOUT
from connectors.jsm.adf import document
from connectors.jsm.api import JiraApi
from connectors.jsm.auth import authenticator
from connectors.jsm.errors import JsmError, JsmNotFound, JsmRefused, invalid_answer
from connectors.jsm.mapping import (
    FIELDS,
    correlation_label,
    jql_string,
    jql_time,
    record_from_issue,
)
from core.errors import InvalidPayload, ItsmAmbiguous, ItsmRecordNotFound, Outcome
from core.itsm import (
    ChangeDraft,
    ConfigurationItem,
    ItsmChange,
    ItsmRecord,
    ItsmSystem,
    RecordType,
    is_issue_key,
    normalize_reference,
)
from core.settings.jsm import JsmSettings

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 3
"""Sends of one create at most (each after looking the label up again)."""

INTERNAL = [{"key": "sd.public.comment", "value": {"internal": True}}]
"""The comment property that keeps a JSM comment internal (agents only, not the customer)."""


class JsmClient:
    """Reads and writes JSM issues (see the module docstring); the caller owns ``http``."""

    system = ItsmSystem.JSM

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        auth: Authenticator,
        *,
        project: str = "SEC",
        service_desk_id: str = "1",
        request_type_id: str = "10",
        browse_url: str | None = None,
        overlap: timedelta = timedelta(minutes=2),
        page_size: int = 50,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to the site whose REST API is under ``base_url``."""
        self._api = JiraApi(http, base_url, auth, timeout=timeout)
        self._project, self._desk, self._type = project, service_desk_id, request_type_id
        self._browse = (browse_url or base_url).rstrip("/")
        self._overlap, self.page_size = overlap, page_size

    @classmethod
    def from_settings(cls, http: httpx.AsyncClient, settings: JsmSettings) -> JsmClient:
        """The client ``settings`` describe (``ValueError`` when JSM is off)."""
        return cls(
            http,
            str(settings.base_url),
            authenticator(http, settings),
            project=settings.project,
            service_desk_id=settings.service_desk_id,
            request_type_id=settings.request_type_id,
            browse_url=settings.browse_url,
            overlap=timedelta(seconds=settings.poll_overlap_seconds),
        )

    async def get(self, number: str) -> ItsmRecord | None:
        """The issue with this key; None when Jira has none the account can read."""
        key = normalize_reference(self.system, number)
        try:
            issue = await self._api.call(
                "GET", f"/rest/api/3/issue/{key}", params={"fields": ",".join(FIELDS)}
            )
        except JsmNotFound:
            return None
        record = self._mapped(issue)
        if record.number != key:  # a moved issue answers under its new key: still that issue
            log.info("issue %s answered as %s (moved)", key, record.number)
        return record

    async def search_jql(self, jql: str, *, limit: int | None = None) -> AsyncIterator[ItsmRecord]:
        """Every issue ``jql`` selects, page by page (``nextPageToken``), at most ``limit``."""
        token: str | None = None
        seen: set[str] = set()
        count = 0
        while True:
            size = self.page_size if limit is None else min(self.page_size, limit - count)
            body: dict[str, Any] = {"jql": jql, "fields": list(FIELDS), "maxResults": size}
            if token:
                body["nextPageToken"] = token
            answer = await self._api.call(
                "POST", "/rest/api/3/search/jql", body=body, repeatable=True
            )
            issues = answer.get("issues") if isinstance(answer, dict) else None
            if not isinstance(issues, list):
                raise invalid_answer("POST search/jql: the answer has no 'issues' array")
            for issue in issues:
                count += 1
                yield self._mapped(issue)
            token = answer.get("nextPageToken") or None
            if answer.get("isLast", token is None) or not token or not issues:
                return
            if (limit is not None and count >= limit) or token in seen:
                return
            seen.add(token)

    async def search(
        self, text: str, *, types: Sequence[RecordType], limit: int = 10
    ) -> list[ItsmRecord]:
        """The issue whose key is ``text``, or the project's issues whose summary has it."""
        needle = text.strip()
        if is_issue_key(needle):
            found = await self.get(needle)
            return [found] if found is not None and found.type in types else []
        jql = (
            f"project = {jql_string(self._project)} AND summary ~ {jql_string(needle)} "
            "ORDER BY updated DESC"
        )
        results: list[ItsmRecord] = []
        async for record in self.search_jql(jql, limit=limit * 2):
            if record.type in types:
                results.append(record)
            if len(results) >= limit:
                break
        return results

    async def create_change(self, draft: ChangeDraft) -> ItsmRecord:
        """The request of ``draft.correlation_id``: the one existing, or a new one."""
        fields = {"summary": draft.short_description, "description": draft.description}
        return await self._ensure(draft.correlation_id, {**fields, **draft.fields})

    async def upsert_by_correlation(
        self, table: RecordType, correlation_id: str, fields: Mapping[str, str]
    ) -> ItsmRecord:
        """Create the one request carrying ``correlation_id``, or comment ``fields`` on it."""
        values = {"summary": fields.get("short_description", correlation_id), **fields}
        found = await self.find_by_correlation(correlation_id)
        if found is None:
            return await self._ensure(correlation_id, values)
        note = fields.get("work_notes") or fields.get("comments")
        return await self.add_work_note(found, note) if note else found

    async def find_by_correlation(self, correlation_id: str) -> ItsmRecord | None:
        """The one issue labelled for ``correlation_id``; ``ItsmAmbiguous`` for several."""
        label = correlation_label(correlation_id)
        jql = f"project = {jql_string(self._project)} AND labels = {jql_string(label)}"
        found = [record async for record in self.search_jql(jql, limit=2)]
        strangers = [r for r in found if correlation_label(r.correlation_id) != label]
        if strangers or len(found) > 1:
            raise ItsmAmbiguous(f"labels = {label} matched {len(found)} issue(s)", matches=2)
        return found[0] if found else None

    async def add_work_note(self, record: ItsmRecord, text: str) -> ItsmRecord:
        """Add ``text`` as an internal comment (ADF) to ``record``; the issue afterwards."""
        body = {"body": document(text), "properties": INTERNAL}
        await self._write(record, "POST", f"/rest/api/3/issue/{record.key}/comment", body)
        return await self._reread(record)

    async def update(self, record: ItsmRecord, change: ItsmChange) -> ItsmRecord:
        """The note as a comment, then ``change.state`` as the transition of that name."""
        if change.work_note:
            body = {"body": document(change.work_note), "properties": INTERNAL}
            await self._write(record, "POST", f"/rest/api/3/issue/{record.key}/comment", body)
        if change.state:
            await self.transition(record, change.state)
        return await self._reread(record) if change.work_note or change.state else record

    async def transition(self, record: ItsmRecord, name: str) -> bool:
        """Move ``record`` by the transition called ``name`` (its target status name also
        matches); False when the issue is in that status already. ``JsmRefused`` naming the
        transitions open when none has that name."""
        path = f"/rest/api/3/issue/{record.key}/transitions"
        answer = await self._read(record, path)
        offered = answer.get("transitions") if isinstance(answer, dict) else None
        if not isinstance(offered, list):
            raise invalid_answer("GET transitions: the answer has no 'transitions' array")
        wanted = name.strip().casefold()
        for item in offered:
            target = str((item.get("to") or {}).get("name") or "")
            if wanted in (str(item.get("name") or "").casefold(), target.casefold()):
                await self._write(record, "POST", path, {"transition": {"id": str(item["id"])}})
                return True
        current = await self._reread(record)
        if current.state_label.casefold() == wanted:
            return False
        names = ", ".join(str(item.get("name")) for item in offered) or "none"
        raise JsmRefused(
            f"{record.number} has no transition named {name!r} from {current.state_label!r} "
            f"(open: {names})",
            status=400,
            outcome=Outcome.FAIL,
        )

    async def changed_since(
        self, watermark: datetime, *, types: Sequence[RecordType]
    ) -> AsyncIterator[ItsmRecord]:
        """Issues updated at or after ``watermark`` less the overlap, oldest first."""
        bound = watermark - self._overlap
        jql = (
            f"project = {jql_string(self._project)} AND updated >= {jql_time(bound)} "
            "ORDER BY updated ASC"
        )
        async for record in self.search_jql(jql):
            if record.type in types:
                yield record

    async def configuration_items(
        self, names_or_addresses: Sequence[str]
    ) -> list[ConfigurationItem]:
        """None: Warden does not read JSM Assets (CIs come from ServiceNow's CMDB)."""
        return []

    async def aclose(self) -> None:
        """Nothing to release: the caller owns the HTTP client."""

    # -- writes and re-reads ---------------------------------------------------------------

    async def _ensure(self, correlation_id: str, fields: Mapping[str, str]) -> ItsmRecord:
        """Find the request labelled for ``correlation_id``, or create it (sent once a try)."""
        label = correlation_label(correlation_id)
        values: dict[str, Any] = {
            "summary": fields.get("summary", "")[:255],
            "description": fields.get("description", ""),
            "labels": [label],
        }
        body = {
            "serviceDeskId": self._desk,
            "requestTypeId": self._type,
            "requestFieldValues": values,
        }
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            found = await self.find_by_correlation(correlation_id)
            if found is not None:
                return found
            try:
                made = await self._api.call("POST", "/rest/servicedeskapi/request", body=body)
            except JsmError as exc:
                lost = exc.status is None or exc.status >= 500
                if not lost or not exc.attempted or attempt == CREATE_ATTEMPTS:
                    raise
                log.info("request create got no answer (attempt %d); looking up again", attempt)
                continue
            key = made.get("issueKey") if isinstance(made, dict) else None
            record = await self.get(str(key)) if key else None
            if record is None:
                raise invalid_answer("POST request: the answer names no issue Warden can read")
            return record
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _read(self, record: ItsmRecord, path: str) -> Any:
        try:
            return await self._api.call("GET", path)
        except JsmNotFound as exc:
            raise ItsmRecordNotFound(
                record.number, system=self.system.display_name, detail=str(exc)
            ) from exc

    async def _write(
        self, record: ItsmRecord, method: str, path: str, body: dict[str, Any]
    ) -> None:
        try:
            await self._api.call(method, path, body=body)
        except JsmNotFound as exc:
            raise ItsmRecordNotFound(
                record.number, system=self.system.display_name, detail=str(exc)
            ) from exc

    async def _reread(self, record: ItsmRecord) -> ItsmRecord:
        issue = await self._read(
            record, f"/rest/api/3/issue/{record.key}?fields={','.join(FIELDS)}"
        )
        return self._mapped(issue)

    def _mapped(self, issue: Any) -> ItsmRecord:
        try:
            return record_from_issue(issue, self._browse)
        except InvalidPayload as exc:
            raise invalid_answer(f"unreadable issue ({exc})") from exc
