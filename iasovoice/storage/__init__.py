"""Encrypted storage of call notes and transcripts (PHI): local AES-GCM files or S3 with SSE-KMS."""

from iasovoice.storage.base import RECORD_KINDS, CallStore, RecordKind, validate_call_id
from iasovoice.storage.local_store import LocalEncryptedStore, load_or_create_key
from iasovoice.storage.s3_store import S3Store

__all__ = [
    "RECORD_KINDS",
    "CallStore",
    "LocalEncryptedStore",
    "RecordKind",
    "S3Store",
    "load_or_create_key",
    "validate_call_id",
]
