"""Metrics IO actor: the seed's custom metrics (WebSocketConnections, TranscriptionLatency,
SOAPGenerationTime, …) buffered and flushed to a local JSON-lines file or to CloudWatch.

Call actors fire-and-forget `record`; a CloudWatch outage must never slow a call, so failures are
logged and the batch is dropped after a bounded retry. The values that feed the gateway's Prometheus
histograms and counters (iasovoice/metric_series.py) are also folded into cumulative state here, the
one process every call actor reports to; the gateway's `/metrics` reads it with `series_snapshot`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import ray

from iasovoice.config import MetricsConfig
from iasovoice.metric_series import SeriesBook

log = logging.getLogger(__name__)
_CLOUDWATCH_BATCH = 1000  # PutMetricData accepts up to 1000 metric data points per call


@ray.remote(num_cpus=0)
class MetricsActor:
    def __init__(self, config: MetricsConfig) -> None:
        from iasovoice.factory import metrics_path

        self._config = config
        self._buffer: list[dict[str, Any]] = []
        self._path: Path | None = None
        self._client: Any = None
        if config.backend == "cloudwatch":
            import boto3

            self._client = boto3.client("cloudwatch", region_name=config.region)
        else:
            self._path = metrics_path(config)
            self._path.parent.mkdir(parents=True, exist_ok=True)
        self._flusher: asyncio.Task[None] | None = None
        self._series = SeriesBook()

    async def record(self, name: str, value: float, unit: str = "None", dimensions: dict[str, str] | None = None) -> None:
        self._series.record(name, value, unit)
        self._buffer.append(
            {"name": name, "value": float(value), "unit": unit, "dimensions": dimensions or {}, "ts": time.time()}
        )
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def series_snapshot(self) -> dict[str, dict[str, Any]]:
        """The Prometheus histograms and counters fed so far (cumulative), for the gateway's `/metrics`."""
        return self._series.snapshot()

    async def flush(self) -> int:
        batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        try:
            await asyncio.to_thread(self._write, batch)
        except Exception as error:  # noqa: BLE001 - metrics must never take a call down
            log.warning("dropping %d metric points: %s", len(batch), error)
        return len(batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if self._path is not None:
            with self._path.open("a") as handle:
                handle.writelines(json.dumps(point) + "\n" for point in batch)
            return
        for start in range(0, len(batch), _CLOUDWATCH_BATCH):
            data = [
                {
                    "MetricName": p["name"],
                    "Value": p["value"],
                    "Unit": p["unit"],
                    "Timestamp": p["ts"],
                    "Dimensions": [{"Name": k, "Value": v} for k, v in p["dimensions"].items()],
                }
                for p in batch[start:start + _CLOUDWATCH_BATCH]
            ]
            self._client.put_metric_data(Namespace=self._config.namespace, MetricData=data)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.flush_interval_s)
            await self.flush()
