"""Runs inside a fresh Ray worker (bench 3): its PSS after each piece a call actor loads, in load order.

Only the standard library at module level, and shipped to the worker by value, so the first reading is
a bare Ray worker and every later one adds exactly one piece.
"""

from __future__ import annotations

import importlib


def pss_mb() -> float:
    with open("/proc/self/smaps_rollup") as smaps:
        for line in smaps:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def steps() -> list[tuple[str, float]]:
    readings = [("bare Ray worker", pss_mb())]
    for label, module in (("numpy", "numpy"), ("pydantic config", "iasovoice.config"),
                          ("call actor module (session, onnxruntime, soxr)", "actors.call_actor")):
        importlib.import_module(module)
        readings.append((label, pss_mb()))
    numpy = importlib.import_module("numpy")
    config = importlib.import_module("iasovoice.config")
    factory = importlib.import_module("iasovoice.factory")
    vad = factory.build_vad(config.load_config().vad, 8000)
    vad(numpy.zeros(160, dtype=numpy.int16))
    readings.append(("Silero VAD session (the first onnxruntime session)", pss_mb()))
    importlib.import_module("ray.serve")
    readings.append(("ray.serve (no longer imported: actors/model_router.py)", pss_mb()))
    return readings
