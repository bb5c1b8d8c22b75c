"""Prometheus histograms and counters of what call actors measure, kept where their values arrive.

Transcription latency, voice-to-voice latency, SOAP note time and call actor restarts happen in call
actors (other processes than the gateway), which send each value fire-and-forget to the metrics IO
actor (`actors/metrics_actor.py`, `record(name, value, unit)`). A prometheus_client metric observed
in a call actor would land in that process's registry and never in the gateway's scrape, so the
metrics actor folds each value into the cumulative state here, and the gateway's `/metrics` asks it for
a `snapshot()` and exposes it (gateway/metrics.py). This module is plain Python (no Ray, no
prometheus_client) so the bucket arithmetic is tested on its own, and it is the one place that says
which series exist, what feeds them and with which buckets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

# CloudWatch units (what `MetricsActor.record` is given) -> factor to the series' base unit (seconds).
UNIT_TO_SECONDS: dict[str, float] = {"Microseconds": 1e-6, "Milliseconds": 1e-3, "Seconds": 1.0}


@dataclass(frozen=True)
class SeriesSpec:
    """One exposed series and the `record` name that feeds it."""

    name: str  # the Prometheus family name (a counter's without `_total`; the exposition adds it)
    help: str
    kind: Literal["histogram", "counter"]
    source: str  # the name call actors `record`
    buckets: tuple[float, ...] = ()  # histogram upper bounds, ascending; +Inf is implied


SERIES: tuple[SeriesSpec, ...] = (
    SeriesSpec(
        "iasovoice_transcription_latency_seconds",
        "One utterance's transcription: request to final transcript (call actor; TranscriptionLatency).",
        "histogram", "TranscriptionLatency",
        (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
    ),
    SeriesSpec(
        "iasovoice_soap_generation_seconds",
        "Time to write a call's SOAP note after hang-up (call actor; SOAPGenerationTime).",
        "histogram", "SOAPGenerationTime",
        (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0),
    ),
    SeriesSpec(
        "iasovoice_voice_to_voice_seconds",
        "The caller's utterance ends (its transcription starts) to the reply's first agent audio "
        "(call actor; ResponseLatency).",
        "histogram", "ResponseLatency",
        (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0),
    ),
    SeriesSpec(
        "iasovoice_call_actor_restarts",
        "Calls resumed on a new call actor after theirs died (call actor; CallActorRestarts).",
        "counter", "CallActorRestarts",
    ),
)
BY_SOURCE: dict[str, SeriesSpec] = {spec.source: spec for spec in SERIES}


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; the last is +Inf
    sum: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.buckets) if value <= bound), len(self.buckets))
        self.counts[index] += 1
        self.sum += value

    def snapshot(self) -> dict[str, Any]:
        cumulative, running = [], 0
        for bound, count in zip((*self.buckets, math.inf), self.counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return {"kind": "histogram", "buckets": cumulative, "sum": self.sum, "count": running}


class SeriesBook:
    """Cumulative state of every series in `SERIES`, fed by `record` and read by `snapshot`.

    Counts only ever grow for the life of the metrics actor; a restarted actor starts at 0, which
    Prometheus reads as a counter reset, as it should.
    """

    def __init__(self, series: tuple[SeriesSpec, ...] = SERIES) -> None:
        self._specs = {spec.source: spec for spec in series}
        self._histograms = {s.name: _Histogram(s.buckets) for s in series if s.kind == "histogram"}
        self._counters = {s.name: 0.0 for s in series if s.kind == "counter"}
        self.ignored = 0  # values that could not be used (wrong unit, negative, not a number)

    def record(self, name: str, value: float, unit: str) -> bool:
        """Fold one `MetricsActor.record` into its series; False when `name` feeds none (or is unusable)."""
        spec = self._specs.get(name)
        if spec is None:
            return False
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            self.ignored += 1
            return False
        if spec.kind == "counter":
            self._counters[spec.name] += float(value)
            return True
        scale = UNIT_TO_SECONDS.get(unit)
        if scale is None:  # a time in "Count" or "None" cannot be placed in a seconds bucket
            self.ignored += 1
            return False
        self._histograms[spec.name].observe(float(value) * scale)
        return True

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Plain data (picklable, JSON-able but for +Inf) keyed by family name, for the gateway's scrape."""
        data: dict[str, dict[str, Any]] = {name: h.snapshot() for name, h in self._histograms.items()}
        data.update({name: {"kind": "counter", "value": value} for name, value in self._counters.items()})
        return data
