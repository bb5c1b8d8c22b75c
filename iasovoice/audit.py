"""An append-only audit log of who read which call's note or transcript, when, and what came of it.

Notes and transcripts are PHI, so every attempt to read one for a user (served, absent, or refused for
its token) is one JSON line here, and a reviewer can answer "who saw this patient's note" without the
service logs. The log itself must never hold PHI, which is why an entry is built from fixed fields only
(no free text, no transcript, no phone number): a call id, a record kind, an outcome and a reason from
fixed sets, and the reader as the *verified* token's identifying claims plus the client address.

Tampering is made detectable, not impossible: each line carries the SHA-256 of the line before it
(`prev`), so editing, inserting or deleting a line breaks the chain at the next line and `verify()`
names it. The chain cannot show that the newest lines were removed or the newest line rewritten; for
that an operator anchors the head hash (`iasovoice audit --verify` prints it) somewhere else from time
to time. Lines are written with one `write` to a file opened `O_APPEND`, under an exclusive `flock`
(so several writers on one host keep one chain), and `fsync`ed before `append` returns: a read that was
served is on disk first.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import hashlib
import ipaddress
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from iasovoice.call_ids import is_valid_call_id

Action = Literal["read"]
RecordName = Literal["note", "transcript"]
Outcome = Literal["served", "not_found", "refused", "error"]
ACTIONS: tuple[str, ...] = get_args(Action)
RECORDS: tuple[str, ...] = get_args(RecordName)
OUTCOMES: tuple[str, ...] = get_args(Outcome)

GENESIS = "0" * 64  # `prev` of the first line
# Token claims that say who read, copied from a verified token only. Anything else a token carries
# (a caller's number, a patient id, free text) is never copied.
ACTOR_CLAIMS = ("sub", "name", "iss", "aud", "azp", "client_id")
MAX_CLAIM_CHARS = 200
MAX_FORWARDED = 5
# A run of 7+ digits (with the separators people write numbers with) reads as a phone number: a claim
# value like that is replaced, so a token minted with a number in `name` cannot put it in the log.
_PHONE_LIKE = re.compile(r"\+?\d(?:[\s().-]*\d){6,}")
_REASON = re.compile(r"[a-z][a-z_]{0,39}")  # fixed reason labels (gateway.auth.REJECTION_REASONS, …)
_TAIL_CHUNK = 4096


class AuditError(Exception):
    """The audit log cannot be written; a caller serving PHI must not serve it un-audited."""


def _sha256(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _clean_claim(value: object, is_sub: bool = False) -> str | list[str] | None:
    """A claim value fit for the log: a short string (or list of them, as `aud` may be), never a number.

    `sub` is the call id the token opens (checked against the path), which may hold long digit runs
    (a Twilio CallSid) and is logged as `call_id` anyway; every other claim is redacted on sight.
    """
    if isinstance(value, list):
        cleaned = [_clean_claim(item) for item in value[:5]]
        return [item for item in cleaned if isinstance(item, str)]
    if not isinstance(value, str):
        return None
    text = value[:MAX_CLAIM_CHARS]
    if _PHONE_LIKE.search(text) and not (is_sub and is_valid_call_id(text)):
        return "[redacted: looks like a phone number]"
    return text


def actor_from_claims(claims: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The identifying claims of a verified token; None when nobody was identified (a refused token).

    Never pass unverified claims: whoever forged a token chose them.
    """
    if claims is None:
        return None
    actor: dict[str, Any] = {}
    for name in ACTOR_CLAIMS:
        if name in claims:
            value = _clean_claim(claims[name], is_sub=name == "sub")
            if value not in (None, []):
                actor[name] = value
    return actor


