"""Teams pacing: per-conversation sliding windows, a bot-wide limit, pauses after 429."""

from __future__ import annotations

import pytest

from core.pacing import Pacer
from core.settings.outbox import OutboxSettings
from core.worker import backoff_delay


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def send(pacer: Pacer, conversation: str) -> float:
    """Take a slot for a send that Teams answers at once; else the seconds to wait."""
    wait, slot = pacer.take(conversation)
    if slot is not None:
        pacer.settle(slot)
    return wait


def test_pacer_seven_per_second_then_waits() -> None:
    """Seven sends go at once; the eighth waits until the first leaves the one-second window."""
    clock = Clock()
    pacer = Pacer(clock=clock, margin=0.0)
    assert [send(pacer, "c") for _ in range(7)] == [0.0] * 7
    assert send(pacer, "c") == pytest.approx(1.0)


def test_pacer_eight_per_two_seconds() -> None:
    """After one second, one more send goes; the ninth waits for the two-second window."""
    clock = Clock()
    pacer = Pacer(clock=clock, margin=0.0)
    for _ in range(7):
        send(pacer, "c")
    clock.now = 1.0
    assert send(pacer, "c") == 0.0
    assert send(pacer, "c") == pytest.approx(1.0)


def test_pacer_counts_replies_that_did_not_wait() -> None:
    """A reply to a person takes no slot, but Teams counts it: the cards after it leave room."""
    clock = Clock()
    pacer = Pacer(clock=clock, margin=0.0)
    pacer.settle(pacer.record("c"))
    assert [send(pacer, "c") for _ in range(6)] == [0.0] * 6
    assert send(pacer, "c") == pytest.approx(1.0)
    clock.now = 1.0
    assert send(pacer, "c") == 0.0
    assert send(pacer, "c") == pytest.approx(1.0), "reply + 7 cards fill the 2 s window"


def test_pacer_settled_slot_counts_from_when_the_send_ended() -> None:
    """A send that took 0.5 s to reach Teams holds its slot from its end, not its start."""
    clock = Clock()
    pacer = Pacer(clock=clock, margin=0.0)
    slots = [pacer.take("c")[1] for _ in range(7)]
    clock.now = 0.5
    for slot in slots:
        assert slot is not None
        pacer.settle(slot)
    clock.now = 1.0
    assert send(pacer, "c") == pytest.approx(0.5), "the window runs from 0.5, not 0"
    clock.now = 1.5
    assert send(pacer, "c") == 0.0


def test_pacer_sixty_per_thirty_seconds() -> None:
    """At a steady pace the 61st send within thirty seconds waits for the window."""
    clock = Clock()
    pacer = Pacer(clock=clock, margin=0.0)
    sent = 0
    while sent < 60:
        wait = send(pacer, "c")
        if wait:
            clock.now += wait
        else:
            sent += 1
    assert clock.now < 30
    assert send(pacer, "c") == pytest.approx(30 - clock.now, abs=1e-6)


def test_pacer_conversations_independent() -> None:
    """A busy conversation does not hold back another one."""
    pacer = Pacer(clock=Clock(), margin=0.0)
    for _ in range(7):
        send(pacer, "busy")
    assert send(pacer, "busy") > 0
    assert send(pacer, "quiet") == 0.0


def test_pacer_bot_wide_limit() -> None:
    """Fifty sends a second across all conversations, whatever the spread."""
    pacer = Pacer(clock=Clock(), margin=0.0)
    assert all(send(pacer, f"c{i}") == 0.0 for i in range(50))
    assert send(pacer, "c50") == pytest.approx(1.0)


def test_pacer_pause_holds_that_conversation_only() -> None:
    """A 429's Retry-After pauses that conversation for exactly that long."""
    clock = Clock()
    pacer = Pacer(clock=clock, margin=0.0)
    pacer.pause("throttled", 3.0)
    assert send(pacer, "throttled") == pytest.approx(3.0)
    assert send(pacer, "other") == 0.0
    clock.now = 3.0
    assert send(pacer, "throttled") == 0.0


def test_backoff_grows_capped_and_honours_retry_after() -> None:
    """Backoff doubles (with jitter) up to the cap, and never undercuts Retry-After."""
    settings = OutboxSettings(backoff_base_seconds=1, backoff_max_seconds=8)
    for attempt, ceiling in ((1, 1), (2, 2), (3, 4), (4, 8), (10, 8)):
        delay = backoff_delay(attempt, settings, None)
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_delay(1, settings, 30.0) == 30.0


def test_pacer_margin_widens_each_window() -> None:
    """With a margin, the eighth send waits one second plus the margin."""
    pacer = Pacer(clock=Clock(), margin=0.25)
    for _ in range(7):
        pacer.reserve("c")
    assert pacer.reserve("c") == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("status", "resend"),
    [
        (429, True),
        (503, True),
        (408, True),
        (401, False),
        (409, False),
        (412, False),
        (400, False),
        (404, False),
    ],
)
def test_resend_in_call_only_for_transient_answers(status: int, resend: bool) -> None:
    """Only answers that may change on their own are resent within a call."""
    from core.outcomes import resend_in_call

    assert resend_in_call(status) is resend


def test_pacer_margin_only_for_sends_still_on_the_way() -> None:
    """An unanswered send may reach Teams late (its window is widened by the margin); once
    answered, its stamp is when Teams had it at the latest, and the window is exact."""
    clock = Clock()
    pacer = Pacer(clock=clock, margin=0.25)
    slots = [pacer.take("c")[1] for _ in range(7)]
    assert pacer.reserve("c") == pytest.approx(1.25), "in flight: one second and the margin"
    for slot in slots:
        assert slot is not None
        pacer.settle(slot)
    assert pacer.reserve("c") == pytest.approx(1.0), "answered at 0 s: exactly one second"


def test_pacer_send_on_the_way_longer_than_the_margin_still_counts() -> None:
    """A send that has not reached Teams 1.5 s after taking its slot (a busy host) may reach it
    at any moment: it still fills the window, whatever the margin."""
    clock = Clock()
    pacer = Pacer(clock=clock, margin=0.25)
    slots = [pacer.take("c")[1] for _ in range(7)]
    clock.now = 1.5
    assert pacer.reserve("c") == pytest.approx(1.0), "seven still on the way fill the second"
    for slot in slots:
        assert slot is not None
        pacer.settle(slot)
    assert pacer.reserve("c") == pytest.approx(1.0), "answered at 1.5 s: the window runs from then"
