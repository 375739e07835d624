"""Delivery tuning: the outbox's retries and leases (``WARDEN_OUTBOX__``) and Teams pacing."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OutboxSettings(BaseModel):
    """Tuning of the delivery outbox (``WARDEN_OUTBOX__<FIELD>``)."""

    max_attempts: int = Field(8, ge=1, le=100, description="Attempts before a job is dead.")
    backoff_base_seconds: float = Field(1.0, gt=0, description="First retry delay.")
    backoff_max_seconds: float = Field(300.0, gt=0, description="Longest retry delay.")
    concurrency: int = Field(8, ge=1, le=256, description="Jobs delivered at once.")
    lease_seconds: float = Field(60.0, gt=0, description="How long a claimed job is held.")
    poll_seconds: float = Field(2.0, gt=0, description="Idle re-check interval.")
    retain_hours: float = Field(
        24.0, gt=0, description="How long finished jobs and webhook receipts are kept."
    )


class PacingSettings(BaseModel):
    """Teams pacing (``WARDEN_PACING__<FIELD>``): stay under Teams' documented rate limits."""

    enabled: bool = Field(True, description="Pace card posts per conversation and per bot.")
    margin_seconds: float = Field(
        0.25,
        ge=0,
        le=5,
        description="How much later than it started a send still on the way may reach Teams "
        "(network delay); answered sends count from their answer.",
    )
