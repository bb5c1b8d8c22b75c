"""The storage contract for notes and transcripts, which are PHI: encrypted at rest, never logged.

Call ids come from the telephony side (Amazon Connect contact ids) and become file names or S3 keys,
so they are validated against a strict pattern first: no path separators, no "..", no odd bytes.
"""

from __future__ import annotations

import re
from typing import Literal, Protocol, get_args, runtime_checkable

RecordKind = Literal["note", "transcript"]
RECORD_KINDS: tuple[str, ...] = get_args(RecordKind)

_CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_call_id(call_id: str) -> str:
    """Return ``call_id`` if it is safe as a file name and an S3 key segment, else raise ValueError."""
    if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id) or ".." in call_id:
        raise ValueError(
            f"invalid call id {call_id!r}: use 1-128 characters from A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit, without '..'"
        )
    return call_id


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
