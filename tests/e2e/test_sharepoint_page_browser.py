"""The sandbox SharePoint page, as an auditor opens it from ``make run``, in headless Chromium.

Evidence is requested and linked in the Agents Playground first (as in
``test_evidence_playground``); the page at the address ``make run`` prints then lists the
evidence file in the *Evidence* library with its SHA-256, and the *Audit Log* entries with their
hashes. The page is served with the sandbox's private CA, which Chromium does not know: the
browser context ignores certificate errors for it, nothing else is relaxed.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.embedded import sharepoint_page_url
from sandbox.playground_client import PlaygroundClient
from tests.e2e.card_support import STEP_SECONDS
from tests.e2e.evidence_support import (
    REPORT,
    Running,
    approve_twice,
    eventually,
    evidence_page,
    make_run,
    make_run_settings,
    request_and_submit,
    sp_list,
)
from tools.playground_page import CHROMIUM_ARGS, chromium_path

pytestmark = pytest.mark.e2e


@pytest.fixture
def chromium() -> str:
    """The system Chromium (CI installs it); skip when there is none."""
    found = chromium_path()
    if found is None:
        pytest.skip("chromium is not on PATH: the SharePoint page test needs a system Chromium")
    return found


@pytest.fixture
async def running(node_modules: Path, tmp_path: Path, sqlite_url: str) -> AsyncIterator[Running]:
    """Warden as ``make run`` starts it, on free ports."""
    async with make_run(make_run_settings(tmp_path, sqlite_url)) as up:
        yield up


async def page_text(chromium: str, url: str) -> tuple[str, list[str]]:
    """The page's visible text and its section headings, as Chromium renders them."""
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(ignore_https_errors=True)
            page = await context.new_page()
            answer = await page.goto(url)
            assert answer is not None and answer.status == 200
            headings = await page.locator("h3").all_inner_texts()
            return await page.locator("body").inner_text(), headings
        finally:
            await browser.close()


async def test_sharepoint_page_lists_filed_evidence_and_audit_hashes(
    chromium: str, running: Running
) -> None:
    """After a link is handed in and approved, the page shows the library, its file with the
    SHA-256 of the linked report, the request approved, and the Audit Log's entries with their
    hashes."""
    async with (
        evidence_page(running.settings) as link,
        PlaygroundClient(running.playground_url, timeout=STEP_SECONDS) as client,
        client.stream() as stream,
    ):
        review = await request_and_submit(client, stream, link)
        await approve_twice(client, stream, review)

    def audited(state: dict[str, object]) -> bool:
        requests = sp_list(state, "Evidence Requests")["items"]
        approved = any(i["fields"].get("Status") == "Approved" for i in requests)
        return approved and len(sp_list(state, "Audit Log")["items"]) >= 5

    state = await eventually(running.sharepoint_state, audited)
    hashes = [str(i["fields"]["Hash"]) for i in sp_list(state, "Audit Log")["items"]]
    text, headings = await page_text(chromium, sharepoint_page_url(running.settings))
    assert {"Library: Evidence", "List: Evidence Requests", "List: Audit Log"} <= set(headings)
    assert "mfa-conditional-access.txt" in text
    assert "Approved" in text  # the request's item, as the auditor browses it
    assert hashlib.sha256(REPORT).hexdigest() in text
    assert all(h in text for h in hashes)
