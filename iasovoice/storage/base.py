"""The storage contract for notes and transcripts, which are PHI: encrypted at rest, never logged.

Call ids come from the telephony side (Amazon Connect contact ids) and become file names or S3 keys,
so they are validated first, by the same rule the gateway applies to the URL (`iasovoice/call_ids.py`):
no path separators, no "..", no odd bytes.
"""

from __future__ import annotations

from typing import Literal, Protocol, get_args, runtime_checkable

from iasovoice.call_ids import validate_call_id

# "state" is a live call's checkpoint (transcript so far and dialogue state), so a call survives its actor.
RecordKind = Literal["note", "transcript", "state"]
RECORD_KINDS: tuple[str, ...] = get_args(RecordKind)

__all__ = ["RECORD_KINDS", "CallStore", "RecordKind", "validate_call_id", "validate_kind"]


def validate_kind(kind: str) -> RecordKind:
    if kind not in RECORD_KINDS:
        raise ValueError(f"invalid record kind {kind!r}: expected one of {', '.join(RECORD_KINDS)}")
    return kind  # type: ignore[return-value]


@runtime_checkable
class CallStore(Protocol):
    """Where a call's note and transcript are kept (one blob per call and kind)."""

    def put(self, call_id: str, kind: RecordKind, data: bytes) -> None: ...

    def get(self, call_id: str, kind: RecordKind) -> bytes | None: ...

    def exists(self, call_id: str, kind: RecordKind) -> bool: ...
