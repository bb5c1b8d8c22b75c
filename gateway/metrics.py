"""Prometheus metrics, served as text at `GET /metrics` on the gateway's port.

Every metric is defined here, in one registry of its own (not prometheus_client's global one, so a
library that registers metrics in the same process cannot collide with ours or leak into the scrape).
Label values come from fixed sets (reasons, message kinds), never from client text or call ids: a
label per call would grow without bound and put identifiers into the monitoring system.

Who feeds which:

- `iasovoice_websocket_connections` (gauge): `gateway/server.py`, +1 when a call's socket has passed
  the token check, -1 when it ends.
- `iasovoice_auth_rejections_total{reason}`: `gateway/server.py`, once per refused token, on the
  websocket (close 1008) and on the HTTP record routes (401). Reasons: `gateway.auth.REJECTION_REASONS`.
- `iasovoice_bad_messages_total{kind}`: `gateway/relay.py` and `gateway/server.py`, once per client
  message refused with an `error` reply (`ProtocolError.kind`, see `iasovoice.protocol.BAD_MESSAGE_KINDS`),
  and `too_large` for a websocket frame over `server.max_message_bytes` (closed 1009 by websockets).
- `iasovoice_transcription_latency_seconds`, `iasovoice_soap_generation_seconds`,
  `iasovoice_voice_to_voice_seconds` (histograms) and `iasovoice_call_actor_restarts_total` (counter):
  registered so dashboards and alerts can be written against them now (they read 0); NOTHING FEEDS THEM
  YET. Their events happen in call actors and Serve replicas, i.e. in other processes: a
  prometheus_client metric observed there lands in that process's registry, never in this scrape. A
  feeder must therefore bring the value to the gateway process (e.g. an item of `ExchangeResult` that
  the relay observes: ASR latency per utterance, note generation time at hang-up, reply onset per
  turn; restarts seen by the `CallDirectory` through `healthz` stats) and observe it here.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from gateway.auth import REJECTION_REASONS
from iasovoice.protocol import BAD_MESSAGE_KINDS

_BAD_MESSAGE_KINDS = (*BAD_MESSAGE_KINDS, "invalid")  # "invalid": a ProtocolError raised without a kind

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # CPU seconds, resident memory, open fds of the gateway process
PlatformCollector(registry=REGISTRY)

WEBSOCKET_CONNECTIONS = Gauge(
    "iasovoice_websocket_connections", "Call websockets open now (past the token check).", registry=REGISTRY
)
AUTH_REJECTIONS = Counter(
    "iasovoice_auth_rejections_total",
    "Requests refused for their token (websocket close 1008, HTTP 401), by reason.",
    ["reason"],
    registry=REGISTRY,
)
BAD_MESSAGES = Counter(
    "iasovoice_bad_messages_total",
    "Client websocket messages refused with an error reply (or a 1009 close), by kind.",
    ["kind"],
    registry=REGISTRY,
)
TRANSCRIPTION_LATENCY = Histogram(
    "iasovoice_transcription_latency_seconds",
    "End of an utterance to its final transcript (not fed yet; see gateway/metrics.py).",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
    registry=REGISTRY,
)
SOAP_GENERATION = Histogram(
    "iasovoice_soap_generation_seconds",
    "Time to write a call's SOAP note after hang-up (not fed yet; see gateway/metrics.py).",
    buckets=(1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0),
    registry=REGISTRY,
)
VOICE_TO_VOICE = Histogram(
    "iasovoice_voice_to_voice_seconds",
    "Caller stops speaking to the first agent audio of the reply (not fed yet; see gateway/metrics.py).",
    buckets=(0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0),
    registry=REGISTRY,
)
CALL_ACTOR_RESTARTS = Counter(
    "iasovoice_call_actor_restarts_total",
    "Call actors restarted after a failure (not fed yet; see gateway/metrics.py).",
    registry=REGISTRY,
)

# Known label values exist from the start at 0, so a rate() or an alert has a series before the first event.
for _reason in REJECTION_REASONS:
    AUTH_REJECTIONS.labels(reason=_reason)
for _kind in _BAD_MESSAGE_KINDS:
    BAD_MESSAGES.labels(kind=_kind)


def count_auth_rejection(reason: str) -> None:
    AUTH_REJECTIONS.labels(reason=reason if reason in REJECTION_REASONS else "invalid").inc()


def count_bad_message(kind: str) -> None:
    BAD_MESSAGES.labels(kind=kind if kind in _BAD_MESSAGE_KINDS else "invalid").inc()


def exposition() -> tuple[bytes, str]:
    """The scrape body and its content type (Prometheus text format 0.0.4)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
