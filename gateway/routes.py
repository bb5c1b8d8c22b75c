"""Request routing for the gateway's one port: websocket `/connect/{call_id}` and a few HTTP GETs.

Routing only splits the path; whether a call id is acceptable is decided by the one shared rule in
`iasovoice/call_ids.py` (also used by storage), so the gateway never admits an id storage would refuse.
An empty id (`/connect/`) or one with slashes is routed as a call so it gets the same HTTP 400 as any
other bad id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from iasovoice.call_ids import call_id_problem, is_valid_call_id

# Everything after the prefix is the call id, slashes included: `/connect/../x` must reach the call id
# rule (HTTP 400, "not allowed") rather than look like an unknown path (404).
_CONNECT = re.compile(r"^/connect/(?P<call_id>.*?)/?$")
_NOTE = re.compile(r"^/calls/(?P<call_id>.*)/(?P<kind>note|transcript)/?$")
HEALTH_PATHS = frozenset({"/healthz", "/health"})
READY_PATHS = frozenset({"/readyz", "/ready"})
METRICS_PATH = "/metrics"

__all__ = ["Route", "call_id_problem", "route", "valid_call_id"]


@dataclass(frozen=True)
class Route:
    kind: str  # "connect", "record", "health", "ready", "metrics", "unknown"
    call_id: str | None = None
    record: str | None = None
    query: dict[str, str] | None = None


def valid_call_id(call_id: str) -> bool:
    """Kept for callers of the old name; the rule itself lives in `iasovoice.call_ids`."""
    return is_valid_call_id(call_id)


def route(path: str) -> Route:
    parts = urlsplit(path)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if match := _CONNECT.match(parts.path):
        return Route("connect", match["call_id"], query=query)
    if match := _NOTE.match(parts.path):
        return Route("record", match["call_id"], record=match["kind"], query=query)
    if parts.path in HEALTH_PATHS:
        return Route("health", query=query)
    if parts.path in READY_PATHS:
        return Route("ready", query=query)
    if parts.path == METRICS_PATH:
        return Route("metrics", query=query)
    return Route("unknown", query=query)
