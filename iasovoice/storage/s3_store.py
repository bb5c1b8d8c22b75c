"""S3 store for production: objects encrypted server-side with KMS (SSE-KMS).

Errors name the bucket and call id (enough to find the object) but never the body, which is PHI.
The boto3 client is injected so the caller controls region, credentials and retries.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from iasovoice.errors import StorageError
from iasovoice.storage.base import RecordKind, validate_call_id, validate_kind

_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Store:
    """``s3://bucket/<prefix><call_id>/<kind>.json`` objects written with ``aws:kms`` encryption.

    With ``kms_key_id=None`` the bucket's default KMS key (or the AWS-managed ``aws/s3`` key) is used.
    """

    def __init__(
        self, client: Any, bucket: str, prefix: str = "calls/", kms_key_id: str | None = None
    ) -> None:
        if not bucket:
            raise ValueError("S3Store needs a bucket name")
        self._client = client
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.kms_key_id = kms_key_id

    def key_for(self, call_id: str, kind: RecordKind) -> str:
        return f"{self.prefix}{validate_call_id(call_id)}/{validate_kind(kind)}.json"

    def put(self, call_id: str, kind: RecordKind, data: bytes) -> None:
        key = self.key_for(call_id, kind)
        extra: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
        if self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=bytes(data), ContentType="application/json", **extra
            )
        except ClientError as exc:
            raise StorageError(self._describe("write", kind, call_id, exc)) from None

    def get(self, call_id: str, kind: RecordKind) -> bytes | None:
        key = self.key_for(call_id, kind)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return None
            raise StorageError(self._describe("read", kind, call_id, exc)) from None
        return response["Body"].read()

    def exists(self, call_id: str, kind: RecordKind) -> bool:
        key = self.key_for(call_id, kind)
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return False
            raise StorageError(self._describe("check", kind, call_id, exc)) from None
        return True

    def _describe(self, action: str, kind: str, call_id: str, exc: ClientError) -> str:
        return f"could not {action} {kind} for call {call_id} in s3://{self.bucket}/{self.prefix}: {_error_code(exc)}"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))
