"""The Agents Playground's web page, driven as a person would, in headless Chromium.

What the page looks like (Playground 0.2.28): a channel shows a *Start a new post* box (a
rich-text editor, ARIA ``textbox``) with a *Post* button, then each post as a Fluent card
(``div.fui-Card``, ARIA ``group``), newest first; a bot's answer to a post sits in that post's
thread. Typing ``@Wa`` opens a mention menu (ARIA ``menuitem``). Adaptive Cards render with
their buttons' titles as accessible names; buttons that do not fit sit under *More options*.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, Playwright, ViewportSize
from playwright.sync_api import Error as PlaywrightError

from tools.warden_process import StepFailed

VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
"""The browser window: a laptop screen."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Flags for a closed network: without the background-networking ones Chromium's own calls
home make the network refuse connections."""

WAIT_MS = 20_000
"""How long a step waits for the page to show what it expects."""

BOT_NAME = "Warden"


def chromium_path() -> str | None:
    """The system Chromium (Debian's ``chromium``), or None when it is not installed."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def launch(playwright: Playwright) -> Browser:
    """Headless system Chromium; ``StepFailed`` when there is none."""
    path = chromium_path()
    if path is None:
        raise StepFailed(
            "launch Chromium: `chromium` is not on PATH "
            "(apt-get install -y --no-install-recommends chromium)"
        )
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Turn a Playwright timeout or error inside the block into ``StepFailed`` naming it."""
    try:
        yield
    except PlaywrightError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StepFailed(f"{name}: {first}") from None


class Channel:
    """A Teams channel open in the Playground's page."""

    def __init__(self, page: Page) -> None:
        self.page = page

    @classmethod
    def open(cls, page: Page, url: str, name: str = "General") -> Channel:
        """Open the Playground and pick channel ``name`` (which adds Warden to it)."""
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text(name, exact=True).first.click(timeout=WAIT_MS)
        page.get_by_text("Start a new post").wait_for(timeout=WAIT_MS)
        return cls(page)

    def post_command(self, command: str, *, mention: str | None = None) -> Locator:
        """Post ``@Warden <command>`` (``mention``: a person mentioned after it, picked from
        the menu as a person would); the post, once it shows in the channel."""
        page = self.page
        page.get_by_role("textbox").first.click()
        page.keyboard.type("@" + BOT_NAME[:2])
        page.get_by_role("menuitem", name=BOT_NAME).click(timeout=WAIT_MS)
        page.keyboard.type(" " + command)
        if mention is not None:
            page.keyboard.type(" @" + mention[:3])
            page.get_by_role("menuitem", name=mention).click(timeout=WAIT_MS)
        page.get_by_role("button", name="Post", exact=True).click()
        posted = self.post_with(command)
        posted.wait_for(timeout=WAIT_MS)
        return posted

    def post_with(self, text: str) -> Locator:
        """The newest post whose text includes ``text`` (with its thread)."""
        return self.page.locator("div.fui-Card[role=group]").filter(has_text=text).first

    def wait_in(
        self, post: Locator, text: str, what: str, *, exact: bool = False, timeout_ms: int = WAIT_MS
    ) -> None:
        """Wait until ``post`` shows ``text``; ``StepFailed`` saying ``what`` did not appear."""
        try:
            post.get_by_text(text, exact=exact).first.wait_for(timeout=timeout_ms)
        except PlaywrightError:
            raise StepFailed(f"{what} did not appear within {timeout_ms / 1000:.0f} s") from None

    def click_action(self, post: Locator, name: str) -> None:
        """Click the card button ``name``, on the card or, when it did not fit, under *More
        options* (which buttons fit depends on the incident: its status adds one)."""
        button = post.get_by_role("button", name=name, exact=True)
        if button.count():
            button.first.click()
            return
        post.get_by_role("button", name="More options").click()
        self.page.get_by_role("menuitem", name=name).click()

    def shoot(self, post: Locator, path: Path) -> Path:
        """Screenshot ``post`` alone (the window grows for a post taller than it)."""
        return self.shoot_together([post], path)

    def shoot_together(self, posts: list[Locator], path: Path) -> Path:
        """Screenshot the smallest rectangle holding every one of ``posts``, which must be
        next to each other in the channel (the window grows to hold them)."""
        page = self.page
        with step(f"screenshot {path.name}"):
            self._fit(posts)
            try:
                posts[0].scroll_into_view_if_needed()
                boxes = [post.bounding_box() for post in posts]
                if any(box is None for box in boxes):
                    raise StepFailed(f"screenshot {path.name}: a post is not visible")
                left = min(box["x"] for box in boxes if box)
                top = min(box["y"] for box in boxes if box)
                right = max(box["x"] + box["width"] for box in boxes if box)
                bottom = max(box["y"] + box["height"] for box in boxes if box)
                page.mouse.move(0, 0)  # no hover highlight on a button
                page.screenshot(
                    path=str(path),
                    clip={"x": left, "y": top, "width": right - left, "height": bottom - top},
                    animations="disabled",
                    caret="hide",
                )
            finally:
                page.set_viewport_size(VIEWPORT)
        return path

    def _fit(self, posts: list[Locator]) -> None:
        """Make the window tall enough to show ``posts`` whole."""
        height = 0.0
        for post in posts:
            post.scroll_into_view_if_needed()
            box = post.bounding_box()
            height += box["height"] if box else 0.0
        needed = int(height) + 240
        if needed > VIEWPORT["height"]:
            self.page.set_viewport_size({"width": VIEWPORT["width"], "height": needed})