def _client_address(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        return None


def forwarded_for(header: str | None) -> list[str]:
    """The valid IP addresses at the end of an `X-Forwarded-For` header; anything else is dropped, never
    copied. Proxies append, so the last entries are the load balancer's; a client can prepend anything."""
    if not header:
        return []
    addresses = (_client_address(part) for part in header.split(",")[-MAX_FORWARDED:])
    return [address for address in addresses if address]


@dataclass(frozen=True)
class Verification:
    """What `verify()` found: `ok`, how many lines it checked, the head hash, and the first break."""

    ok: bool
    entries: int
    head: str
    line: int | None = None
    problem: str | None = None


class AuditLog:
    """One JSON line per record read. Build it once per process; `append` is safe from many threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as error:
            raise AuditError(f"cannot open the audit log {self.path} (audit.path): {error.strerror}") from None

    # ---------------------------------------------------------------------------------------- writing
    def append(
        self,
        *,
        action: Action,
        record: RecordName,
        call_id: str | None,
        outcome: Outcome,
        claims: Mapping[str, Any] | None,
        client: str | None = None,
        forwarded: list[str] | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Write one entry and fsync it; the entry as written. AuditError if it cannot be written.

        `claims`: the verified token's claims (only `ACTOR_CLAIMS` are kept), `{}` with auth off, None
        when the token was refused (nobody identified). Fields are keyword-only and each is checked, so
        nothing outside the fixed set (no text, no number) can reach the file.
        """
        entry = self._entry(action, record, call_id, outcome, claims, client, forwarded, reason)
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as error:
                raise AuditError(f"cannot open the audit log {self.path}: {error.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # another writer on this host: one chain, no interleaving
                seq, prev, needs_newline = _tail_state(fd)
                body = {"seq": seq, **entry, "prev": prev}
                line = json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode()
                os.write(fd, (b"\n" if needs_newline else b"") + line + b"\n")
                os.fsync(fd)
            except OSError as error:
                raise AuditError(f"cannot write the audit log {self.path}: {error.strerror}") from None
            finally:
                os.close(fd)  # also releases the flock
        return body

    async def append_async(self, **fields: Any) -> dict[str, Any]:
        """`append` in a worker thread, so the fsync never stalls an event loop that relays audio."""
        return await asyncio.to_thread(functools.partial(self.append, **fields))

    @staticmethod
    def _entry(
        action: str,
        record: str,
        call_id: str | None,
        outcome: str,
        claims: Mapping[str, Any] | None,
        client: str | None,
        forwarded: list[str] | None,
        reason: str | None,
    ) -> dict[str, Any]:
        if action not in ACTIONS:
            raise ValueError(f"audit action must be one of {ACTIONS}, got {action!r}")
        if record not in RECORDS:
            raise ValueError(f"audit record must be one of {RECORDS}, got {record!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"audit outcome must be one of {OUTCOMES}, got {outcome!r}")
        if call_id is not None and not is_valid_call_id(call_id):
            raise ValueError("audit call_id must follow the call id rule (log None for a refused bad id)")
        if reason is not None and not _REASON.fullmatch(reason):
            raise ValueError("audit reason must be a fixed label such as 'bad_signature', never free text")
        return {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "action": action,
            "record": record,
            "call_id": call_id,
            "outcome": outcome,
            "reason": reason,
            "actor": actor_from_claims(claims),
            "client": _client_address(client),
            "forwarded_for": [a for a in (_client_address(f) for f in (forwarded or [])[-MAX_FORWARDED:]) if a],
        }

    # ---------------------------------------------------------------------------------------- reading
    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry in order (a line that is not JSON raises ValueError: run `verify` to locate it)."""
        with self.path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    def verify(self) -> Verification:
        """Walk the chain from the first line; the first line whose `prev` or `seq` does not follow."""
        prev, count = GENESIS, 0
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.rstrip(b"\n")
                try:
                    entry = json.loads(line)
                except ValueError:
                    return Verification(False, count, prev, number, "not a JSON entry")
                if not isinstance(entry, dict):
                    return Verification(False, count, prev, number, "not a JSON object")
                if entry.get("prev") != prev:
                    return Verification(False, count, prev, number, "prev does not match the line before")
                if entry.get("seq") != count:
                    return Verification(False, count, prev, number, f"seq {entry.get('seq')!r}, expected {count}")
                prev, count = _sha256(line), count + 1
        return Verification(True, count, prev)


def _tail_state(fd: int) -> tuple[int, str, bool]:
    """(next seq, hash of the last line, whether the file lacks its final newline) from the file's end."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0, GENESIS, False
    end = size
    data = b""
    while True:  # read back until the last line is whole (entries are a few hundred bytes)
        start = max(0, end - _TAIL_CHUNK)
        data = os.pread(fd, end - start, start) + data
        end = start
        body = data[:-1] if data.endswith(b"\n") else data
        if b"\n" in body or start == 0:
            break
    needs_newline = not data.endswith(b"\n")
    last = (data[:-1] if not needs_newline else data).rsplit(b"\n", 1)[-1]
    try:
        seq = int(json.loads(last)["seq"]) + 1
    except (ValueError, KeyError, TypeError):
        # A damaged last line (a crash mid-write, an edit): the chain goes on from its hash and `verify`
        # reports the damage; the count of lines keeps `seq` meaningful.
        seq = _count_lines(fd, size) + (1 if needs_newline else 0)
    return seq, _sha256(last), needs_newline


def _count_lines(fd: int, size: int) -> int:
    count, offset = 0, 0
    while offset < size:
        chunk = os.pread(fd, min(1 << 20, size - offset), offset)
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count
