"""The one rule for call ids, shared by the gateway (checks the URL) and storage (makes file names/S3 keys).

A call id arrives from outside (Amazon Connect's ContactId, a Twilio CallSid, a test's name) and ends up
as a file name and an S3 key segment, so one strict rule decides for both places: when the gateway and
storage disagreed, an id like `a..b` passed the gateway and then failed inside the call actor (close
1011) instead of being refused up front with HTTP 400.

Allowed: 1-128 ASCII characters from letters, digits, `-`, `_` and `.`; the first is a letter or digit
(so never a leading `.`, i.e. no hidden or relative file names, and never a leading `-`, which shell
tools read as an option); no `..` anywhere (no path traversal, even once joined with other text).
ContactIds are UUIDs and CallSids are `CA` + 32 hex digits, both well inside this rule.
"""

from __future__ import annotations

import re

MAX_CALL_ID_LENGTH = 128
CALL_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
CALL_ID_RULE = (
    "1-128 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit, without '..'"
)


class InvalidCallIdError(ValueError):
    """A call id that breaks the rule; the message says which part of the rule, not the raw id."""


def call_id_problem(call_id: object) -> str | None:
    """Why `call_id` is refused, in words for an HTTP 400 body; None when it is valid."""
    if not isinstance(call_id, str):
        return f"call id must be a string, got {type(call_id).__name__}"
    if not call_id:
        return "call id is empty"
    if len(call_id) > MAX_CALL_ID_LENGTH:
        return f"call id is longer than {MAX_CALL_ID_LENGTH} characters"
    if call_id.startswith("."):
        return "call id may not start with '.'"
    if ".." in call_id:
        return "call id may not contain '..'"
    if not CALL_ID_PATTERN.fullmatch(call_id):  # fullmatch: `$` would also accept a trailing newline
        return f"call id has characters outside the rule: {CALL_ID_RULE}"
    return None


def is_valid_call_id(call_id: object) -> bool:
    return call_id_problem(call_id) is None


def validate_call_id(call_id: str) -> str:
    """Return `call_id` unchanged if it follows the rule, else raise InvalidCallIdError (a ValueError)."""
    problem = call_id_problem(call_id)
    if problem is not None:
        raise InvalidCallIdError(f"invalid call id: {problem} (rule: {CALL_ID_RULE})")
    return call_id
