"""Take the guides' screenshots from the Agents Playground: ``python -m tools.screenshots``.

Starts Warden with the Playground in sandbox mode (free ports, a throwaway var directory),
opens the Playground's page in headless Chromium and walks the responder's journeys as a
person would, saving one PNG per moment the guides show (``--out``, default ``docs/img``):

1. channel General, ``@Warden subscribe incidents``, then ``app.py demo incident`` → the
   incident card (``incident-card-playground.png``);
2. *Assign to me* → the card with *Done: Took ownership* (``triage-card-playground.png``);
3. *More options* → *Link to ServiceNow…* → CHG0030001 → *Link* → the card listing the
   change (``servicenow-link-playground.png``);
4. *Close…* with a classification and a comment, just before *Close incident*
   (``triage-close-playground.png``); then it is closed and the card says so;
5. ``@Warden help`` → the help card (``help-card-playground.png``);
6. ``@Warden request evidence …`` → the owner's card (``evidence-request-playground.png``);
   *Give a link* → the reviewers' card (``evidence-review-playground.png``).

A step that does not happen stops the run with exit status 1 and a message naming it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from core.catalog import load_catalog
from sandbox.playground import default_config
from tools.playground_page import VIEWPORT, WAIT_MS, Channel, launch, step
from tools.warden_process import (
    REPO_ROOT,
    REQUIREMENTS_FILE,
    StepFailed,
    Warden,
    add_to_groups,
    cli,
    report_page,
    running_warden,
    wait_for_deliveries,
)

INCIDENT_TITLE = "Ransomware activity detected on FIN-SRV-02"
CHANGE = "CHG0030001"
CLASSIFICATION = "True positive: suspicious activity"
CLOSING_COMMENT = "Encryption stopped by isolating FIN-SRV-02; files restored from backup."
REQUIREMENT = "ISO27001-A.5.18-ACCESS-REVIEW"

SCALE = 2
"""Device pixels per CSS pixel: sharp on high-density screens, as a person's laptop shows it."""

SHOTS = (
    "incident-card-playground.png",
    "triage-card-playground.png",
    "servicenow-link-playground.png",
    "triage-close-playground.png",
    "help-card-playground.png",
    "evidence-request-playground.png",
    "evidence-review-playground.png",
)
"""Every file a run writes, in the order it writes them."""


def incident_journeys(channel: Channel, warden: Warden, out: Path) -> None:
    """Subscribe, receive an incident, assign it, link it to a change, close it."""
    with step("subscribe the channel"):
        channel.post_command("subscribe incidents")
    channel.wait_in(channel.post_with("Subscribed to incidents"), "Subscribed", "the reply")
    cli(warden, "demo", "incident", "--title", INCIDENT_TITLE)
    card = channel.post_with(INCIDENT_TITLE)
    channel.wait_in(card, "Assign to me", "the incident card")
    wait_for_deliveries(warden)
    channel.shoot(card, out / "incident-card-playground.png")

    with step("click Assign to me"):
        card.get_by_role("button", name="Assign to me").click()
    channel.wait_in(card, "Took ownership", "the card's line about Assign to me")
    channel.wait_in(card, "Done", "Done after Assign to me")
    wait_for_deliveries(warden)
    channel.shoot(card, out / "triage-card-playground.png")

    with step("click Link to ServiceNow… (on the card or under More options)"):
        channel.click_action(card, "Link to ServiceNow…")
    with step(f"give {CHANGE} and click Link"):
        card.get_by_role("textbox", name="ServiceNow record number").fill(CHANGE)
        card.get_by_role("button", name="Link", exact=True).click()
    channel.wait_in(card, "Linked records", f"the card listing {CHANGE}", exact=True)
    wait_for_deliveries(warden)
    channel.shoot(card, out / "servicenow-link-playground.png")

    with step("fill in Close…"):
        channel.click_action(card, "Close…")
        card.get_by_role("combobox").first.click()
        channel.page.get_by_role("option", name=CLASSIFICATION).click()
        card.get_by_label("Why it is closed").fill(CLOSING_COMMENT)
    channel.shoot(card, out / "triage-close-playground.png")
    with step("click Close incident"):
        card.get_by_role("button", name="Close incident").click()
    channel.wait_in(card, "Closed", "the closed card", exact=True)
    wait_for_deliveries(warden)


