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
- `iasovoice_transcription_latency_seconds`, `iasovoice_voice_to_voice_seconds`,
  `iasovoice_soap_generation_seconds` (histograms) and `iasovoice_call_actor_restarts_total` (counter):
  call actors, through the metrics IO actor. Their events happen in other processes, where a
  prometheus_client metric would land in that process's registry and never in this scrape; so call
  actors `record` them (TranscriptionLatency, ResponseLatency, SOAPGenerationTime, CallActorRestarts),
  the metrics actor keeps their cumulative state (`iasovoice/metric_series.py`, which also holds the
  buckets), and each scrape fetches its snapshot and exposes it with `FedSeriesCollector`. When the
  metrics actor does not answer in time the scrape still serves the gateway's own metrics, without
  these families (absent, not 0, so a dashboard sees a gap rather than a false counter reset).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from gateway.auth import REJECTION_REASONS
from iasovoice.metric_series import SERIES
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
# Known label values exist from the start at 0, so a rate() or an alert has a series before the first event.
for _reason in REJECTION_REASONS:
    AUTH_REJECTIONS.labels(reason=_reason)
for _kind in _BAD_MESSAGE_KINDS:
    BAD_MESSAGES.labels(kind=_kind)


def count_auth_rejection(reason: str) -> None:
    AUTH_REJECTIONS.labels(reason=reason if reason in REJECTION_REASONS else "invalid").inc()


def count_bad_message(kind: str) -> None:
    BAD_MESSAGES.labels(kind=kind if kind in _BAD_MESSAGE_KINDS else "invalid").inc()


class FedSeriesCollector(Collector):
    """The call actors' series (`iasovoice.metric_series.SERIES`) from one metrics actor snapshot.

    Built per scrape around the snapshot it exposes, so no state is shared between scrapes; a family
    missing from the snapshot (an older metrics actor) is left out rather than shown as 0.
    """

    def __init__(self, snapshot: Mapping[str, Mapping[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        for spec in SERIES:
            data = self._snapshot.get(spec.name)
            if data is None or data.get("kind") != spec.kind:
                continue
            if spec.kind == "counter":
                yield CounterMetricFamily(spec.name, spec.help, value=float(data["value"]))
                continue
            buckets = [(floatToGoString(bound), count) for bound, count in data["buckets"]]  # as Histogram writes `le`
            yield HistogramMetricFamily(spec.name, spec.help, buckets=buckets, sum_value=float(data["sum"]))


def exposition(fed: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[bytes, str]:
    """The scrape body and its content type (Prometheus text format 0.0.4).

    `fed`: the metrics actor's `series_snapshot()`, or None when it did not answer (its families are
    then left out). The two parts are separate registries, so they are rendered apart and joined (the
    text format is a plain sequence of families).
    """
    body = generate_latest(REGISTRY)
    if fed is not None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FedSeriesCollector(fed))
        body += generate_latest(registry)
    return body, CONTENT_TYPE_LATEST
