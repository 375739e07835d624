"""Warden's Prometheus metrics: one registry per running Warden, passed to what it measures.

Counters and histograms are updated where things happen (edge, ingest, worker, outbound
calls); the gauges that describe stored state (outbox depth and age, DLQ depth, breakers)
are refreshed when ``/metrics`` is scraped. p95 latencies derive from the histograms.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BREAKER_LEVEL = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    """The metrics of one Warden process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "warden_http_requests",
            "Inbound HTTP requests.",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "warden_http_request_seconds",
            "Inbound request latency.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ingested = Counter(
            "warden_ingested",
            "Webhook events by result (accepted, duplicate, stale).",
            ["source", "result"],
            registry=r,
        )
        self.outbound = Counter(
            "warden_outbound_calls",
            "Outbound calls by outcome (ok or the failure outcome).",
            ["service", "outcome"],
            registry=r,
        )
        self.outbound_seconds = Histogram(
            "warden_outbound_call_seconds",
            "Outbound call latency.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.jobs = Counter(
            "warden_outbox_jobs_finished",
            "Outbox job outcomes (done, retry, deferred, quarantined, dead).",
            ["kind", "outcome"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "warden_outbox_depth", "Outbox jobs by status.", ["status"], registry=r
        )
        self.outbox_oldest = Gauge(
            "warden_outbox_oldest_pending_seconds", "Age of the oldest waiting job.", registry=r
        )
        self.dlq_depth = Gauge("warden_dlq_depth", "Jobs in the dead-letter queue.", registry=r)
        self.breaker = Gauge(
            "warden_breaker_state",
            "Circuit breaker per host: 0 closed, 1 half-open, 2 open.",
            ["host"],
            registry=r,
        )
        self.reconcile_incidents = Counter(
            "warden_sentinel_reconcile_incidents",
            "Open incidents the Sentinel reconcile read, by result (changed, unchanged).",
            ["result"],
            registry=r,
        )
        self.reconcile_pages = Gauge(
            "warden_sentinel_reconcile_pages",
            "Pages committed by the current reconcile run.",
            registry=r,
        )
        self.sync_last_success = Gauge(
            "warden_sync_last_success_timestamp_seconds",
            "When each poller last finished a round without error (Unix time); the sync lag is "
            "time() minus this.",
            ["poller"],
            registry=r,
        )
        self.reconcile_last_success = Gauge(
            "warden_sentinel_reconcile_last_success_timestamp_seconds",
            "When the last full Sentinel reconcile finished (Unix time; 0: none yet).",
            registry=r,
        )
        self.cmdb_runs = Counter(
            "warden_cmdb_sync_runs",
            "Nightly CMDB sync runs by outcome (finished, failed: resumed later).",
            ["outcome"],
            registry=r,
        )
        self.cmdb_cis = Gauge(
            "warden_cmdb_cis",
            "CMDB CIs in the store: active, retired, needing_tags (active, owner/env missing).",
            ["state"],
            registry=r,
        )
        self.cmdb_last_success = Gauge(
            "warden_cmdb_sync_last_success_timestamp_seconds",
            "When the last CMDB sync finished (Unix time; 0: none yet).",
            registry=r,
        )
        self.delivery_ambiguous = Counter(
            "warden_delivery_ambiguous",
            "Card posts whose answer was lost, by what a look at the channel found "
            "(found: adopted; absent: posted again; unknown: could not look, posted again).",
            ["resolution"],
            registry=r,
        )