def help_journey(channel: Channel, out: Path) -> None:
    """``@Warden help`` and its card."""
    with step("ask for help"):
        channel.post_command("help")
    answer = channel.post_with("Here is what I can do:")
    channel.wait_in(answer, "subscribe incidents", "the help card")
    channel.shoot(answer, out / "help-card-playground.png")


def evidence_journey(channel: Channel, warden: Warden, out: Path, link: str) -> None:
    """Request evidence, hand in a link as its owner, and the reviewers' card.

    The Playground signs in one person (Alex Wilber) and its mention menu does not offer
    yourself, so the owner is named by Alex's Entra object id; an administrator first makes
    Alex a member of the requirement's reviewer groups (requesting needs that).
    """
    requirement = load_catalog(REQUIREMENTS_FILE).get(REQUIREMENT)
    if requirement is None:
        raise StepFailed(f"read the catalog: {REQUIREMENT} is not in {REQUIREMENTS_FILE}")
    me = str(default_config()["currentUser"]["aadObjectId"])
    add_to_groups(warden, me, [group.id for group in requirement.reviewers])
    with step("request evidence"):
        channel.post_command(f"request evidence {REQUIREMENT} from {me}")
    owner = channel.post_with(f"Evidence requested: {requirement.title}")
    channel.wait_in(owner, "Give a link", "the owner's evidence card")
    channel.wait_in(channel.post_with("I asked "), "Evidence requested", "the reply")
    wait_for_deliveries(warden)
    channel.shoot_together(
        [owner, channel.post_with("I asked ")], out / "evidence-request-playground.png"
    )

    with step("hand in a link as the owner"):
        owner.get_by_role("button", name="Give a link").click()
        owner.get_by_label("Link to the evidence").fill(link)
        owner.get_by_role("button", name="Submit link (version 1)").click()
    review = channel.post_with(f"Evidence to review: {requirement.title}")
    channel.wait_in(review, "Approve", "the reviewers' card", exact=True)
    channel.wait_in(review, "Filed in SharePoint", "the filed evidence on the reviewers' card")
    wait_for_deliveries(warden)
    channel.shoot(review, out / "evidence-review-playground.png")


def take_screenshots(out: Path) -> list[Path]:
    """Run Warden, walk every journey, and return the files written under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with (
        running_warden() as warden,
        report_page(warden.var_dir) as link,
        sync_playwright() as playwright,
    ):
        browser = launch(playwright)
        page = browser.new_page(viewport=VIEWPORT, device_scale_factor=SCALE)
        page.set_default_timeout(WAIT_MS)
        try:
            with step("open the General channel"):
                channel = Channel.open(page, warden.playground_url)
            incident_journeys(channel, warden, out)
            help_journey(channel, out)
            evidence_journey(channel, warden, out, link)
        except StepFailed as failed:
            seen = Path(tempfile.gettempdir()) / "warden-screenshots-failure.png"
            page.screenshot(path=str(seen))
            raise StepFailed(f"{failed} (the page then: {seen})") from None
        finally:
            browser.close()
    return [out / name for name in SHOTS]


def main(argv: list[str] | None = None) -> int:
    """The command line: exit 0 with the files listed, or 1 naming the step that failed."""
    parser = argparse.ArgumentParser(prog="python -m tools.screenshots", description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "docs" / "img",
        help="directory for the PNG files (default: docs/img)",
    )
    args = parser.parse_args(argv)
    try:
        written = take_screenshots(args.out.resolve())
    except StepFailed as failed:
        sys.stderr.write(f"screenshots: {failed}\n")
        return 1
    sys.stdout.write("".join(f"{path}\n" for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
