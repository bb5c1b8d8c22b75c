"""Encrypted call storage: local AES-GCM files and S3 with SSE-KMS.

S3 is mocked with moto (``moto.mock_aws``) because no AWS endpoint is reachable from these machines;
the test checks the encryption headers S3 records, which is what moto models faithfully.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from iasovoice.errors import StorageError
from iasovoice.storage import LocalEncryptedStore, S3Store, load_or_create_key, validate_call_id

PHI = b'{"subjective": "Jane Doe, DOB 1970-01-02, reports chest pain since Tuesday"}'


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def store(tmp_path: Path, key: bytes) -> LocalEncryptedStore:
    return LocalEncryptedStore(tmp_path / "calls", key)


def test_local_round_trip(store: LocalEncryptedStore) -> None:
    assert store.get("call-1", "note") is None
    assert not store.exists("call-1", "note")
    store.put("call-1", "note", PHI)
    store.put("call-1", "transcript", b"[]")
    assert store.exists("call-1", "note")
    assert store.get("call-1", "note") == PHI
    assert store.get("call-1", "transcript") == b"[]"
    store.put("call-1", "note", b"v2")  # overwrite is atomic and re-encrypts
    assert store.get("call-1", "note") == b"v2"


def test_ciphertext_hides_plaintext_and_nonce_is_fresh(store: LocalEncryptedStore) -> None:
    store.put("call-1", "note", PHI)
    first = (store.root / "call-1" / "note.bin").read_bytes()
    store.put("call-1", "note", PHI)
    second = (store.root / "call-1" / "note.bin").read_bytes()
    assert PHI not in first and b"chest pain" not in first and b"Jane" not in first
    assert first != second  # a new nonce per write
    assert not list((store.root / "call-1").glob("*.tmp"))


def test_tampering_is_detected(store: LocalEncryptedStore) -> None:
    store.put("call-1", "note", PHI)
    path = store.root / "call-1" / "note.bin"
    blob = bytearray(path.read_bytes())
    blob[-20] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(StorageError, match="failed authentication"):
        store.get("call-1", "note")
    path.write_bytes(b"short")
    with pytest.raises(StorageError, match="not an IasoVoice encrypted record"):
        store.get("call-1", "note")


def test_moved_file_is_detected(store: LocalEncryptedStore) -> None:
    store.put("call-1", "note", PHI)
    store.put("call-2", "note", b"other")
    os.replace(store.root / "call-1" / "note.bin", store.root / "call-2" / "note.bin")
    with pytest.raises(StorageError, match="call call-2"):
        store.get("call-2", "note")
    store.put("call-3", "transcript", PHI)
    (store.root / "call-3" / "transcript.bin").rename(store.root / "call-3" / "note.bin")
    with pytest.raises(StorageError):
        store.get("call-3", "note")


def test_wrong_key_is_detected(tmp_path: Path, store: LocalEncryptedStore) -> None:
    store.put("call-1", "note", PHI)
    other = LocalEncryptedStore(store.root, os.urandom(32))
    with pytest.raises(StorageError):
        other.get("call-1", "note")


def test_permissions(store: LocalEncryptedStore) -> None:
    store.put("call-1", "note", PHI)
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    assert stat.S_IMODE((store.root / "call-1").stat().st_mode) == 0o700
    assert stat.S_IMODE((store.root / "call-1" / "note.bin").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "bad", ["../etc", "..", "a/b", "/abs", "", ".hidden", "a\\b", "a b", "x" * 129, "call\n1", "a..b"]
)
def test_unsafe_call_ids_are_refused(store: LocalEncryptedStore, bad: str) -> None:
    with pytest.raises(ValueError):
        validate_call_id(bad)
    with pytest.raises(ValueError):
        store.put(bad, "note", PHI)
    with pytest.raises(ValueError):
        store.get(bad, "note")


def test_valid_call_ids() -> None:
    for good in ["a", "0f1e2d3c-aaaa-bbbb-cccc-111122223333", "call_1.v2", "x" * 128]:
        assert validate_call_id(good) == good


def test_unknown_kind_is_refused(store: LocalEncryptedStore) -> None:
    with pytest.raises(ValueError):
        store.put("call-1", "audio", PHI)  # type: ignore[arg-type]


def test_bad_key_length(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="32 bytes"):
        LocalEncryptedStore(tmp_path, b"short")


def test_key_from_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: bytes) -> None:
    monkeypatch.setenv("IASOVOICE_STORAGE_KEY", base64.b64encode(key).decode())
    assert load_or_create_key(tmp_path / "key") == key
    assert not (tmp_path / "key").exists()
    monkeypatch.setenv("IASOVOICE_STORAGE_KEY", base64.b64encode(b"too short").decode())
    with pytest.raises(StorageError, match="expected 32"):
        load_or_create_key(tmp_path / "key")
    monkeypatch.setenv("IASOVOICE_STORAGE_KEY", "not base64 !!")
    with pytest.raises(StorageError, match="not valid base64"):
        load_or_create_key(tmp_path / "key")


def test_key_file_created_once_and_never_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("IASOVOICE_STORAGE_KEY", raising=False)
    key_file = tmp_path / "secrets" / "storage.key"
    with caplog.at_level(logging.DEBUG):
        key = load_or_create_key(key_file)
    assert len(key) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert str(key_file) in caplog.text
    assert base64.b64encode(key).decode() not in caplog.text
    assert load_or_create_key(key_file) == key  # read back, not recreated


BUCKET = "iasovoice-notes"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_s3_round_trip_with_kms_key(s3) -> None:
    kms_key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    store = S3Store(s3, BUCKET, kms_key_id=kms_key)
    assert store.get("call-1", "note") is None
    assert not store.exists("call-1", "note")
    store.put("call-1", "note", PHI)
    assert store.exists("call-1", "note")
    assert store.get("call-1", "note") == PHI
    head = s3.head_object(Bucket=BUCKET, Key="calls/call-1/note.json")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == kms_key


def test_s3_default_bucket_key(s3) -> None:
    store = S3Store(s3, BUCKET, prefix="tenant-a")
    store.put("call-9", "transcript", b"[]")
    head = s3.head_object(Bucket=BUCKET, Key="tenant-a/call-9/transcript.json")
    assert head["ServerSideEncryption"] == "aws:kms"


def test_s3_errors_name_bucket_and_call_not_body(s3) -> None:
    store = S3Store(s3, "no-such-bucket")
    with pytest.raises(StorageError) as info:
        store.put("call-1", "note", PHI)
    message = str(info.value)
    assert "no-such-bucket" in message and "call-1" in message
    assert "chest pain" not in message and "Jane" not in message
    with pytest.raises(ValueError):
        store.put("../x", "note", PHI)
