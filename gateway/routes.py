"""Request routing for the gateway's one port: websocket `/connect/{call_id}` and a few HTTP GETs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

_CONNECT = re.compile(r"^/connect/(?P<call_id>[^/]+)/?$")
_NOTE = re.compile(r"^/calls/(?P<call_id>[^/]+)/(?P<kind>note|transcript)/?$")
_CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Route:
    kind: str  # "connect", "record", "health", "unknown"
    call_id: str | None = None
    record: str | None = None
    query: dict[str, str] | None = None


def valid_call_id(call_id: str) -> bool:
    return bool(_CALL_ID.match(call_id))


def route(path: str) -> Route:
    parts = urlsplit(path)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if match := _CONNECT.match(parts.path):
        return Route("connect", match["call_id"], query=query)
    if match := _NOTE.match(parts.path):
        return Route("record", match["call_id"], record=match["kind"], query=query)
    if parts.path in ("/healthz", "/health"):
        return Route("health", query=query)
    return Route("unknown", query=query)
