"""Encrypted file store for development and single-host deployments.

Each record is AES-256-GCM encrypted with a fresh 96-bit nonce. The associated data binds the
ciphertext to its ``call_id/kind``, so a file copied or moved under another call fails to decrypt
instead of silently attaching one patient's note to another's call. Anything that fails to
authenticate raises ``StorageError``: garbage is never returned.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from iasovoice.errors import StorageError
from iasovoice.storage.base import RecordKind, validate_call_id, validate_kind

logger = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
_MAGIC = b"IVS1"  # format marker + version, so a later format can be told apart
_DIR_MODE = 0o700
_FILE_MODE = 0o600


class LocalEncryptedStore:
    """``root/<call_id>/<kind>.bin`` files holding ``IVS1 | nonce | AES-GCM(ciphertext+tag)``."""

    def __init__(self, root: Path, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise StorageError(f"storage key must be {KEY_BYTES} bytes (AES-256), got {len(key)}")
        self.root = Path(root)
        self._aead = AESGCM(key)
        _make_private_dir(self.root)

    def _path(self, call_id: str, kind: RecordKind) -> Path:
        return self.root / validate_call_id(call_id) / f"{validate_kind(kind)}.bin"

    @staticmethod
    def _aad(call_id: str, kind: RecordKind) -> bytes:
        return f"{call_id}/{kind}".encode()

    def put(self, call_id: str, kind: RecordKind, data: bytes) -> None:
        path = self._path(call_id, kind)
        nonce = os.urandom(NONCE_BYTES)
        blob = _MAGIC + nonce + self._aead.encrypt(nonce, bytes(data), self._aad(call_id, kind))
        try:
            _make_private_dir(path.parent)
            _atomic_write(path, blob)
        except OSError as exc:
            raise StorageError(f"could not write {kind} for call {call_id} under {self.root}: {exc}") from exc

    def get(self, call_id: str, kind: RecordKind) -> bytes | None:
        path = self._path(call_id, kind)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"could not read {kind} for call {call_id} under {self.root}: {exc}") from exc
        header = len(_MAGIC) + NONCE_BYTES
        if len(blob) < header + 16 or not blob.startswith(_MAGIC):
            raise StorageError(f"stored {kind} for call {call_id} is not an IasoVoice encrypted record")
        nonce = blob[len(_MAGIC) : header]
        try:
            return self._aead.decrypt(nonce, blob[header:], self._aad(call_id, kind))
        except InvalidTag:
            raise StorageError(
                f"stored {kind} for call {call_id} failed authentication: it was modified, belongs to "
                "another call, or was written with another key"
            ) from None

    def exists(self, call_id: str, kind: RecordKind) -> bool:
        return self._path(call_id, kind).is_file()


def _make_private_dir(path: Path) -> None:
    path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, _DIR_MODE)  # mkdir's mode is masked by umask and ignored for existing dirs


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a 0600 temp file, fsync, rename, fsync the directory: readers see old or new, never half."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create_key(key_file: Path, env_var: str = "IASOVOICE_STORAGE_KEY") -> bytes:
    """The AES-256 key: ``$env_var`` (base64 of 32 bytes) wins, else ``key_file``, else a new key file.

    A new key is created with 0600 permissions; its path is logged, the key never is. Losing the key
    makes every stored note unreadable, so operators should back it up (or use a secret manager and
    the environment variable).
    """
    encoded = os.environ.get(env_var)
    if encoded:
        return _decode_key(encoded, f"environment variable {env_var}")
    key_file = Path(key_file).expanduser()
    if key_file.is_file():
        return _decode_key(key_file.read_text(encoding="ascii").strip(), f"key file {key_file}")
    key = AESGCM.generate_key(bit_length=256)
    _make_private_dir(key_file.parent)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except FileExistsError:  # another process created it first: use theirs
        return _decode_key(key_file.read_text(encoding="ascii").strip(), f"key file {key_file}")
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(key).decode("ascii") + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    logger.info(
        "Created a new storage encryption key at %s (back it up: notes are unreadable without it)", key_file
    )
    return key


def _decode_key(encoded: str, source: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise StorageError(f"the storage key in {source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise StorageError(f"the storage key in {source} decodes to {len(key)} bytes, expected {KEY_BYTES}")
    return key
