"""Bench 5: voice-to-voice latency with the real local models, at 1 and 5 concurrent calls.

The server runs the configured engines (Whisper, the LLM, Piper on CPU by default). Each call streams
recorded speech at real-time pace, turn by turn; a turn's latency is the end of the caller's audio →
the first agent audio frame after it (so it includes endpointing silence, `vad.end_silence_ms`).
SOAP notes are capped at 32 tokens here (`llm.note_max_tokens`) so one call's note does not queue in
front of the next run's replies on a 2-core node; the note is not what this bench measures.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from bench.report import console, save, table
from bench.server import start_server
from iasovoice.client import place_call
from iasovoice.demo_audio import demo_turns

CONCURRENCY = [1, 5]
QUICK_CONCURRENCY = [1]


async def _calls(url: str, concurrency: int, label: str) -> list[dict[str, Any]]:
    turns = demo_turns(8000)

    async def one(index: int) -> dict[str, Any]:
        report = await place_call(url, f"v2v-{label}-{index}", turns, 8000, reply_timeout_s=90, note_timeout_s=5,
                                  events="transcript,ended")
        return {"latencies_s": [t.latency_s for t in report.turns], "errors": report.errors}

    return await asyncio.gather(*(one(i) for i in range(concurrency)))


def run(quick: bool = False) -> dict[str, Any]:
    levels = QUICK_CONCURRENCY if quick else CONCURRENCY
    results: dict[str, Any] = {"levels": []}
    with console.status("bench 5: voice-to-voice with the real models (first start joins the LLM weights)"):
        server = start_server(["llm.note_max_tokens=32"], pool_size=6, timeout_s=900)
        try:
            for concurrency in levels:
                calls = asyncio.run(_calls(server.url, concurrency, str(concurrency)))
                values = [v for c in calls for v in c["latencies_s"] if v is not None]
                missing = sum(1 for c in calls for v in c["latencies_s"] if v is None)
                row = {"calls": concurrency, "turns": len(values) + missing, "unanswered": missing,
                       "p50_s": float(np.percentile(values, 50)) if values else None,
                       "p90_s": float(np.percentile(values, 90)) if values else None,
                       "max_s": max(values) if values else None}
                results["levels"].append({**row, "per_call": calls})
                console.print(f"  {concurrency} calls: p50 {row['p50_s']} s, max {row['max_s']} s")
        finally:
            server.stop()
    table("bench 5 — voice-to-voice (end of caller speech → first agent audio)",
          [{k: v for k, v in r.items() if k != "per_call"} for r in results["levels"]],
          ["calls", "turns", "unanswered", "p50_s", "p90_s", "max_s"])
    save("voice_to_voice", results)
    return results
