"""Optional per-call tokens: HMAC-SHA256(secret, call_id), hex, passed as `?token=`.

The Lambda or dialer that creates the call signs its id; the gateway checks it before the websocket
handshake, so a forged or reused-for-another-call token never reaches a call actor.
"""

from __future__ import annotations

import hashlib
import hmac


def call_token(secret: bytes, call_id: str) -> str:
    return hmac.new(secret, call_id.encode(), hashlib.sha256).hexdigest()


def verify_call_token(secret: bytes, call_id: str, token: str | None) -> bool:
    if not token:
        return False
    return hmac.compare_digest(call_token(secret, call_id), token)
