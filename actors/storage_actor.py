"""Storage IO actor: encrypted notes and transcripts by call id (local directory or S3 with KMS).

All writes for the node go through here so the disk or S3 latency never sits on a call actor's loop,
and so there is exactly one place that holds the encryption key.
"""

from __future__ import annotations

import asyncio

import ray

from iasovoice.config import StorageConfig
from iasovoice.storage.base import RecordKind


@ray.remote(num_cpus=0, max_concurrency=16)
class StorageActor:
    def __init__(self, config: StorageConfig) -> None:
        from iasovoice.factory import build_store

        self._store = build_store(config)

    async def put(self, call_id: str, kind: RecordKind, data: bytes) -> None:
        await asyncio.to_thread(self._store.put, call_id, kind, data)

    async def get(self, call_id: str, kind: RecordKind) -> bytes | None:
        return await asyncio.to_thread(self._store.get, call_id, kind)

    async def exists(self, call_id: str, kind: RecordKind) -> bool:
        return await asyncio.to_thread(self._store.exists, call_id, kind)
