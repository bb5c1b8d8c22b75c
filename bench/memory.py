"""Bench 3: memory per call actor: PSS of each call-actor process, and node growth per added call.

Every call actor is its own Ray worker process, so a call's memory is mostly that process. Measured with
stand-in engines and the real Silero VAD (the production call actor, minus the models, which live in
the shared deployments): PSS of warm (pool) actors, of bound calls with a silent line (idle) and of
calls whose caller speaks (active: VAD, turn-taking, stand-in ASR/LLM/TTS replies), plus the growth
of the whole server's PSS per added call, and the calls per node that follows from free memory.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from bench.caller import LoadCaller
from bench.procs import descendants, mem_available_kb, memory_kb, title
from bench.report import console, save, table
from bench.server import STANDIN, BenchServer, start_server
from iasovoice.audio.files import load_audio
from iasovoice.demo_audio import AUDIO_DIR, DEMO_TURNS

CALLS = 20
QUICK_CALLS = 6
POOL = 2
TARGET_PSS_MB = 60.0


def _actors(server: BenchServer) -> dict[int, str]:
    return {pid: title(pid) for pid in descendants(server.process.pid) if title(pid).startswith("ray::CallActor")}


def _tree_pss_mb(server: BenchServer) -> float:
    return sum(memory_kb(pid)[0] for pid in [server.process.pid, *descendants(server.process.pid)]) / 1024


def _actor_pss(server: BenchServer) -> dict[str, float]:
    values = [memory_kb(pid) for pid in _actors(server)]
    values = [v for v in values if v[0]]
    if not values:
        return {}
    pss = [v[0] / 1024 for v in values]
    rss = [v[1] / 1024 for v in values]
    return {"count": len(values), "pss_mb_mean": statistics.mean(pss), "pss_mb_max": max(pss),
            "rss_mb_mean": statistics.mean(rss)}


async def _run(server: BenchServer, calls: int) -> dict[str, Any]:
    await server.wait_pool()
    await asyncio.sleep(2)
    out: dict[str, Any] = {"warm_actor": _actor_pss(server)}
    base_tree, base_avail = _tree_pss_mb(server), mem_available_kb() / 1024
    speech = load_audio(AUDIO_DIR / DEMO_TURNS[0], 8000)

    for phase, audio in (("idle", None), ("active", speech)):
        caller = LoadCaller(lambda i, p=phase: f"{server.url}/connect/mem-{p}-{i}", audio=audio)
        try:
            await caller.add_calls(calls)
            # Not wait_flowing: these calls are not echo tests, so no frame of theirs ever comes back.
            await server.wait_active(calls)
            await server.wait_pool()
            await asyncio.sleep(8 if phase == "active" else 3)  # active: VAD, utterances, replies in flight
            tree, avail = _tree_pss_mb(server), mem_available_kb() / 1024
            out[phase] = {
                "calls": calls,
                # Every call-actor process (the bound calls and the POOL warm ones: they are alike).
                "call_actor": _actor_pss(server),
                "tree_pss_growth_mb_per_call": (tree - base_tree) / calls,
                "mem_available_drop_mb_per_call": (base_avail - avail) / calls,
            }
        finally:
            await caller.close()
        await asyncio.sleep(server_grace())
        base_tree, base_avail = _tree_pss_mb(server), mem_available_kb() / 1024
    return out


def import_breakdown() -> list[dict[str, Any]]:
    """Where a call actor's private memory comes from, measured in a real Ray worker process."""
    import ray
    from ray import cloudpickle

    from bench import import_probe

    cloudpickle.register_pickle_by_value(import_probe)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        steps = ray.get(ray.remote(num_cpus=0)(import_probe.steps).remote(), timeout=120)
    finally:
        ray.shutdown()
    rows, previous = [], None
    for label, pss in steps:
        rows.append({"step": label, "pss_mb": round(pss, 1), "added_mb": None if previous is None else round(pss - previous, 1)})
        previous = pss
    return rows


def server_grace() -> float:
    return 4.0  # release_grace_s (1 s) plus the note written by the stand-in LLM


def run(quick: bool = False) -> dict[str, Any]:
    calls = QUICK_CALLS if quick else CALLS
    with console.status(f"bench 3: memory with {calls} calls (stand-in engines, Silero VAD)"):
        server = start_server([*STANDIN, "server.transport=stream", "call.idle_hangup_s=60"], pool_size=POOL)
        try:
            figures = asyncio.run(_run(server, calls))
        finally:
            server.stop()
    with console.status("bench 3: a call actor's memory, import by import, in a fresh Ray worker"):
        figures["import_steps"] = import_breakdown()
    table("bench 3 — PSS of one Ray worker as a call actor's pieces load (MB, alone on the node)",
          figures["import_steps"], ["step", "pss_mb", "added_mb"])
    per_call = figures["active"]["call_actor"].get("pss_mb_mean") or 0.0
    growth = figures["active"]["tree_pss_growth_mb_per_call"]
    total_mb = mem_available_kb() / 1024
    figures["target_pss_mb"] = TARGET_PSS_MB
    figures["calls_per_node_by_memory"] = {
        "free_mb_now": round(total_mb), "per_call_mb": round(growth, 1),
        "calls": int(total_mb * 0.8 / growth) if growth > 0 else None,
    }
    rows = [{"state": "warm (pool)", **figures["warm_actor"]}]
    for phase in ("idle", "active"):
        rows.append({"state": f"{phase} call", **figures[phase]["call_actor"],
                     "growth_mb_per_call": figures[phase]["tree_pss_growth_mb_per_call"],
                     "avail_drop_mb_per_call": figures[phase]["mem_available_drop_mb_per_call"]})
    table("bench 3 — call actor memory (MB)", rows,
          ["state", "count", "pss_mb_mean", "pss_mb_max", "rss_mb_mean", "growth_mb_per_call", "avail_drop_mb_per_call"])
    console.print(f"PSS per active call actor {per_call:.1f} MB (target <= {TARGET_PSS_MB:.0f} MB); "
                  f"calls per node by memory (80% of {total_mb:.0f} MB free) ~ {figures['calls_per_node_by_memory']['calls']}")
    save("memory", figures)
    return figures
