"""Bench 4: Whisper batching: utterances per second through the ASR deployment, batched vs unbatched.

The real `WhisperASR` Serve deployment (the configured engine, packaged tiny.en on CPU by default) is
driven by 1, 4 and 16 concurrent callers, each sending real recorded utterances back to back. The
deployment is redeployed between the configured `@serve.batch` settings and `max_batch_size=1` (its
`user_config`) before each measurement, so both are measured in the same run, alternating.

Ray runs in a child process in its own session, killed as a group at the end: nothing is left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import ROOT, console, plot_path, save, table

CALLERS = [1, 4, 16]
QUICK_CALLERS = [1, 4]


def _utterances() -> list[Any]:
    from iasovoice.audio.files import load_audio
    from iasovoice.audio.pcm import int16_to_float32
    from iasovoice.demo_audio import AUDIO_DIR, split_turns

    clips = []
    for path in sorted(AUDIO_DIR.glob("*.wav")):
        audio = load_audio(path, 16000)
        clips += [t for t in split_turns(audio, 16000) if 1.0 <= len(t) / 16000 <= 8.0]
    return [int16_to_float32(c) for c in clips[:12]]


async def _drive(handle: Any, utterances: list[Any], callers: int, per_caller: int) -> dict[str, Any]:
    latencies: list[float] = []

    async def caller(index: int) -> None:
        for n in range(per_caller):
            audio = utterances[(index + n) % len(utterances)]
            started = time.perf_counter()
            await handle.transcribe.remote(audio)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(callers)))
    elapsed = time.perf_counter() - started
    done = callers * per_caller
    return {"callers": callers, "utterances": done, "seconds": round(elapsed, 2),
            "utterances_per_s": round(done / elapsed, 3), "mean_latency_s": round(sum(latencies) / done, 3)}


def _child(out: Path, quick: bool) -> None:
    """Runs in the child process: local Ray + Serve with only the ASR deployment."""
    import logging

    import ray
    from ray import serve

    from deployments.asr import WhisperASR
    from iasovoice.config import load_config

    config = load_config().asr
    ray.init(num_cpus=max(2, int(config.num_cpus)), include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    serve.start(proxy_location="Disabled")
    batched = {"max_batch_size": config.max_batch_size, "batch_wait_timeout_s": config.batch_wait_timeout_s}
    unbatched = {"max_batch_size": 1, "batch_wait_timeout_s": 0.0}

    def deploy(user_config: dict[str, Any]) -> Any:
        app = WhisperASR.options(ray_actor_options={"num_cpus": config.num_cpus}, user_config=user_config,
                                 max_ongoing_requests=64).bind(config)
        return serve.run(app, name="bench-asr", route_prefix=None)

    utterances = _utterances()
    results: dict[str, Any] = {"engine": config.engine, "device": config.device, "cpu_threads": config.cpu_threads,
                               "batched_config": batched, "audio_s_mean": sum(len(u) for u in utterances) / len(utterances) / 16000,
                               "batched": [], "unbatched": []}
    handle = deploy(batched)
    asyncio.run(_drive(handle, utterances, 1, 2))  # warm-up
    for callers in (QUICK_CALLERS if quick else CALLERS):
        per_caller = max(2, 16 // callers) if not quick else 2
        for mode, user_config in (("unbatched", unbatched), ("batched", batched)):
            handle = deploy(user_config)
            figures = asyncio.run(_drive(handle, utterances, callers, per_caller))
            figures["mean_batch_size"] = asyncio.run(_batch_stats(handle))
            results[mode].append(figures)
            print(f"  {mode:9s} {callers:2d} callers: {figures['utterances_per_s']} utt/s", flush=True)
    out.write_text(json.dumps(results))
    serve.shutdown()
    ray.shutdown()


async def _batch_stats(handle: Any) -> float:
    stats = await handle.stats.remote()
    return round(stats["mean_batch_size"], 2)


def run(quick: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, console.status("bench 4: Whisper batching through the ASR deployment"):
        out = Path(tmp) / "asr.json"
        args = [sys.executable, "-m", "bench.asr_batching", str(out)] + (["--quick"] if quick else [])
        child = subprocess.Popen(args, cwd=ROOT, start_new_session=True)
        try:
            child.wait(timeout=900)
        finally:
            if child.poll() is None:
                child.terminate()
            try:
                os.killpg(child.pid, signal.SIGKILL)  # Ray's workers are in the child's session
            except ProcessLookupError:
                pass
        if not out.exists():
            raise RuntimeError(f"ASR bench failed (exit {child.returncode})")
        results = json.loads(out.read_text())
    rows = []
    for batched, unbatched in zip(results["batched"], results["unbatched"], strict=True):
        rows.append({"callers": batched["callers"], "unbatched_utt_s": unbatched["utterances_per_s"],
                     "batched_utt_s": batched["utterances_per_s"],
                     "ratio": round(batched["utterances_per_s"] / unbatched["utterances_per_s"], 2),
                     "mean_batch": batched["mean_batch_size"],
                     "batched_latency_s": batched["mean_latency_s"], "unbatched_latency_s": unbatched["mean_latency_s"]})
    results["summary"] = rows
    table("bench 4 — ASR utterances/s, batched vs max_batch_size=1", rows, list(rows[0].keys()))
    _plot(rows)
    save("asr_batching", results)
    return results


def _plot(rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=90)
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["unbatched_utt_s"] for r in rows], 0.4, label="max_batch_size=1")
    ax.bar([i + 0.2 for i in x], [r["batched_utt_s"] for r in rows], 0.4, label="batched")
    ax.set_xticks(list(x), [f"{r['callers']} callers" for r in rows])
    ax.set_ylabel("utterances / s")
    ax.set_title("Bench 4: Whisper through Serve (CPU)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plot_path("asr_batching"))
    plt.close(fig)


if __name__ == "__main__":
    _child(Path(sys.argv[1]), "--quick" in sys.argv)
