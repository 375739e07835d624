"""Tracing: W3C ``traceparent`` from inbound requests, through the outbox, onto every call.

OpenTelemetry spans are made for each inbound request (``web/access.py``), each outbox job
and each outbound call; the trace context of the request that caused a job is kept with the
job, so a card posted minutes later carries the trace of the webhook that caused it.
Spans are exported only when ``WARDEN_OTLP_ENDPOINT`` is set and the OTLP exporter package
is installed; otherwise they are made, propagated and dropped.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER_NAME = "warden"
_state: dict[str, Any] = {}


def configure_tracing(otlp_endpoint: str | None = None) -> None:
    """Install Warden's tracer provider once (idempotent), exporting to OTLP if configured."""
    if "provider" in _state:
        return
    provider = TracerProvider()
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            log.warning("WARDEN_OTLP_ENDPOINT is set but the OTLP exporter is not installed")
        else:
            exporter = OTLPSpanExporter(endpoint=otlp_endpoint)
            provider.add_span_processor(BatchSpanProcessor(exporter))
            _state["exporting"] = True
    _state["provider"] = provider


def _tracer() -> trace.Tracer:
    provider = _state.get("provider")
    if provider is None:
        configure_tracing()
        provider = _state["provider"]
    tracer: trace.Tracer = provider.get_tracer(_TRACER_NAME)
    return tracer


@contextmanager
def span(
    name: str,
    *,
    parent: Mapping[str, str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span, child of ``parent`` (carrier headers, e.g. an inbound request's) or current.

    Without an exporter nothing is recorded, so the span is a light non-recording one that
    only carries the trace context on (a tenth of the SDK's cost on every request).
    """
    ctx = _PROPAGATOR.extract(carrier=dict(parent)) if parent else None
    if not _state.get("exporting"):
        with _propagating(ctx) as light:
            yield light
        return
    with _tracer().start_as_current_span(
        name, context=ctx, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


@contextmanager
def _propagating(ctx: context.Context | None) -> Iterator[Span]:
    parent = trace.get_current_span(ctx).get_span_context()
    valid = parent.is_valid
    light = NonRecordingSpan(
        SpanContext(
            trace_id=parent.trace_id if valid else random.getrandbits(128),
            span_id=random.getrandbits(64),
            is_remote=False,
            trace_flags=parent.trace_flags if valid else TraceFlags(TraceFlags.SAMPLED),
            trace_state=parent.trace_state if valid else None,
        )
    )
    token = context.attach(trace.set_span_in_context(light, ctx))
    try:
        yield light
    finally:
        context.detach(token)


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context (``traceparent``) to outbound ``headers``."""
    _PROPAGATOR.inject(carrier=headers, context=context.get_current())


def carrier() -> dict[str, str]:
    """The current trace context as a small dict, to keep with work done later (a job)."""
    headers: dict[str, str] = {}
    inject(headers)
    return headers
